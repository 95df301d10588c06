"""Synthetic masks of a pattern for every sparsifiable layer of a workload (explore before training).

Convention (RigL/SRigL ERK practice): every conv and linear weight with `sparsifiable: true` is
masked — stem and classifier included; attention matmuls, norms and embeddings have no mask.
Each layer gets its own seed (`seed` + its index among the masked layers), so masks are
reproducible and not identical across equal-shaped layers. `synthetic_gemm_work` is the same for
a single GEMM (`evaluate --gemm M,N,K --pattern P`).
"""

from __future__ import annotations

import numpy as np

from simsparse.graph.lower import gemm_work
from simsparse.masks.synthetic import make_mask, make_matrix, parse_pattern
from simsparse.records import Gemm, LayerWork, Workload


def synthetic_masks(workload: Workload, pattern_text: str, *, seed: int) -> dict[str, np.ndarray]:
    """{op name: weight-shaped bool mask of `pattern_text`} for every sparsifiable conv/linear op."""
    spec = parse_pattern(pattern_text)  # PatternError on a bad string, before any work
    out: dict[str, np.ndarray] = {}
    for i, op in enumerate(o for o in workload.ops if o.kind in ("conv", "linear") and o.sparsifiable):
        out[op.name] = make_mask(tuple(op.weight_shape), spec, seed=seed + i)
    return out


def synthetic_gemm_work(*, m: int, n: int, k: int, pattern: str, dtype: str, seed: int = 0,
                        name: str = "gemm") -> LayerWork:
    """One synthetic GEMM layer: a weight [n, k] with a seeded mask of `pattern`, m activation rows.
    A pattern that keeps every weight (dense, density=1, ...) gives a dense layer (no mask)."""
    mat = make_matrix(n, k, pattern, seed=seed)
    gemm = Gemm(m=m, n=n, k=k, dtype=dtype)
    return gemm_work(name=name, gemm=gemm, mask=None if mat.all() else mat)
