"""Geometry of a Hugging Face model from its `config.json` alone: no weights, no transformers.

Known families (by `model_type`), with Hugging Face parameter names so checkpoint masks bind:
- decoders `llama`, `mistral`, `qwen2`, `qwen3`, `gemma`, `gemma2`: RMSNorm, RoPE, grouped-query
  attention (`num_key_value_heads` <= `num_attention_heads`), SwiGLU MLP, `lm_head` (tied to the
  embedding or not: the GEMM runs either way);
- `gpt2` (LayerNorm, learned positions, GELU MLP; its Conv1D weights are stored [in, out], the
  ops record [out, in] as every linear here);
- encoders `bert` (BertForSequenceClassification names) and `vit` (ViTForImageClassification).

Phases (`Workload.phase`): `prefill` runs `seq` tokens per sample (attention over the same
`seq`), `decode` one token per sample attending to a KV cache of `context` tokens plus itself
(`context + 1` keys). Attention GEMMs follow grouped-query kernels: the g = heads / kv_heads query
heads that share a KV head form one GEMM, so Q·K^T is (tokens·g, keys, head_dim) x kv_heads and
its K operand is the KV cache read once per KV head. Causal prefill is counted dense (the full
seq x seq scores, as eager attention computes them). The lm_head of a decoder runs on the last
token only (what generation needs); encoders classify from the first token. `lm_head` and the
embeddings are not sparsifiable (the usual practice of SparseGPT, Wanda and compressed-tensors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from simsparse.errors import GeometryError
from simsparse.fileio import read_json
from simsparse.parse import MAX_DIM
from simsparse.records import Op, Workload

MAX_CONFIG_BYTES = 16 * 2**20   # a config.json is a few kB
MAX_LAYERS = 4096               # num_hidden_layers / n_layer accepted (the largest published models: ~130)
LAYER_KEYS = ("num_hidden_layers", "n_layer")
DECODERS = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2")
FAMILIES = DECODERS + ("gpt2", "bert", "vit")


def load_config(path: str | Path) -> dict:
    """The config of a Hugging Face model directory or config.json file (GeometryError otherwise)."""
    p = Path(path)
    file = p / "config.json" if p.is_dir() else p
    if not file.is_file():
        raise GeometryError(f"{path}: no config.json found; pass a Hugging Face model directory or its config.json")
    data = read_json(file, max_bytes=MAX_CONFIG_BYTES, what="config.json", error=GeometryError)
    if not isinstance(data, dict):
        raise GeometryError(f"{file}: a config.json must hold a JSON object")
    return data


def _int(cfg: Mapping[str, Any], *keys: str, default: int | None = None) -> int:
    for k in keys:
        v = cfg.get(k)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            cap = MAX_LAYERS if k in LAYER_KEYS else MAX_DIM
            if v > cap:   # an untrusted config: a billion layers would be a billion ops in memory
                raise GeometryError(f"config field {k} = {v} is larger than {cap}; check the config.json")
            return v
    if default is None:
        raise GeometryError(f"config field {keys[0]} is missing or not a positive integer; "
                            "pass the model's full config.json")
    return default


@dataclass
class _Builder:
    """Appends ops in execution order; each op reads the previous one unless told otherwise."""

    ops: list[Op] = field(default_factory=list)
    last: str = "input"

    def add(self, op: Op, *, inputs: tuple[str, ...] | None = None) -> str:
        self.ops.append(Op(**{**op.__dict__, "inputs": inputs if inputs is not None else (self.last,)}))
        self.last = op.name
        return op.name

    def linear(self, name: str, out_f: int, in_f: int, tokens: int, *, sparsifiable: bool = True,
               inputs: tuple[str, ...] | None = None) -> str:
        return self.add(Op(name=name, kind="linear", input_shape=(tokens, in_f), output_shape=(tokens, out_f),
                           weight_shape=(out_f, in_f), tokens=tokens, sparsifiable=sparsifiable), inputs=inputs)

    def memory(self, name: str, kind: str, elements_in: int, elements_out: int, *,
               inputs: tuple[str, ...] | None = None) -> str:
        return self.add(Op(name=name, kind=kind, elements_in=elements_in, elements_out=elements_out,
                           sparsifiable=False), inputs=inputs)

    def attention(self, scope: str, *, q_tokens: int, keys: int, heads: int, kv_heads: int, head_dim: int,
                  inputs: tuple[str, ...]) -> str:
        g = heads // kv_heads
        qk = self.add(Op(name=f"{scope}.qk", kind="matmul", input_shape=(heads, q_tokens, head_dim),
                         output_shape=(heads, q_tokens, keys), gemm_mnk=(q_tokens * g, keys, head_dim),
                         count=kv_heads, sparsifiable=False), inputs=inputs[:-1] or inputs)
        scores = heads * q_tokens * keys
        self.memory(f"{scope}.softmax", "softmax", scores, scores)
        return self.add(Op(name=f"{scope}.av", kind="matmul", input_shape=(heads, q_tokens, keys),
                           output_shape=(heads, q_tokens, head_dim), gemm_mnk=(q_tokens * g, head_dim, keys),
                           count=kv_heads, sparsifiable=False), inputs=(f"{scope}.softmax",) + inputs[-1:])


@dataclass(frozen=True)
class Phase:
    """What one forward pass computes: `tokens` new tokens per sample attending to `keys` keys."""

    name: str        # prefill | decode
    tokens: int
    keys: int
    context: int = 0

    @staticmethod
    def of(*, seq: int | None, decode: bool, context: int | None) -> "Phase":
        if decode:
            if context is None or context < 0:
                raise GeometryError("--decode needs --context C (the KV-cache length, >= 0)")
            return Phase("decode", 1, context + 1, context)
        if seq is None or seq < 1:
            raise GeometryError("a prefill needs --seq N (tokens per sample, >= 1)")
        return Phase("prefill", seq, seq)


def _decoder(cfg: Mapping[str, Any], phase: Phase) -> list[Op]:
    d = _int(cfg, "hidden_size")
    heads = _int(cfg, "num_attention_heads")
    kv = _int(cfg, "num_key_value_heads", default=heads)
    hd = _int(cfg, "head_dim", default=d // heads)
    inter = _int(cfg, "intermediate_size")
    vocab = _int(cfg, "vocab_size")
    layers = _int(cfg, "num_hidden_layers")
    if heads % kv:
        raise GeometryError(f"config: num_attention_heads {heads} is not a multiple of num_key_value_heads {kv}")
    t = phase.tokens
    b = _Builder()
    b.add(Op(name="model.embed_tokens.weight", kind="embedding", input_shape=(t,), output_shape=(t, d),
             weight_shape=(vocab, d), elements_in=t, elements_out=t * d, sparsifiable=False))
    gemma2 = cfg.get("model_type") == "gemma2"
    for i in range(layers):
        p = f"model.layers.{i}"
        residual = b.last
        b.memory(f"{p}.input_layernorm", "norm", t * d, t * d)
        x = b.last
        q = b.linear(f"{p}.self_attn.q_proj.weight", heads * hd, d, t, inputs=(x,))
        k = b.linear(f"{p}.self_attn.k_proj.weight", kv * hd, d, t, inputs=(x,))
        v = b.linear(f"{p}.self_attn.v_proj.weight", kv * hd, d, t, inputs=(x,))
        rope = t * (heads + kv) * hd
        b.memory(f"{p}.self_attn.rotary", "elementwise", rope + 2 * t * hd, rope, inputs=(q, k))
        b.attention(f"{p}.self_attn", q_tokens=t, keys=phase.keys, heads=heads, kv_heads=kv, head_dim=hd,
                    inputs=(f"{p}.self_attn.rotary", v))
        b.linear(f"{p}.self_attn.o_proj.weight", d, heads * hd, t)
        if gemma2:
            b.memory(f"{p}.post_attention_layernorm", "norm", t * d, t * d)
        b.memory(f"{p}.self_attn.residual", "elementwise", 2 * t * d, t * d, inputs=(b.last, residual))
        residual = b.last
        b.memory(f"{p}.pre_feedforward_layernorm" if gemma2 else f"{p}.post_attention_layernorm", "norm", t * d, t * d)
        x = b.last
        gate = b.linear(f"{p}.mlp.gate_proj.weight", inter, d, t, inputs=(x,))
        up = b.linear(f"{p}.mlp.up_proj.weight", inter, d, t, inputs=(x,))
        b.memory(f"{p}.mlp.act_fn", "elementwise", 2 * t * inter, t * inter, inputs=(gate, up))
        b.linear(f"{p}.mlp.down_proj.weight", d, inter, t)
        if gemma2:
            b.memory(f"{p}.post_feedforward_layernorm", "norm", t * d, t * d)
        b.memory(f"{p}.mlp.residual", "elementwise", 2 * t * d, t * d, inputs=(b.last, residual))
    b.memory("model.norm", "norm", d, d)      # only the last token's hidden state feeds lm_head
    b.linear("lm_head.weight", vocab, d, 1, sparsifiable=False)
    return b.ops


def _gpt2(cfg: Mapping[str, Any], phase: Phase) -> list[Op]:
    d = _int(cfg, "n_embd", "hidden_size")
    heads = _int(cfg, "n_head", "num_attention_heads")
    layers = _int(cfg, "n_layer", "num_hidden_layers")
    inter = _int(cfg, "n_inner", default=4 * d)
    vocab = _int(cfg, "vocab_size")
    t, hd = phase.tokens, d // heads
    b = _Builder()
    b.add(Op(name="transformer.wte.weight", kind="embedding", input_shape=(t,), output_shape=(t, d),
             weight_shape=(vocab, d), elements_in=t, elements_out=t * d, sparsifiable=False))
    b.memory("transformer.wpe", "elementwise", 2 * t * d, t * d)
    for i in range(layers):
        p = f"transformer.h.{i}"
        residual = b.last
        b.memory(f"{p}.ln_1", "norm", t * d, t * d)
        qkv = b.linear(f"{p}.attn.c_attn.weight", 3 * d, d, t)
        b.attention(f"{p}.attn", q_tokens=t, keys=phase.keys, heads=heads, kv_heads=heads, head_dim=hd, inputs=(qkv,))
        b.linear(f"{p}.attn.c_proj.weight", d, d, t)
        b.memory(f"{p}.attn.residual", "elementwise", 2 * t * d, t * d, inputs=(b.last, residual))
        residual = b.last
        b.memory(f"{p}.ln_2", "norm", t * d, t * d)
        b.linear(f"{p}.mlp.c_fc.weight", inter, d, t)
        b.memory(f"{p}.mlp.act", "elementwise", t * inter, t * inter)
        b.linear(f"{p}.mlp.c_proj.weight", d, inter, t)
        b.memory(f"{p}.mlp.residual", "elementwise", 2 * t * d, t * d, inputs=(b.last, residual))
    b.memory("transformer.ln_f", "norm", d, d)
    b.linear("lm_head.weight", vocab, d, 1, sparsifiable=False)
    return b.ops


def _encoder_layer(b: _Builder, p: str, names: Mapping[str, str], *, t: int, d: int, heads: int, inter: int,
                   pre_norm: bool) -> None:
    residual = b.last
    if pre_norm:
        b.memory(f"{p}.{names['norm1']}", "norm", t * d, t * d)
    x = b.last
    q, k, v = (b.linear(f"{p}.{names[c]}.weight", d, d, t, inputs=(x,)) for c in ("query", "key", "value"))
    b.attention(names["scope"].format(p=p), q_tokens=t, keys=t, heads=heads, kv_heads=heads, head_dim=d // heads,
                inputs=(q, k, v))
    b.linear(f"{p}.{names['attn_out']}.weight", d, d, t)
    b.memory(f"{p}.{names['attn_out']}.residual", "elementwise", 2 * t * d, t * d, inputs=(b.last, residual))
    if not pre_norm:
        b.memory(f"{p}.{names['norm1']}", "norm", t * d, t * d)
    residual = b.last
    if pre_norm:
        b.memory(f"{p}.{names['norm2']}", "norm", t * d, t * d)
    b.linear(f"{p}.intermediate.dense.weight", inter, d, t)
    b.memory(f"{p}.intermediate.act", "elementwise", t * inter, t * inter)
    b.linear(f"{p}.output.dense.weight", d, inter, t)
    b.memory(f"{p}.output.residual", "elementwise", 2 * t * d, t * d, inputs=(b.last, residual))
    if not pre_norm:
        b.memory(f"{p}.{names['norm2']}", "norm", t * d, t * d)


_BERT = {"query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
         "scope": "{p}.attention.self", "attn_out": "attention.output.dense", "norm1": "attention.output.LayerNorm",
         "norm2": "output.LayerNorm"}
_VIT = {"query": "attention.attention.query", "key": "attention.attention.key", "value": "attention.attention.value",
        "scope": "{p}.attention.attention", "attn_out": "attention.output.dense", "norm1": "layernorm_before",
        "norm2": "layernorm_after"}


def _labels(cfg: Mapping[str, Any]) -> int:
    id2label = cfg.get("id2label")
    return len(id2label) if isinstance(id2label, Mapping) and id2label else _int(cfg, "num_labels", default=2)


def _bert(cfg: Mapping[str, Any], phase: Phase) -> list[Op]:
    d, heads = _int(cfg, "hidden_size"), _int(cfg, "num_attention_heads")
    inter, layers, vocab = _int(cfg, "intermediate_size"), _int(cfg, "num_hidden_layers"), _int(cfg, "vocab_size")
    t = phase.tokens
    b = _Builder()
    b.add(Op(name="bert.embeddings.word_embeddings.weight", kind="embedding", input_shape=(t,), output_shape=(t, d),
             weight_shape=(vocab, d), elements_in=t, elements_out=t * d, sparsifiable=False))
    b.memory("bert.embeddings.add", "elementwise", 3 * t * d, t * d)
    b.memory("bert.embeddings.LayerNorm", "norm", t * d, t * d)
    for i in range(layers):
        _encoder_layer(b, f"bert.encoder.layer.{i}", _BERT, t=t, d=d, heads=heads, inter=inter, pre_norm=False)
    b.linear("bert.pooler.dense.weight", d, d, 1)
    b.memory("bert.pooler.activation", "elementwise", d, d)
    b.linear("classifier.weight", _labels(cfg), d, 1)
    return b.ops


def _vit(cfg: Mapping[str, Any], image: tuple[int, int, int]) -> tuple[list[Op], int]:
    d, heads = _int(cfg, "hidden_size"), _int(cfg, "num_attention_heads")
    inter, layers = _int(cfg, "intermediate_size"), _int(cfg, "num_hidden_layers")
    patch, c = _int(cfg, "patch_size", default=16), _int(cfg, "num_channels", default=3)
    size = _int(cfg, "image_size", default=224)
    h, w = (image[1], image[2]) if image else (size, size)
    gh, gw = h // patch, w // patch
    if gh < 1 or gw < 1:
        raise GeometryError(f"image {h}x{w} is smaller than the patch size {patch}")
    t = gh * gw + 1
    b = _Builder()
    b.add(Op(name="vit.embeddings.patch_embeddings.projection.weight", kind="conv", input_shape=(c, h, w),
             output_shape=(d, gh, gw), weight_shape=(d, c, patch, patch), stride=(patch, patch), padding=(0, 0)))
    b.memory("vit.embeddings.add", "elementwise", 2 * t * d, t * d)
    for i in range(layers):
        _encoder_layer(b, f"vit.encoder.layer.{i}", _VIT, t=t, d=d, heads=heads, inter=inter, pre_norm=True)
    b.memory("vit.layernorm", "norm", t * d, t * d)
    b.linear("classifier.weight", _labels(cfg), d, 1)
    return b.ops, t


def family(cfg: Mapping[str, Any]) -> str:
    kind = str(cfg.get("model_type", "")).lower()
    if kind not in FAMILIES:
        raise GeometryError(f"config model_type {kind or '(none)'!r} is not a known family ({', '.join(FAMILIES)}); "
                            "trace the model instead: simsparse trace module:pkg.mod:factory")
    return kind


def hf_workload(cfg: Mapping[str, Any], *, name: str, seq: int | None = None, decode: bool = False,
                context: int | None = None, image: tuple[int, int, int] = ()) -> Workload:
    """The per-sample geometry of one forward pass of the model `cfg` describes (see module docstring)."""
    kind = family(cfg)
    if decode and kind in ("bert", "vit"):
        raise GeometryError(f"--decode applies to decoders (llama, mistral, qwen2, gemma, gpt2), not {kind}")
    if kind == "vit":
        ops, t = _vit(cfg, image)
        c = ops[0].input_shape
        return Workload(name=name, input_shape=tuple(c), ops=tuple(ops), source=f"hf:{kind}", phase="prefill", tokens=t)
    phase = Phase.of(seq=seq, decode=decode, context=context)
    ops = _decoder(cfg, phase) if kind in DECODERS else _gpt2(cfg, phase) if kind == "gpt2" else _bert(cfg, phase)
    return Workload(name=name, input_shape=(phase.tokens,), ops=tuple(ops), source=f"hf:{kind}",
                    phase=phase.name, tokens=phase.tokens, context=phase.context)


def params(cfg: Mapping[str, Any]) -> int:
    """Weights of the GEMM and embedding ops (norms and biases left out); tied lm_head counted once."""
    wl = hf_workload(cfg, name="params", seq=1, image=())
    tied = bool(cfg.get("tie_word_embeddings", family(cfg) in ("gpt2",)))
    return sum(math.prod(o.weight_shape) for o in wl.ops if o.weight_shape
               and not (tied and o.name == "lm_head.weight"))
