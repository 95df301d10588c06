"""Fitting a model definition to a smaller state_dict (a physically shrunk network, `simsparse shrink`).

`fit_to_state(model, state)` replaces, in place, every Conv / Linear / BatchNorm / LayerNorm whose
parameter shapes differ from `state` by a module of the state's shapes (same kernel, stride,
padding, bias, eps; a depthwise conv keeps one group per channel), and updates the head counts of
attention modules that keep them as attributes (`heads`, `kv_heads` beside a `head_dim` or a
query projection), so `model.load_state_dict(state)` then loads the smaller network. A module it
cannot resize (nn.MultiheadAttention with heads removed) is a GeometryError naming it.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from simsparse.errors import GeometryError

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _resized(mod: nn.Module, w: torch.Size) -> nn.Module | None:
    """A module like `mod` whose weight has shape `w` (None: `mod` is not one this can resize)."""
    bias = getattr(mod, "bias", None) is not None
    if isinstance(mod, CONVS):
        depthwise = mod.groups > 1 and mod.groups == mod.in_channels == mod.out_channels
        groups = int(w[0]) if depthwise else mod.groups
        return type(mod)(int(w[1]) * groups, int(w[0]), mod.kernel_size, stride=mod.stride, padding=mod.padding,
                         dilation=mod.dilation, groups=groups, bias=bias, padding_mode=mod.padding_mode)
    if isinstance(mod, nn.Linear):
        return nn.Linear(int(w[1]), int(w[0]), bias=bias)
    if isinstance(mod, NORMS):
        return type(mod)(int(w[0]), eps=mod.eps, momentum=mod.momentum, affine=mod.affine,
                         track_running_stats=mod.track_running_stats)
    if isinstance(mod, nn.LayerNorm):
        return nn.LayerNorm(int(w[0]), eps=mod.eps, elementwise_affine=mod.elementwise_affine)
    return None


def _head_dims(model: nn.Module) -> dict[str, tuple[str, int]]:
    """{attention module: (its query projection child, head_dim)} for modules counting `heads`."""
    out = {}
    for name, mod in model.named_modules():
        heads = getattr(mod, "heads", None)
        q = next((c for c in ("query", "q_proj") if isinstance(getattr(mod, c, None), nn.Linear)), None)
        if isinstance(heads, int) and q is not None:
            out[name] = (q, int(getattr(mod, "head_dim", 0) or getattr(mod, q).out_features // heads))
    return out


def fit_to_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """`model` with its modules resized to the shapes of `state` (see the module doc)."""
    heads = _head_dims(model)
    for name, mod in list(model.named_modules()):
        if isinstance(mod, nn.MultiheadAttention):
            w = state.get(f"{name}.in_proj_weight")
            if w is not None and tuple(w.shape) != tuple(mod.in_proj_weight.shape):
                raise GeometryError(f"{name}: nn.MultiheadAttention cannot hold fewer heads; use an attention "
                                    "module with separate projections to load a head-pruned state")
            continue
        w = state.get(f"{name}.weight")
        if w is None or not hasattr(mod, "weight") or tuple(w.shape) == tuple(mod.weight.shape):
            continue
        new = _resized(mod, w.shape)
        if new is None:
            raise GeometryError(f"{name}: cannot resize a {type(mod).__name__} to the state's {tuple(w.shape)}")
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)
    for name, (q, head_dim) in heads.items():
        mod = model.get_submodule(name) if name else model
        old = mod.heads
        mod.heads = getattr(mod, q).out_features // head_dim
        if isinstance(getattr(mod, "kv_heads", None), int):
            k = getattr(mod, "k_proj", None)
            mod.kv_heads = k.out_features // head_dim if isinstance(k, nn.Linear) else mod.kv_heads * mod.heads // old
    return model
