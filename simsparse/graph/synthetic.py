"""Synthetic masks of a pattern for every sparsifiable layer of a workload (explore before training).

Convention (RigL/SRigL ERK practice): every conv and linear weight with `sparsifiable: true` is
masked — stem and classifier included; attention matmuls, norms and embeddings have no mask.
Each layer gets its own seed (`seed` + its index among the masked layers), so masks are
reproducible and not identical across equal-shaped layers.
"""

from __future__ import annotations

import numpy as np

from simsparse.records import Workload


def synthetic_masks(workload: Workload, pattern_text: str, *, seed: int) -> dict[str, np.ndarray]:
    """{op name: weight-shaped bool mask of `pattern_text`} for every sparsifiable conv/linear op."""
    from simsparse.masks.synthetic import make_mask, parse_pattern

    spec = parse_pattern(pattern_text)  # PatternError on a bad string, before any work
    out: dict[str, np.ndarray] = {}
    for i, op in enumerate(o for o in workload.ops if o.kind in ("conv", "linear") and o.sparsifiable):
        out[op.name] = make_mask(tuple(op.weight_shape), spec, seed=seed + i)
    return out
