"""A Llama-style decoder in plain PyTorch, with Hugging Face parameter names: RMSNorm, rotary
position embeddings, grouped-query attention and a SwiGLU MLP. It is the reference the
config-only geometry of `graph/hf.py` is checked against (trace of this module == geometry from
the config) and the small random-init model of `benchmarks/bench_models.py`.

`forward(ids)` is a prefill of ids.shape[1] tokens; `forward(ids, past=C)` one decode step of
one token per sample over a (zero) KV cache of C tokens. Like `graph/hf.py`, attention groups the
query heads that share a KV head into one GEMM, and the lm_head runs on the last token only.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, d: int, heads: int, kv_heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.q_proj = nn.Linear(d, heads * head_dim, bias=False)
        self.k_proj = nn.Linear(d, kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(d, kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(heads * head_dim, d, bias=False)

    def forward(self, x: torch.Tensor, past: int) -> torch.Tensor:
        b, t, _ = x.shape
        g, hd = self.heads // self.kv_heads, self.head_dim
        pos = torch.arange(past, past + t, device=x.device, dtype=torch.float32)
        freq = pos[:, None] / (10000.0 ** (torch.arange(0, hd, 2, device=x.device) / hd))
        cos, sin = torch.cat((freq, freq), -1).cos(), torch.cat((freq, freq), -1).sin()
        q = _rotate(self.q_proj(x).view(b, t, self.heads, hd).transpose(1, 2), cos, sin)
        k = _rotate(self.k_proj(x).view(b, t, self.kv_heads, hd).transpose(1, 2), cos, sin)
        v = self.v_proj(x).view(b, t, self.kv_heads, hd).transpose(1, 2)
        if past:
            cache = torch.zeros(b, self.kv_heads, past, hd, device=x.device, dtype=x.dtype)
            k, v = torch.cat((cache, k), dim=2), torch.cat((cache, v), dim=2)
        q = q.reshape(b, self.kv_heads, g * t, hd)             # the g query heads of a KV head: one GEMM
        scores = torch.matmul(q, k.transpose(-1, -2)) * hd ** -0.5
        out = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.o_proj(out.reshape(b, self.heads, t, hd).transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, d: int, inter: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d, inter, bias=False)
        self.up_proj = nn.Linear(d, inter, bias=False)
        self.down_proj = nn.Linear(inter, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, d: int, heads: int, kv_heads: int, head_dim: int, inter: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(d)
        self.self_attn = Attention(d, heads, kv_heads, head_dim)
        self.post_attention_layernorm = RMSNorm(d)
        self.mlp = MLP(d, inter)

    def forward(self, x: torch.Tensor, past: int) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), past)
        return x + self.mlp(self.post_attention_layernorm(x))


class DecoderModel(nn.Module):
    def __init__(self, vocab: int, d: int, layers: int, **kw: int) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList(DecoderLayer(d, **kw) for _ in range(layers))
        self.norm = RMSNorm(d)


class LlamaLike(nn.Module):
    """Llama/Mistral/Qwen2-style causal LM (`model.*`, `lm_head` names as in Hugging Face)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        d, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
        self.model = DecoderModel(int(config["vocab_size"]), d, int(config["num_hidden_layers"]), heads=heads,
                                  kv_heads=int(config.get("num_key_value_heads", heads)),
                                  head_dim=int(config.get("head_dim", d // heads)),
                                  inter=int(config["intermediate_size"]))
        self.lm_head = nn.Linear(d, int(config["vocab_size"]), bias=False)

    def forward(self, ids: torch.Tensor, past: int = 0) -> torch.Tensor:
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, past)
        return self.lm_head(self.model.norm(x[:, -1:]))


SMALL_CONFIG = {"model_type": "llama", "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 8,
                "num_key_value_heads": 2, "intermediate_size": 688, "vocab_size": 1000}


def small_llama() -> LlamaLike:
    """A small random-init Llama-style model (GQA 8/2 heads), e.g. `module:simsparse.models.llm:small_llama`."""
    return LlamaLike(SMALL_CONFIG)
