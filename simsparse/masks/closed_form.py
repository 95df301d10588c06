"""Closed-form `Pattern`s of synthetic masks: what `patterns.analyze` would measure on the mask
`masks.synthetic.make_mask` draws, computed from the pattern spec and the weight shape alone, so
no mask is materialised (a 128256 x 4096 lm_head or a 100000 x 100000 GEMM costs microseconds).

Exact: dense and channels=D (the kept channels are drawn with the same seeded generator as the
mask), and the deterministic parts of N:M and fan-in: nnz, density, fan-in, the row histogram,
the envelope and group histogram along k at group sizes that are multiples of M.
Expected values where positions are random (N:M at group sizes below M, fan-in group counts,
the output-axis envelopes, block occupancy): a group histogram holds the expected number of
groups per count, rounded; an envelope is the largest count at least half a group is expected to
reach (E[groups with that count] >= 0.5). Rows of a synthetic mask are independent draws.

`None` (no closed form: the caller draws and measures the mask) for density=D, fan-in 0, an N:M
whose M is neither a divisor nor a multiple of the group sizes or does not divide the reduction,
and layers small enough that an all-zero input channel is expected (E >= 0.5), whose indices
only the drawn mask can tell.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from simsparse.masks.patterns import BLOCK_SIZES, NM_GROUP_SIZES, reduction_per_channel
from simsparse.records import FanIn, Pattern

Probs = Callable[[int], np.ndarray]   # draws -> P[count = c], c = 0..draws, for one group of `draws` entries


def hypergeom(population: int, successes: int, draws: int) -> np.ndarray:
    """P[c] of c successes in `draws` entries drawn without replacement (exact integer arithmetic)."""
    draws = min(draws, population)
    total = math.comb(population, draws)
    return np.array([math.comb(successes, c) * math.comb(population - successes, draws - c) / total
                     for c in range(draws + 1)])


def binomial(draws: int, p: float) -> np.ndarray:
    return np.array([math.comb(draws, c) * p ** c * (1 - p) ** (draws - c) for c in range(draws + 1)])


def _expected(groups_by_size: dict[int, float], probs: Probs) -> dict[int, float]:
    """Expected number of groups per count, over groups of several sizes {size: how many}."""
    out: dict[int, float] = {}
    for size, n_groups in groups_by_size.items():
        if n_groups <= 0 or size <= 0:
            continue
        for c, pr in enumerate(probs(size)):
            out[c] = out.get(c, 0.0) + n_groups * float(pr)
    return out


def _hist_env(expected: dict[int, float]) -> tuple[dict[int, int], int]:
    hist = {c: int(round(e)) for c, e in sorted(expected.items()) if round(e) > 0}
    env = max((c for c, e in expected.items() if e >= 0.5), default=0)
    return hist, env


def _sizes(length: int, m: int, lines: int) -> dict[int, float]:
    """{group size: count} of the groups of `m` along an axis of `length` (last group partial), `lines` times."""
    full, tail = divmod(length, m)
    out = {m: float(full * lines)} if full else {}
    if tail:
        out[tail] = out.get(tail, 0.0) + lines
    return out


def _along(rows: int, cols: int, probs: Probs) -> tuple[dict[int, int], dict[int, dict[int, int]]]:
    env, hists = {}, {}
    for m in NM_GROUP_SIZES:
        hists[m], env[m] = _hist_env(_expected(_sizes(cols, m, rows), probs))
    return env, hists


def _blocks(rows: int, cols: int, nnz: int, p_segment_empty: Callable[[int], float]) -> dict[int, float]:
    out = {}
    for b in BLOCK_SIZES:
        blocks = math.ceil(rows / b) * math.ceil(cols / b)
        occupied = blocks * (1.0 - p_segment_empty(b) ** min(b, rows))
        out[b] = nnz / (occupied * b * b) if occupied > 0 else 1.0
    return out


def _pattern(shape, rows, cols, nnz, per_row, env, hists, env_out, block, **extra) -> Pattern:
    kw = dict(rows_removed=0, cols_removed=0, removed_rows=(), removed_cols=())
    kw.update(extra)
    kept = rows - kw["rows_removed"]
    return Pattern(shape=tuple(shape), rows=rows, cols=cols, nnz=nnz, density=nnz / max(1, rows * cols),
                   nm_envelope=env, nm_envelope_out=env_out, fan_in=FanIn(min=per_row if kept else 0,
                   max=per_row if kept else 0, constant=bool(kept)), block=block,
                   row_nnz_histogram={c: r for c, r in ((0, rows - kept), (per_row, kept)) if r},
                   reduction_per_channel=reduction_per_channel(tuple(shape)), group_histogram=hists,
                   source="closed-form", **kw)


def _out_envelope(rows: int, cols: int, p: float) -> dict[int, int]:
    return {m: _hist_env(_expected(_sizes(rows, m, cols), lambda d: binomial(d, p)))[1] for m in NM_GROUP_SIZES}


def _no_empty_channels(shape, rows: int, p_channel_empty_in_row: float) -> bool:
    cin = shape[1] if len(shape) > 2 else shape[-1]
    return cin * p_channel_empty_in_row ** rows < 0.5


def dense_pattern(shape: tuple[int, ...], rows: int, cols: int) -> Pattern:
    full = lambda d: np.eye(d + 1)[d]  # noqa: E731 - every entry of a group is kept
    env, hists = _along(rows, cols, full)
    return _pattern(shape, rows, cols, rows * cols, cols, env, hists,
                    {m: min(m, rows) for m in NM_GROUP_SIZES}, _blocks(rows, cols, rows * cols, lambda b: 0.0))


def nm_pattern(shape: tuple[int, ...], rows: int, cols: int, n: int, m: int) -> Pattern | None:
    if cols % m or any(g % m and m % g for g in NM_GROUP_SIZES + BLOCK_SIZES):
        return None
    r = reduction_per_channel(tuple(shape))
    if not _no_empty_channels(shape, rows, ((m - n) / m) ** r):
        return None

    def probs(d: int) -> np.ndarray:
        if d % m == 0:                       # whole groups of M: exactly N per group
            return np.eye(d + 1)[n * d // m]
        return hypergeom(m, n, d)            # a part of one group of M

    env, hists = _along(rows, cols, probs)
    nnz = rows * cols * n // m
    return _pattern(shape, rows, cols, nnz, cols * n // m, env, hists, _out_envelope(rows, cols, n / m),
                    _blocks(rows, cols, nnz, lambda b: float(probs(b)[0])))


def fanin_pattern(shape: tuple[int, ...], rows: int, cols: int, k: int) -> Pattern | None:
    r = reduction_per_channel(tuple(shape))
    if k < 1 or not _no_empty_channels(shape, rows, math.comb(cols - r, k) / math.comb(cols, k)):
        return None
    probs = lambda d: hypergeom(cols, k, d)  # noqa: E731 - a group of d of the row's cols, k of them kept
    env, hists = _along(rows, cols, probs)
    nnz = rows * k
    return _pattern(shape, rows, cols, nnz, k, env, hists, _out_envelope(rows, cols, k / cols),
                    _blocks(rows, cols, nnz, lambda b: float(probs(b)[0])))


def channels_pattern(shape: tuple[int, ...], rows: int, cols: int, kept_rows: np.ndarray) -> Pattern:
    keep = np.zeros(rows, bool)
    keep[kept_rows] = True
    full = lambda d: np.eye(d + 1)[d]  # noqa: E731 - a kept row is dense
    env, hists = _along(int(keep.sum()), cols, full)
    removed = int(rows - keep.sum())
    if removed:
        for m in NM_GROUP_SIZES:
            hists[m][0] = hists[m].get(0, 0) + removed * math.ceil(cols / m)
    env_out, block = {}, {}
    for m in NM_GROUP_SIZES:
        env_out[m] = int(np.bincount(np.flatnonzero(keep) // m).max(initial=0))
    nnz = int(keep.sum()) * cols
    for b in BLOCK_SIZES:
        occupied = np.unique(np.flatnonzero(keep) // b).size * math.ceil(cols / b)
        block[b] = nnz / (occupied * b * b) if occupied else 1.0
    return _pattern(shape, rows, cols, nnz, cols, env, hists, env_out, block, rows_removed=removed,
                    removed_rows=tuple(int(i) for i in np.flatnonzero(~keep)))
