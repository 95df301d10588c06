"""Training-FLOPs accounting that follows the masks in force (RigL's accounting).

Per sample and weight tensor: forward = 2 · nnz_effective · output positions (output pixels of a
conv, tokens of a linear). Backward = the input-gradient GEMM (same cost as the forward) plus the
weight-gradient GEMM (same cost as the forward, or the DENSE cost on steps that need dense
gradients for regrowth), i.e. ≈ 2× forward. Only Conv/Linear/attention-projection weights are
counted (norms, activations and attention score matmuls are not), for the sparse run and for the
dense baseline alike, so the ratio is the weight-FLOPs ratio of RigL's Table 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import torch
from torch import nn


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of one training step of the whole batch: the sparse run and its dense baseline."""

    sparse: float
    dense: float


def weight_modules(model: nn.Module) -> dict[str, tuple[nn.Module, str]]:
    """{weight fqn: (module, kind)} for every Conv/Linear weight and attention in/out projection."""
    out: dict[str, tuple[nn.Module, str]] = {}
    for name, mod in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(mod, nn.MultiheadAttention):
            if mod.in_proj_weight is not None:
                out[f"{prefix}in_proj_weight"] = (mod, "attention")
            out[f"{prefix}out_proj.weight"] = (mod, "attention")
        elif isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            if f"{prefix}weight" not in out:
                out[f"{prefix}weight"] = (mod, "gemm")
    return out


def layer_positions(model: nn.Module, example_input: torch.Tensor) -> dict[str, int]:
    """Output positions per sample (pixels or tokens) of every counted weight, by a traced forward."""
    batch = int(example_input.shape[0])
    found: dict[str, int] = {}
    hooks = []

    def make_hook(fqns: list[str], kind: str, mod: nn.Module):
        def hook(_m, inputs, output):
            if kind == "attention":  # tokens of the attention output (query length), per sample
                attn_out = output[0] if isinstance(output, tuple) else output
                pos = attn_out.numel() // (mod.embed_dim * batch)
            else:
                out = output
                channels = out.shape[-1] if isinstance(mod, nn.Linear) else out.shape[1]
                pos = out.numel() // (channels * batch)
            for f in fqns:
                found[f] = found.get(f, 0) + max(1, int(pos))  # a module run twice counts twice
        return hook

    by_module: dict[int, tuple[nn.Module, str, list[str]]] = {}
    for fqn, (mod, kind) in weight_modules(model).items():
        by_module.setdefault(id(mod), (mod, kind, []))[2].append(fqn)
    for mod, kind, fqns in by_module.values():
        hooks.append(mod.register_forward_hook(make_hook(fqns, kind, mod)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return found


def step_flops(*, positions: Mapping[str, int], sizes: Mapping[str, int], densities: Mapping[str, float],
               dense_grad: bool, batch: int) -> StepFlops:
    """FLOPs of one step: forward 2·d·size·pos, backward input-grad d·… plus weight-grad (d or 1)."""
    sparse = dense = 0.0
    for fqn, pos in positions.items():
        full = 2.0 * sizes[fqn] * pos * batch
        d = float(densities.get(fqn, 1.0))
        weight_grad = full if dense_grad else d * full
        sparse += d * full + d * full + weight_grad
        dense += 3.0 * full
    return StepFlops(sparse=sparse, dense=dense)


def weight_sizes(model: nn.Module) -> dict[str, int]:
    """numel of every counted weight."""
    params = dict(model.named_parameters())
    return {fqn: math.prod(params[fqn].shape) for fqn in weight_modules(model) if fqn in params}
