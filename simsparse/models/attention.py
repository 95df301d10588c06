"""Attention models: vit_tiny / vit_b16 (torchvision names), transformer (nn.Transformer), bert_base (HF names)."""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from simsparse.errors import GeometryError
from simsparse.models.base import MODELS


# ----------------------------------------------------------------------------- ViT (torchvision names)


class MLPBlock(nn.Sequential):
    """torchvision MLPBlock: 0 Linear, 1 GELU, 2 Dropout, 3 Linear, 4 Dropout."""

    def __init__(self, dim: int, mlp_dim: int) -> None:
        super().__init__(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp_dim, dim), nn.Dropout(0.0))


class EncoderBlock(nn.Module):
    def __init__(self, heads: int, dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.dropout = nn.Dropout(0.0)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLPBlock(dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = self.dropout(y) + x
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    def __init__(self, seq: int, layers: int, heads: int, dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq, dim).normal_(std=0.02))
        self.dropout = nn.Dropout(0.0)
        self.layers = nn.Sequential(OrderedDict(
            (f"encoder_layer_{i}", EncoderBlock(heads, dim, mlp_dim)) for i in range(layers)))
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(self.dropout(x + self.pos_embedding)))


class VisionTransformer(nn.Module):
    def __init__(self, c_in: int, image_hw: tuple[int, int], patch: int, layers: int, heads: int,
                 dim: int, mlp_dim: int, num_classes: int) -> None:
        super().__init__()
        h, w = image_hw
        if h % patch or w % patch:
            raise GeometryError(f"ViT: image {h}x{w} is not divisible by patch size {patch}")
        self.conv_proj = nn.Conv2d(c_in, dim, patch, stride=patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.encoder = Encoder((h // patch) * (w // patch) + 1, layers, heads, dim, mlp_dim)
        self.heads = nn.Sequential(OrderedDict(head=nn.Linear(dim, num_classes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return self.heads(self.encoder(x)[:, 0])


def _vit(input_shape, num_classes, patch, depth, heads, width, mlp_dim, model):
    if len(input_shape) != 3:
        raise GeometryError(f"model {model} needs input_shape (C, H, W), got {input_shape}")
    c, h, w = input_shape
    return VisionTransformer(c, (h, w), patch, depth, heads, width, mlp_dim or 4 * width, num_classes)


@MODELS.register("vit_b16")
def vit_b16(*, num_classes: int, input_shape: tuple[int, ...], patch_size: int = 16, depth: int = 12,
            heads: int = 12, width: int = 768, mlp_dim: int = 3072) -> nn.Module:
    """torchvision vit_b_16 (names identical); image size from input_shape."""
    return _vit(input_shape, num_classes, patch_size, depth, heads, width, mlp_dim, "vit_b16")


@MODELS.register("vit_tiny")
def vit_tiny(*, num_classes: int, input_shape: tuple[int, ...], patch_size: int | None = None, depth: int = 12,
             heads: int = 3, width: int = 192, mlp_dim: int | None = None) -> nn.Module:
    """DeiT-Tiny shape (12 layers, 3 heads, d 192, mlp 4d) with torchvision names. Default patch
    size: 16 for images of at least 64 px, else 4 (CIFAR-style), else 1 for images under 4 px."""
    h = input_shape[1] if len(input_shape) == 3 else 0
    patch = patch_size or (16 if h >= 64 else 4 if h >= 4 and h % 4 == 0 else 1)
    return _vit(input_shape, num_classes, patch, depth, heads, width, mlp_dim, "vit_tiny")


# ----------------------------------------------------------------------------- encoder-decoder transformer


class Seq2SeqTransformer(nn.Module):
    """Token embeddings (x sqrt(d)) + sinusoidal positions, nn.Transformer (post-norm, batch_first),
    `generator` Linear to the target vocabulary. forward(src, tgt=None): tgt defaults to src."""

    def __init__(self, vocab: int, num_classes: int, d: int, heads: int, ffn: int, layers: int,
                 max_len: int) -> None:
        super().__init__()
        self.d = d
        self.src_embed = nn.Embedding(vocab, d)
        self.tgt_embed = nn.Embedding(num_classes, d)
        self.register_buffer("positions", _sinusoid(max_len, d), persistent=False)
        self.transformer = nn.Transformer(d, heads, layers, layers, ffn, dropout=0.0, batch_first=True)
        self.generator = nn.Linear(d, num_classes)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor | None = None) -> torch.Tensor:
        tgt = src if tgt is None else tgt
        scale = math.sqrt(self.d)
        s = self.src_embed(src) * scale + self.positions[: src.shape[1]]
        t = self.tgt_embed(tgt) * scale + self.positions[: tgt.shape[1]]
        causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device)
        return self.generator(self.transformer(s, t, tgt_mask=causal, tgt_is_causal=True))


def _sinusoid(length: int, d: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    table = torch.zeros(length, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return table


@MODELS.register("transformer")
def transformer(*, num_classes: int, input_shape: tuple[int, ...], width: int = 256, depth: int = 3,
                heads: int = 4, ffn_dim: int | None = None, vocab: int | None = None) -> nn.Module:
    """Encoder-decoder Transformer with `depth` encoder and `depth` decoder layers, d_model `width`,
    FFN `ffn_dim` (default 4·width). input_shape (seq,) or (src_len, tgt_len); num_classes is the
    target vocabulary; `vocab` the source vocabulary (default num_classes). WMT big: width 1024,
    depth 6, heads 16, ffn_dim 4096."""
    if len(input_shape) not in (1, 2):
        raise GeometryError(f"model transformer needs input_shape (seq,) or (src_len, tgt_len), got {input_shape}")
    return Seq2SeqTransformer(vocab or num_classes, num_classes, width, heads, ffn_dim or 4 * width, depth,
                              max(max(input_shape), 1))


# ----------------------------------------------------------------------------- BERT (Hugging Face names)


class BertEmbeddings(nn.Module):
    def __init__(self, vocab: int, d: int, max_pos: int) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, d)
        self.position_embeddings = nn.Embedding(max_pos, d)
        self.token_type_embeddings = nn.Embedding(2, d)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)
        self.dropout = nn.Dropout(0.0)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)[None]
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(torch.zeros_like(ids))
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.value = nn.Linear(d, d)
        self.dropout = nn.Dropout(0.0)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, l, d = x.shape
        return x.view(b, l, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        ctx = torch.matmul(self.dropout(torch.softmax(scores, dim=-1)), v)
        return ctx.transpose(1, 2).reshape(x.shape)


class BertDenseNorm(nn.Module):
    """HF BertSelfOutput / BertOutput: dense -> dropout -> LayerNorm(x + residual)."""

    def __init__(self, d_in: int, d: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d)
        self.dropout = nn.Dropout(0.0)
        self.LayerNorm = nn.LayerNorm(d, eps=1e-12)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.self = BertSelfAttention(d, heads)
        self.output = BertDenseNorm(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x), x)


class BertIntermediate(nn.Module):
    def __init__(self, d: int, ffn: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d, ffn)
        self.intermediate_act_fn = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.attention = BertAttention(d, heads)
        self.intermediate = BertIntermediate(d, ffn)
        self.output = BertDenseNorm(ffn, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attention(x)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, d: int, heads: int, ffn: int, depth: int) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(d, heads, ffn) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x)
        return x


class BertPooler(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.dense = nn.Linear(d, d)
        self.activation = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(x[:, 0]))


class BertModel(nn.Module):
    def __init__(self, vocab: int, d: int, heads: int, ffn: int, depth: int, max_pos: int) -> None:
        super().__init__()
        self.embeddings = BertEmbeddings(vocab, d, max_pos)
        self.encoder = BertEncoder(d, heads, ffn, depth)
        self.pooler = BertPooler(d)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.pooler(self.encoder(self.embeddings(ids)))


class BertForSequenceClassification(nn.Module):
    def __init__(self, num_classes: int, vocab: int, d: int, heads: int, ffn: int, depth: int, max_pos: int) -> None:
        super().__init__()
        self.bert = BertModel(vocab, d, heads, ffn, depth, max_pos)
        self.dropout = nn.Dropout(0.0)
        self.classifier = nn.Linear(d, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.bert(ids)))


@MODELS.register("bert_base")
def bert_base(*, num_classes: int, input_shape: tuple[int, ...], width: int = 768, depth: int = 12,
              heads: int = 12, ffn_dim: int | None = None, vocab: int = 30522, max_positions: int = 512) -> nn.Module:
    """BERT-base for sequence classification (HF parameter names); input_shape (seq,) token ids."""
    if len(input_shape) != 1:
        raise GeometryError(f"model bert_base needs input_shape (seq,), got {input_shape}")
    return BertForSequenceClassification(num_classes, vocab, width, heads, ffn_dim or 4 * width, depth,
                                         max(max_positions, input_shape[0]))
