"""Physically shrinking a state_dict: the smaller dense model `graph.shrink` plans, as tensors.

`shrink_state(state, ns)` slices every tensor the shrink touches, keyed as the model's state_dict:
a conv/linear weight to its kept output rows and input columns (a depthwise conv to its kept
groups), its bias to the kept rows (`in_proj_bias` beside a fused `in_proj_weight`), and every
per-channel tensor of a channel-wise op that has parameters (a BatchNorm's weight, bias and
running statistics: the tensors named `<op>.<x>` whose first dimension is the channel count).
Works on torch tensors and numpy arrays alike (fancy indexing only); other entries are kept as they
are. `check_removable(state, ns)` refuses a removal that would change the network's function: a
removed channel whose producer bias, or whose norm's shift (bias, and weight x running mean), is
not zero still carries a constant into the consumers (Chase zeroes them with the channel), unless
its only readers are depthwise convs whose filters of it are zero; so does a removed attention
head whose value bias is not zero while the output projection still reads it.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from simsparse.errors import GeometryError
from simsparse.graph.coupling import ChannelGroup, channel_groups, is_depthwise
from simsparse.graph.shrink import NetworkShrink
from simsparse.graph.shrink_heads import find_blocks

GEMM = ("conv", "linear")


def bias_name(weight_name: str) -> str:
    """`x.weight` -> `x.bias`; `x.in_proj_weight` -> `x.in_proj_bias`."""
    head, _, last = weight_name.rpartition(".")
    return f"{head}.{last[:-len('weight')]}bias" if last.endswith("weight") else f"{weight_name}.bias"


def _channel_tensors(state: Mapping[str, Any], prefix: str, channels: int) -> list[str]:
    return [k for k, v in state.items() if k.startswith(prefix + ".") and "." not in k[len(prefix) + 1:]
            and getattr(v, "ndim", 0) >= 1 and v.shape[0] == channels]


def shrink_state(state: Mapping[str, Any], ns: NetworkShrink) -> dict[str, Any]:
    """The state_dict of the shrunk network (see the module doc)."""
    ops = {o.name: o for o in ns.original.ops}
    out = dict(state)
    for name, rec in ns.ops.items():
        op = ops[name]
        rows = np.asarray(rec.kept_out) if rec.kept_out is not None else None
        if op.kind in GEMM:
            if name not in state:
                raise GeometryError(f"the state_dict has no tensor {name}; pass the checkpoint of this model")
            w = state[name]
            if rows is not None:
                w = w[rows]
            if rec.kept_in is not None:
                w = w[:, np.asarray(rec.kept_in)]
            out[name] = w
            b = bias_name(name)
            if b in state and rows is not None:
                out[b] = state[b][rows]
        elif rows is not None:
            for key in _channel_tensors(state, name, rec.channels):
                out[key] = state[key][rows]
    return out


def _as_array(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def check_removable(state: Mapping[str, Any], ns: NetworkShrink) -> None:
    """GeometryError when a removed channel still carries a constant (see the module doc)."""
    ops = {o.name: o for o in ns.original.ops}
    blocks = {g.group for g in ns.groups if g.kind == "heads"}
    group_of = {m: g for g in channel_groups(ns.original) for m in g.producers + g.followers}
    for name, rec in ns.ops.items():
        op = ops[name]
        if rec.kept_out is None or op.kind == "matmul" or set(rec.groups) <= blocks:
            continue                                   # attention projections: _check_heads
        removed = _read(state, group_of.get(name), ops, np.setdiff1d(np.arange(rec.channels), rec.kept_out))
        if op.kind in GEMM:
            b = bias_name(name)
            if b in state and np.any(_as_array(state[b])[removed] != 0):
                raise GeometryError(f"layer {name}: removed output channels keep a nonzero bias ({b}); the shrunk "
                                    "network would differ: zero the bias of removed channels (Chase does)")
        elif op.kind == "norm":
            shift = _norm_shift(state, name, removed)
            if shift is not None and np.any(shift != 0):
                raise GeometryError(f"norm {name}: removed channels keep a nonzero shift (bias, or weight x running "
                                    "mean); the shrunk network would differ: zero the norm entries of removed "
                                    "channels (Chase does)")
    _check_heads(state, ns)


def _read(state: Mapping[str, Any], group: ChannelGroup | None, ops, removed: np.ndarray) -> np.ndarray:
    """The `removed` channels some consumer still reads: all, unless every consumer is a depthwise conv
    (filter c reads channel c alone), whose zero filters leave their channels unread."""
    readers = group.consumers if group is not None else ()
    if not readers or not all(is_depthwise(ops[c]) and c in state for c in readers):
        return removed
    read = np.zeros(removed.size, bool)
    for c in readers:
        w = _as_array(state[c])[removed]
        read |= w.reshape(removed.size, -1).any(axis=1)
    return removed[read]


def _check_heads(state: Mapping[str, Any], ns: NetworkShrink) -> None:
    removed = {g.group: set(g.removed) for g in ns.groups if g.kind == "heads" and g.removed}
    ops = {o.name: o for o in ns.original.ops}
    for block in (b for b in find_blocks(ns.original) if b.name in removed):
        v, o, bias = ops[block.value], ops[block.out], bias_name(block.value)
        if bias not in state or block.out not in state:
            continue
        for unit in removed[block.name]:
            read = np.any(_as_array(state[block.out])[:, sorted(block.cols_of_units(o, {unit}))] != 0)
            rows = sorted(block.rows_of_units(v, {unit}) & block.value_rows(v))
            if read and np.any(_as_array(state[bias])[rows] != 0):
                raise GeometryError(f"attention {block.name}: removed head {unit} keeps a nonzero value bias ({bias}) "
                                    "that the output projection still reads; zero it, or the shrunk network differs")


def _norm_shift(state: Mapping[str, Any], name: str, removed: np.ndarray) -> np.ndarray | None:
    get = {k: _as_array(state[f"{name}.{k}"])[removed] for k in ("weight", "bias", "running_mean")
           if f"{name}.{k}" in state}
    if not get:
        return None
    bias = get.get("bias", np.zeros(removed.size))
    mean = get.get("running_mean", np.zeros(removed.size))
    weight = get.get("weight", np.ones(removed.size))
    return bias - weight * mean
