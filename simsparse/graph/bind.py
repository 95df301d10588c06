"""Binding a MaskSet to a workload by fully-qualified name.

Names match after stripping wrapper prefixes (`module.` from DDP, `model.`, `_orig_mod.` from
torch.compile) from both sides, repeatedly. Ops without a mask are dense. A mask whose shape
does not fit its layer, or a mask set of which nothing matches, is a GeometryError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from simsparse.errors import GeometryError
from simsparse.records import MaskSet, Workload

WRAPPER_PREFIXES = ("module.", "model.", "_orig_mod.")
MASKABLE_KINDS = ("conv", "linear", "embedding")


@dataclass(frozen=True, eq=False)
class BindResult:
    """Masks by op name, plus what did not match."""

    masks: Mapping[str, np.ndarray]      # op name -> weight-shaped bool mask
    unmatched: tuple[str, ...]           # mask names with no op in the workload
    dense: tuple[str, ...]               # conv/linear op names without a mask (run dense)

    @property
    def matched(self) -> int:
        return len(self.masks)


def canonical_name(name: str) -> str:
    """`module.model.layer1.0.conv1.weight` -> `layer1.0.conv1.weight`."""
    changed = True
    while changed:
        changed = False
        for p in WRAPPER_PREFIXES:
            if name.startswith(p):
                name, changed = name[len(p):], True
    return name


def _few(names, n: int = 4) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def bind(maskset: MaskSet | Mapping[str, np.ndarray], workload: Workload) -> BindResult:
    """Match every mask to the op of the same (canonical) name; check shapes."""
    layers = ({k: v.mask for k, v in maskset.layers.items()} if isinstance(maskset, MaskSet) else dict(maskset))
    ops = {canonical_name(o.name): o for o in workload.ops if o.kind in MASKABLE_KINDS}
    masks: dict[str, np.ndarray] = {}
    unmatched = []
    for name, mask in layers.items():
        op = ops.get(canonical_name(name))
        if op is None:
            unmatched.append(name)
            continue
        arr = np.asarray(mask)
        if tuple(arr.shape) != tuple(op.weight_shape or ()):
            raise GeometryError(f"mask {name} has shape {tuple(arr.shape)} but layer {op.name} of workload "
                                f"{workload.name} has weight shape {tuple(op.weight_shape or ())}; "
                                "bind the checkpoint to the workload it was trained on")
        masks[op.name] = arr.astype(bool, copy=False)
    if layers and not masks:
        gemm = [o.name for o in workload.ops if o.kind in ("conv", "linear")]
        raise GeometryError(f"no mask name matches workload {workload.name}: masks {_few(layers)}; layers {_few(gemm)}"
                            "; pick the workload the checkpoint was trained on")
    dense = tuple(o.name for o in workload.ops if o.kind in ("conv", "linear") and o.name not in masks)
    return BindResult(masks=masks, unmatched=tuple(unmatched), dense=dense)
