"""Turning recorded torch calls into `Op` records (the per-call half of `trace`)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from simsparse.records import Op

CONV = {"conv1d", "conv2d", "conv3d"}
NORM = {"batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm"}
SOFTMAX = {"softmax", "log_softmax"}
POOL = {"max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
        "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d"}
ELEMENTWISE = {"add", "add_", "__add__", "__radd__", "__iadd__", "sub", "__sub__", "__rsub__", "mul", "mul_",
               "__mul__", "__rmul__", "__imul__", "div", "__truediv__", "__itruediv__", "relu", "relu_", "gelu",
               "silu", "tanh", "sigmoid", "hardtanh", "relu6", "leaky_relu", "elu", "cat", "masked_fill"}
MATMUL = {"matmul", "__matmul__", "bmm", "mm", "baddbmm"}


def classify(func_name: str) -> str | None:
    """Op kind of a torch function name, or None for views, dropout and bookkeeping."""
    for kind, names in (("conv", CONV), ("linear", {"linear"}), ("matmul", MATMUL), ("norm", NORM),
                        ("softmax", SOFTMAX), ("pool", POOL), ("elementwise", ELEMENTWISE),
                        ("embedding", {"embedding"}), ("attention", {"multi_head_attention_forward",
                                                                     "scaled_dot_product_attention"})):
        if func_name in names:
            return kind
    return None


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for v in obj for t in _tensors(v)]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    return []


def _shape(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape[1:])  # per sample: the batch (of one) is dropped


def _ntuple(v: Any, n: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(int(x) for x in v)
    return (int(v),) * n


_MHA_SIG = inspect.signature(F.multi_head_attention_forward)
_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")


@dataclass
class OpBuilder:
    """Collects ops while the model runs; tracks which op produced each tensor."""

    param_names: dict[int, str]
    scopes: list[tuple[str, nn.Module]] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    producers: dict[int, tuple[str, ...]] = field(default_factory=dict)
    _alive: list[torch.Tensor] = field(default_factory=list)
    _used: dict[str, int] = field(default_factory=dict)

    # ------------------------------------------------------------------ bookkeeping
    def mark_input(self, x: Any) -> None:
        for t in _tensors(x):
            self._set_producer(t, ("input",))

    def _set_producer(self, t: torch.Tensor, names: tuple[str, ...]) -> None:
        self._alive.append(t)  # keep ids unique for the whole trace
        self.producers[id(t)] = names

    def _inputs_of(self, *objs: Any) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for t in (t for o in objs for t in _tensors(o)):
            for n in self.producers.get(id(t), ()):
                seen[n] = None
        return tuple(seen)

    def _unique(self, name: str) -> str:
        i = self._used.get(name, 0)
        self._used[name] = i + 1
        return name if i == 0 else f"{name}:{i}"

    def _scope_name(self, fn: str, *, leaf_ok: bool = True) -> str:
        scope, module = self.scopes[-1] if self.scopes else ("", None)
        if leaf_ok and module is not None and scope and not any(True for _ in module.children()):
            return self._unique(scope)
        short = fn.strip("_")
        return self._unique(f"{scope}.{short}" if scope else short)

    def _weight_name(self, weight: torch.Tensor, fn: str) -> str:
        fqn = self.param_names.get(id(weight))
        return self._unique(fqn) if fqn else self._scope_name(fn, leaf_ok=False)

    def _emit(self, op: Op, outputs: Any) -> None:
        self.ops.append(op)
        for t in _tensors(outputs):
            self._set_producer(t, (op.name,))

    # ------------------------------------------------------------------ dispatch
    def on_call(self, func: Callable, args: tuple, kwargs: dict, out: Any) -> None:
        fn = getattr(func, "__name__", "")
        kind = classify(fn)
        outs = _tensors(out)
        if not outs:
            return
        if kind is None:  # a view, reshape, dropout, ...: the output comes from the same producers
            names = self._inputs_of(args, kwargs)
            for t in outs if names else ():
                self._set_producer(t, names)
            return
        handler = getattr(self, f"_on_{kind}")
        handler(fn, args, kwargs, out)

    def _on_conv(self, fn, args, kwargs, out):
        a = dict(zip(_CONV_ARGS, args), **kwargs)
        x, w = a["input"], a["weight"]
        nd = w.dim() - 2
        padding = a.get("padding", 0)
        if isinstance(padding, str):
            dil = _ntuple(a.get("dilation", 1), nd)
            padding = (0,) * nd if padding == "valid" else tuple(d * (k - 1) // 2 for d, k in zip(dil, w.shape[2:]))
        self._emit(Op(name=self._weight_name(w, fn), kind="conv", input_shape=_shape(x), output_shape=_shape(out),
                      weight_shape=tuple(int(s) for s in w.shape), stride=_ntuple(a.get("stride", 1), nd),
                      padding=_ntuple(padding, nd), dilation=_ntuple(a.get("dilation", 1), nd),
                      groups=int(a.get("groups", 1)), inputs=self._inputs_of(x)), out)

    def _on_linear(self, fn, args, kwargs, out):
        x = args[0] if args else kwargs["input"]
        w = args[1] if len(args) > 1 else kwargs["weight"]
        self._emit(self._linear_op(self._weight_name(w, fn), x, w, out, self._inputs_of(x)), out)

    @staticmethod
    def _linear_op(name: str, x: torch.Tensor, w: torch.Tensor, out: torch.Tensor, inputs: tuple[str, ...],
                   tokens: int | None = None) -> Op:
        return Op(name=name, kind="linear", input_shape=_shape(x), output_shape=_shape(out),
                  weight_shape=tuple(int(s) for s in w.shape), inputs=inputs,
                  tokens=int(tokens if tokens is not None else x.numel() // max(1, int(w.shape[1]))))

    def _on_matmul(self, fn, args, kwargs, out):
        tensors = _tensors(args)
        if fn == "baddbmm":
            tensors = tensors[1:]
        a, b = tensors[0], tensors[1]
        m = int(a.shape[-2]) if a.dim() >= 2 else 1
        k = int(a.shape[-1])
        n = int(b.shape[-1]) if b.dim() >= 2 else 1
        count = max(1, out.numel() // max(1, m * n))
        self._emit(Op(name=self._scope_name(fn, leaf_ok=False), kind="matmul", input_shape=_shape(a),
                      output_shape=_shape(out), gemm_mnk=(m, n, k), count=count, sparsifiable=False,
                      inputs=self._inputs_of(a, b)), out)

    def _simple(self, kind: str, fn: str, args, kwargs, out, *, tensors_in: list[torch.Tensor]) -> None:
        first = tensors_in[0] if tensors_in else _tensors(out)[0]
        self._emit(Op(name=self._scope_name(fn), kind=kind, input_shape=_shape(first), output_shape=_shape(out),
                      elements_in=sum(int(t.numel()) for t in tensors_in), elements_out=int(out.numel()),
                      sparsifiable=False, inputs=self._inputs_of(tensors_in)), out)

    def _activations(self, args, kwargs) -> list[torch.Tensor]:
        return [t for t in _tensors((args, kwargs)) if not isinstance(t, nn.Parameter)]

    def _on_norm(self, fn, args, kwargs, out):
        self._simple("norm", fn, args, kwargs, out, tensors_in=self._activations(args[:1], {}))

    def _on_softmax(self, fn, args, kwargs, out):
        self._simple("softmax", fn, args, kwargs, out, tensors_in=_tensors(args[:1]))

    def _on_pool(self, fn, args, kwargs, out):
        self._simple("pool", fn, args, kwargs, out, tensors_in=_tensors(args[:1]))

    def _on_elementwise(self, fn, args, kwargs, out):
        self._simple("elementwise", fn, args, kwargs, out, tensors_in=_tensors((args, kwargs)))

    def _on_embedding(self, fn, args, kwargs, out):
        idx = args[0] if args else kwargs["input"]
        w = args[1] if len(args) > 1 else kwargs["weight"]
        name = self._weight_name(w, fn)
        self._emit(Op(name=name, kind="embedding", input_shape=_shape(idx), output_shape=_shape(out),
                      weight_shape=tuple(int(s) for s in w.shape), elements_in=int(idx.numel()),
                      elements_out=int(out.numel()), sparsifiable=False, inputs=self._inputs_of(idx)), out)

    def _on_attention(self, fn, args, kwargs, out):
        if fn == "scaled_dot_product_attention":
            q, k, v = args[:3]
            heads = max(1, q.numel() // (int(q.shape[-2]) * int(q.shape[-1])))
            self._attention_core(q_len=int(q.shape[-2]), k_len=int(k.shape[-2]), head_dim=int(q.shape[-1]),
                                 v_dim=int(v.shape[-1]), heads=heads, inputs=self._inputs_of(q, k, v), out=out)
            return
        self._multi_head_attention(_MHA_SIG.bind(*args, **kwargs).arguments, out)

    def _attention_core(self, *, q_len, k_len, head_dim, v_dim, heads, inputs, out=None) -> str:
        scope = self.scopes[-1][0] if self.scopes else ""
        pre = f"{scope}." if scope else ""
        qk = Op(name=self._unique(pre + "qk"), kind="matmul", input_shape=(heads, q_len, head_dim),
                output_shape=(heads, q_len, k_len), gemm_mnk=(q_len, k_len, head_dim), count=heads,
                sparsifiable=False, inputs=inputs)
        sm = Op(name=self._unique(pre + "softmax"), kind="softmax", input_shape=(heads, q_len, k_len),
                output_shape=(heads, q_len, k_len), elements_in=heads * q_len * k_len,
                elements_out=heads * q_len * k_len, sparsifiable=False, inputs=(qk.name,))
        av = Op(name=self._unique(pre + "av"), kind="matmul", input_shape=(heads, q_len, k_len),
                output_shape=(heads, q_len, v_dim), gemm_mnk=(q_len, v_dim, k_len), count=heads,
                sparsifiable=False, inputs=(sm.name,) + tuple(inputs))
        self.ops.extend([qk, sm])
        self._emit(av, out if out is not None else [])
        return av.name

    def _multi_head_attention(self, a: dict, out) -> None:
        q, k, v = a["query"], a["key"], a["value"]       # (L, B=1, E) or (L, E)
        q_len, k_len, e, heads = int(q.shape[0]), int(k.shape[0]), int(a["embed_dim_to_check"]), int(a["num_heads"])
        ins = self._inputs_of(q, k, v)
        if a.get("use_separate_proj_weight"):
            proj = [self._proj(a[f"{c}_proj_weight"], x, ins) for c, x in (("q", q), ("k", k), ("v", v))]
        else:
            w = a["in_proj_weight"]
            tokens = q_len if q_len == k_len else round((q_len + 2 * k_len) / 3)
            op = Op(name=self._weight_name(w, "in_proj"), kind="linear", input_shape=(q_len, e),
                    output_shape=(q_len, int(w.shape[0])), weight_shape=tuple(int(s) for s in w.shape),
                    tokens=tokens, inputs=ins)
            self.ops.append(op)
            proj = [op.name]
        av = self._attention_core(q_len=q_len, k_len=k_len, head_dim=e // heads, v_dim=e // heads, heads=heads,
                                  inputs=tuple(proj))
        wo = a["out_proj_weight"]
        attn = out[0] if isinstance(out, (tuple, list)) else out
        self._emit(Op(name=self._weight_name(wo, "out_proj"), kind="linear", input_shape=(q_len, e),
                      output_shape=(q_len, int(wo.shape[0])), weight_shape=tuple(int(s) for s in wo.shape),
                      tokens=q_len, inputs=(av,)), attn)

    def _proj(self, w: torch.Tensor, x: torch.Tensor, ins: tuple[str, ...]) -> str:
        op = Op(name=self._weight_name(w, "proj"), kind="linear", input_shape=(int(x.shape[0]), int(w.shape[1])),
                output_shape=(int(x.shape[0]), int(w.shape[0])), weight_shape=tuple(int(s) for s in w.shape),
                tokens=int(x.shape[0]), inputs=self._inputs_of(x) or ins)
        self.ops.append(op)
        return op.name

