"""Synthetic masks of a named pattern for every sparsifiable layer of a workload.

Convention (RigL/SRigL ERK practice): every conv and linear weight with `sparsifiable: true` is
masked — stem and classifier included; attention matmuls, norms and embeddings have no mask.
Each layer gets its own seed (`seed` + its index among the masked layers), so masks are
reproducible and not identical across equal-shaped layers. `synthetic_gemm_work` is the same for
a single GEMM (`evaluate --gemm M,N,K --pattern P`).

`synthetic_works` and `synthetic_gemm_work` never draw a mask where the pattern has a closed form
(dense, N:M, fan-in, channels: `masks.synthetic.synthetic_pattern`): each layer carries its Pattern
and the recipe to draw the mask (every arch kind plans from the Pattern alone); `materialise` draws
it, one layer at a time, for whatever needs the mask values themselves (kernels, DST).

`channels=D` on a network is a network-level decision (`channel_network`): a channel-pruned
network, where a share D of the channels of every removable coupling group (closed, its producers
sparsifiable; groups fed only by depthwise convs follow their input group) is kept, each group
drawn with its own seed (`seed` + the group's index): producers lose those output rows, consumers
the matching input channels (H·W columns each after a flatten), depthwise convs the matching
groups. Residual groups keep a share `skip=S` (`channels=D,skip=S|keep`), by default D under the
prune-skip policy and all under no-skip. Each layer's closed-form Pattern
(`masks.closed_form.channels_pattern`) is exact; no mask is drawn.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from simsparse.graph.coupling import channel_groups, columns_per_channel, is_depthwise
from simsparse.graph.lower import gemm_work, lower, masked_work, plain_work
from simsparse.graph.shrink import DEFAULT_POLICY, check_policy
from simsparse.masks.closed_form import channels_pattern
from simsparse.masks.patterns import analyze_rows, as_matrix
from simsparse.masks.synthetic import PatternSpec, make_mask, make_matrix, parse_pattern, synthetic_pattern
from simsparse.records import Gemm, LayerWork, MaskRecipe, Pattern, Workload


def _seeds(workload: Workload, seed: int) -> dict[str, int]:
    """{op name: its mask's seed} of every masked (sparsifiable conv/linear) op: `seed` + its index."""
    masked = (o for o in workload.ops if o.kind in ("conv", "linear") and o.sparsifiable)
    return {o.name: seed + i for i, o in enumerate(masked)}


def synthetic_masks(workload: Workload, pattern_text: str, *, seed: int) -> dict[str, np.ndarray]:
    """{op name: weight-shaped bool mask of `pattern_text`} for every sparsifiable conv/linear op."""
    spec = parse_pattern(pattern_text)  # PatternError on a bad string, before any work
    shapes = {o.name: tuple(o.weight_shape or ()) for o in workload.ops}
    return {name: make_mask(shapes[name], spec, seed=s) for name, s in _seeds(workload, seed).items()}


def synthetic_works(workload: Workload, pattern_text: str, *, seed: int, batch: int, dtype: str,
                    policy: str = DEFAULT_POLICY) -> list[LayerWork]:
    """One LayerWork per op, sparsifiable conv/linear layers with `pattern_text` (same seeds as
    `synthetic_masks`): the closed-form Pattern and its recipe, or the drawn mask where no closed form
    exists; `channels=D` is a channel-pruned network (`channel_network`)."""
    spec = parse_pattern(pattern_text)
    if spec.kind == "channels":
        patterns = channel_network(workload, spec, seed=seed, policy=policy)
        return [LayerWork(name=op.name, kind="gemm", op_kind=op.kind, gemm=gemm, pattern=patterns[op.name],
                          dtype=dtype) if op.name in patterns else plain_work(op, gemm, batch=batch, dtype=dtype)
                for op, gemm in lower(workload, batch=batch, dtype=dtype)]
    seeds = _seeds(workload, seed)
    out: list[LayerWork] = []
    for op, gemm in lower(workload, batch=batch, dtype=dtype):
        if gemm is None or op.name not in seeds:
            out.append(plain_work(op, gemm, batch=batch, dtype=dtype))
            continue
        out.append(pattern_work(name=op.name, op_kind=op.kind, gemm=gemm, weight_shape=tuple(op.weight_shape),
                                recipe=MaskRecipe(pattern=spec.text, seed=seeds[op.name]))
                   or masked_work(op, gemm, make_mask(tuple(op.weight_shape), spec, seed=seeds[op.name]), dtype=dtype))
    return out


def channel_network(workload: Workload, spec: PatternSpec, *, seed: int,
                    policy: str = DEFAULT_POLICY) -> dict[str, Pattern]:
    """{op: closed-form Pattern} of the channel-pruned network `spec` describes (see the module doc);
    layers that lose nothing are left out (dense)."""
    check_policy(policy)
    ops = {o.name: o for o in workload.ops}
    rows: dict[str, set[int]] = {}
    cols: dict[str, set[int]] = {}
    groups = channel_groups(workload)
    removed_of: dict[str, np.ndarray] = {}
    for i, grp in enumerate(groups):
        share = _share(grp, spec, policy)
        producers = [ops[p] for p in grp.producers]
        if grp.open or share >= 1.0 or all(is_depthwise(p) for p in producers) or not all(p.sparsifiable for p in producers):
            continue
        keep = max(1, round(share * grp.channels))
        removed = np.sort(np.random.default_rng(seed + i).permutation(grp.channels)[keep:])
        removed_of[grp.name] = removed
        for p in grp.producers:
            rows.setdefault(p, set()).update(removed.tolist())
        for c in grp.consumers:
            if is_depthwise(ops[c]):
                rows.setdefault(c, set()).update(removed.tolist())     # its groups of removed channels go too
                continue
            per = columns_per_channel(grp, ops[c])
            cols.setdefault(c, set()).update((removed[:, None] * per + np.arange(per)).ravel().tolist())
    out = {}
    for name in sorted(set(rows) | set(cols), key=list(ops).index):
        w = tuple(ops[name].weight_shape)
        n, k = w[0], math.prod(w[1:])
        kept_rows = np.setdiff1d(np.arange(n), sorted(rows.get(name, ())))
        kept_in = np.setdiff1d(np.arange(w[1]), sorted(cols[name])) if name in cols else None
        out[name] = channels_pattern(w, n, k, kept_rows, kept_in)
    return out


def _share(grp, spec: PatternSpec, policy: str) -> float:
    if not grp.residual:
        return spec.density
    if spec.skip is not None:
        return spec.skip
    return spec.density if policy == "prune-skip" else 1.0


def pattern_work(*, name: str, op_kind: str, gemm: Gemm, weight_shape: tuple[int, ...],
                 recipe: MaskRecipe) -> LayerWork | None:
    """A GEMM LayerWork carrying the closed-form Pattern of `recipe` and no mask (None: no closed form)."""
    pattern = synthetic_pattern(weight_shape, recipe.pattern, seed=recipe.seed)
    if pattern is None:
        return None
    return LayerWork(name=name, kind="gemm", op_kind=op_kind, gemm=gemm, pattern=pattern, recipe=recipe,
                     dtype=gemm.dtype)


def synthetic_gemm_work(*, m: int, n: int, k: int, pattern: str, dtype: str, seed: int = 0,
                        name: str = "gemm") -> LayerWork:
    """One synthetic GEMM layer: a weight [n, k] with a seeded mask of `pattern`, m activation rows,
    as its closed-form Pattern (no [n, k] mask in memory) or, where none exists, the drawn mask.
    A pattern that keeps every weight (dense, density=1, ...) gives a dense layer (no mask, no pattern)."""
    gemm = Gemm(m=m, n=n, k=k, dtype=dtype)
    recipe = MaskRecipe(pattern=parse_pattern(pattern).text, seed=seed)
    work = pattern_work(name=name, op_kind="linear", gemm=gemm, weight_shape=(n, k), recipe=recipe)
    if work is None:
        mat = make_matrix(n, k, pattern, seed=seed)
        return gemm_work(name=name, gemm=gemm, mask=None if mat.all() else mat)
    return gemm_work(name=name, gemm=gemm) if work.pattern.density == 1.0 else work


def materialise(work: LayerWork) -> LayerWork:
    """`work` with its synthetic mask drawn and measured (unchanged when it has a mask or no recipe)."""
    if work.mask is not None or work.recipe is None or work.pattern is None:
        return work
    wmask = make_mask(tuple(work.pattern.shape), work.recipe.pattern, seed=work.recipe.seed)
    mat = as_matrix(wmask)
    return replace(work, mask=mat, pattern=analyze_rows(mat, wmask.shape))
