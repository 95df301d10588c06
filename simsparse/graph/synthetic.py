"""Synthetic masks of a pattern for every sparsifiable layer of a workload (explore before training).

Convention (RigL/SRigL ERK practice): every conv and linear weight with `sparsifiable: true` is
masked — stem and classifier included; attention matmuls, norms and embeddings have no mask.
Each layer gets its own seed (`seed` + its index among the masked layers), so masks are
reproducible and not identical across equal-shaped layers.

`synthetic_works` never draws a mask where the pattern has a closed form (dense, N:M, fan-in,
channels: `masks.synthetic.synthetic_pattern`): each layer carries its Pattern and the recipe to
draw the mask; `materialise` draws it, one layer at a time, for a model that needs the mask itself.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simsparse.graph.lower import lower, masked_work, plain_work, shrunk_gemm
from simsparse.masks.patterns import analyze, as_matrix
from simsparse.masks.synthetic import make_mask, parse_pattern, synthetic_pattern
from simsparse.records import LayerWork, MaskRecipe, Workload


def synthetic_masks(workload: Workload, pattern_text: str, *, seed: int) -> dict[str, np.ndarray]:
    """{op name: weight-shaped bool mask of `pattern_text`} for every sparsifiable conv/linear op."""
    spec = parse_pattern(pattern_text)  # PatternError on a bad string, before any work
    out: dict[str, np.ndarray] = {}
    for i, op in enumerate(o for o in workload.ops if o.kind in ("conv", "linear") and o.sparsifiable):
        out[op.name] = make_mask(tuple(op.weight_shape), spec, seed=seed + i)
    return out


def synthetic_works(workload: Workload, pattern_text: str, *, seed: int, batch: int, dtype: str) -> list[LayerWork]:
    """One LayerWork per op, sparsifiable conv/linear layers with `pattern_text` (same seeds as
    `synthetic_masks`): the closed-form Pattern and its recipe, or the drawn mask where no closed form exists."""
    spec = parse_pattern(pattern_text)
    masked = [o for o in workload.ops if o.kind in ("conv", "linear") and o.sparsifiable]
    seeds = {o.name: seed + i for i, o in enumerate(masked)}
    out: list[LayerWork] = []
    for op, gemm in lower(workload, batch=batch, dtype=dtype):
        if gemm is None or op.name not in seeds:
            out.append(plain_work(op, gemm, batch=batch, dtype=dtype))
            continue
        out.append(pattern_work(name=op.name, op_kind=op.kind, gemm=gemm, weight_shape=tuple(op.weight_shape),
                                recipe=MaskRecipe(pattern=spec.text, seed=seeds[op.name]), groups=max(1, op.groups))
                   or masked_work(op, gemm, make_mask(tuple(op.weight_shape), spec, seed=seeds[op.name]), dtype=dtype))
    return out


def pattern_work(*, name: str, op_kind: str, gemm, weight_shape: tuple[int, ...], recipe: MaskRecipe,
                 groups: int = 1) -> LayerWork | None:
    """A GEMM LayerWork carrying the closed-form Pattern of `recipe` and no mask (None: no closed form)."""
    pattern = synthetic_pattern(weight_shape, recipe.pattern, seed=recipe.seed)
    if pattern is None:
        return None
    return LayerWork(name=name, kind="gemm", op_kind=op_kind, gemm=gemm, pattern=pattern, recipe=recipe,
                     shrunk=shrunk_gemm(gemm, pattern, groups=groups), dtype=gemm.dtype)


def materialise(work: LayerWork) -> LayerWork:
    """`work` with its synthetic mask drawn and measured (unchanged when it has a mask or no recipe)."""
    if work.mask is not None or work.recipe is None or work.pattern is None:
        return work
    wmask = make_mask(tuple(work.pattern.shape), work.recipe.pattern, seed=work.recipe.seed)
    pattern = analyze(wmask, name=work.name)
    groups = work.gemm.count if work.op_kind == "conv" else 1
    return replace(work, mask=as_matrix(wmask), pattern=pattern, shrunk=shrunk_gemm(work.gemm, pattern, groups=groups))
