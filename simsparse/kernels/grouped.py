"""Grouped GEMMs on the CPU kernels: a grouped or depthwise conv lowered to `groups` GEMMs of
[n, k] (n = Cout/groups, k = Cin/groups·kh·kw), run as one call over all groups.

    prepared = prepare_grouped("csr", weight [groups·n, k], mask [groups·n, k], groups=g)
    y = run_grouped(prepared, x [g, batch, k])       # -> [g, batch, n]

The dense kernel runs the groups as one batched GEMM (`torch.bmm`, one dispatch); every other
kernel prepares each group's slice in its own format and runs one dispatch per group, which is
what the CPU model charges (`archs.cpu_simd.grouped_profile`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from simsparse.errors import GeometryError
from simsparse.kernels.base import KERNELS, check_inputs, masked_weight


@dataclass(frozen=True, eq=False)
class GroupedPrepared:
    kernel: str
    groups: int
    n: int                               # rows per group
    k: int
    parts: tuple[Any, ...] = ()          # one prepared format per group (sparse kernels)
    stacked: torch.Tensor | None = None  # [groups, n, k] masked weights (dense: one batched GEMM)


def prepare_grouped(kernel: str, weight, mask, *, groups: int) -> GroupedPrepared:
    """Each group's rows of the stacked `[groups·n, k]` weight and mask in `kernel`'s format."""
    w, m = check_inputs(weight, mask)
    rows, k = w.shape
    if groups < 1 or rows % groups:
        raise GeometryError(f"a grouped weight of {rows} rows does not split into {groups} groups")
    n = rows // groups
    if kernel == "dense":
        stacked = masked_weight(w, m).reshape(groups, n, k).contiguous()
        return GroupedPrepared(kernel=kernel, groups=groups, n=n, k=k, stacked=stacked)
    impl = KERNELS.get(kernel)
    parts = tuple(impl.prepare(w[g * n:(g + 1) * n], m[g * n:(g + 1) * n]) for g in range(groups))
    return GroupedPrepared(kernel=kernel, groups=groups, n=n, k=k, parts=parts)


def run_grouped(prepared: GroupedPrepared, x: torch.Tensor) -> torch.Tensor:
    """y[g] = x[g] @ (W_g * M_g)^T for every group g."""
    if x.dim() != 3 or x.shape[0] != prepared.groups or x.shape[2] != prepared.k:
        raise GeometryError(f"activations must be [{prepared.groups}, batch, {prepared.k}], got {tuple(x.shape)}")
    x = x.detach().to(torch.float32).contiguous()
    if prepared.stacked is not None:
        return torch.bmm(x, prepared.stacked.transpose(1, 2))
    impl = KERNELS.get(prepared.kernel)
    return torch.stack([impl.run(part, x[g]) for g, part in enumerate(prepared.parts)])
