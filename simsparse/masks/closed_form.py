"""Closed-form `Pattern`s of synthetic masks: what `patterns.analyze` would measure on the mask
`masks.synthetic.make_mask` draws, computed from the pattern spec and the weight shape alone, so
no mask is materialised (a 128256 x 4096 lm_head or a 100000 x 100000 GEMM costs microseconds).

Every field `patterns.analyze` measures is filled, so every arch kind plans a synthetic layer
from its closed form alone (the conformance suite checks plans read only the Pattern).

Exact: dense and channels=D (the kept channels are drawn with the same seeded generator as the
mask), and the deterministic parts of N:M and fan-in: nnz, density, fan-in, the row histogram,
the envelope, group histogram and per-row group-maximum histogram along k at group sizes that are
multiples of M. Expected values where positions are random (N:M at group sizes below M, fan-in
group counts, the output-axis envelopes, block occupancy, all-zero columns): a histogram holds the
expected number of groups (or rows) per count, rounded; an envelope is the largest count at least
half a group is expected to reach (E[groups with that count] >= 0.5); a row's group maximum takes
its groups as independent; `zero_cols` is the expected number of all-zero columns, rounded. Rows
of a synthetic mask are independent draws.

`None` (no closed form: the caller draws and measures the mask) for density=D, fan-in 0, an N:M
whose M is neither a divisor nor a multiple of the group sizes or does not divide the reduction,
and layers small enough that an all-zero input channel is expected (E >= 0.5), whose indices
only the drawn mask can tell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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


RowBelow = Callable[[int], np.ndarray]  # M -> P[a row's largest count among its groups of M <= c], c = 0..M
FANIN_EXACT_MAX = 512   # fan-in up to this: the row maximum by exact polynomial products; above: normal approximation


def _independent_below(cols: int, probs: Probs) -> RowBelow:
    """A row's groups taken as independent (exact where `probs` is deterministic)."""
    def below(m: int) -> np.ndarray:
        out = np.ones(m + 1)
        for size, n_groups in _sizes(cols, m, 1).items():
            cdf = np.minimum(np.cumsum(probs(size)), 1.0)
            out *= np.concatenate([cdf, np.ones(m + 1 - cdf.size)]) ** n_groups
        return out
    return below


def _nm_below(cols: int, n: int, m_pat: int, probs: Probs) -> RowBelow:
    """N:M rows: groups of M >= m_pat hold exact counts; groups of M < m_pat split one group of the
    pattern, counted exactly (ways to keep n of m_pat with every part <= c); pattern groups are independent."""
    independent = _independent_below(cols, probs)

    def below(m: int) -> np.ndarray:
        if m >= m_pat:
            return independent(m)
        out = np.empty(m + 1)
        for c in range(m + 1):
            ways = [1]
            for _ in range(m_pat // m):           # polynomial product: parts of the pattern's group
                part = [math.comb(m, j) for j in range(min(c, m) + 1)]
                ways = [sum(ways[i] * part[d - i] for i in range(len(ways)) if 0 <= d - i < len(part))
                        for d in range(len(ways) + len(part) - 1)]
            out[c] = (ways[n] if n < len(ways) else 0) / math.comb(m_pat, n)
        return out ** (cols // m_pat)
    return below


def _binomial_pmf(n: int, k: int, p: float) -> float:
    if p <= 0.0 or p >= 1.0:
        return float(k == round(n * p))
    return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                    + k * math.log(p) + (n - k) * math.log1p(-p))


def _poly_power(poly: np.ndarray, power: int, degree: int) -> np.ndarray:
    """`poly` ** `power`, truncated after `degree`."""
    out, base = np.ones(1), poly[: degree + 1]
    while power:
        if power & 1:
            out = np.convolve(out, base)[: degree + 1]
        power >>= 1
        if power:
            base = np.convolve(base, base)[: degree + 1]
    return out


def _fanin_all_at_most(sizes: dict[int, float], k: int, p: float, c: int) -> float:
    """P[every group holds <= c] for k positions drawn without replacement over groups of `sizes`:
    independent Bernoulli(p) positions conditioned on k in all (exact product, or a normal
    approximation of the conditioned total above FANIN_EXACT_MAX)."""
    cols = int(sum(s * g for s, g in sizes.items()))
    if c >= max(sizes):
        return 1.0
    truncated = {s: binomial(s, p)[: c + 1] for s in sizes}
    if k <= FANIN_EXACT_MAX:
        total = np.ones(1)
        for s, g in sizes.items():
            total = np.convolve(total, _poly_power(truncated[s], int(g), k))[: k + 1]
        return float(total[k]) / _binomial_pmf(cols, k, p) if total.size > k else 0.0
    log_mass, mean, var = 0.0, 0.0, 0.0
    for s, g in sizes.items():
        q, j = truncated[s], np.arange(c + 1)
        mass = float(q.sum())
        if mass <= 0.0:
            return 0.0
        m1, m2 = float((q * j).sum()) / mass, float((q * j * j).sum()) / mass
        log_mass, mean, var = log_mass + g * math.log(mass), mean + g * m1, var + g * (m2 - m1 * m1)
    if var <= 0.0:
        return math.exp(log_mass) * float(round(mean) == k) / _binomial_pmf(cols, k, p)
    sd = math.sqrt(var)
    near_k = 0.5 * (math.erf((k + 0.5 - mean) / (sd * math.sqrt(2))) - math.erf((k - 0.5 - mean) / (sd * math.sqrt(2))))
    return math.exp(log_mass) * near_k / _binomial_pmf(cols, k, p)


def _fanin_below(cols: int, k: int) -> RowBelow:
    def below(m: int) -> np.ndarray:
        sizes = _sizes(cols, m, 1)
        out = np.array([_fanin_all_at_most(sizes, k, k / cols, c) for c in range(m + 1)])
        return np.maximum.accumulate(np.clip(out, 0.0, 1.0))
    return below


def _row_max(rows: int, m: int, below: RowBelow) -> dict[int, int]:
    """{a row's largest count among its groups of m: rows}, expected, rounded; what rounding gains
    or loses goes to the most likely count, so the rows add up."""
    if rows <= 0:
        return {}
    expected = rows * np.diff(below(m), prepend=0.0)        # rows x P[row maximum == c]
    counts = np.rint(expected).astype(np.int64)
    counts[int(np.argmax(expected))] += rows - int(counts.sum())
    return {c: int(n) for c, n in enumerate(counts) if n > 0}


@dataclass(frozen=True)
class _Along:
    """The statistics along k: envelope, group-count and per-row-maximum histograms per M."""

    envelope: dict[int, int]
    groups: dict[int, dict[int, int]]
    row_max: dict[int, dict[int, int]]


def _along(rows: int, cols: int, probs: Probs, below: RowBelow | None = None) -> _Along:
    below = below or _independent_below(cols, probs)
    env, hists, row_max = {}, {}, {}
    for m in NM_GROUP_SIZES:
        hists[m], env[m] = _hist_env(_expected(_sizes(cols, m, rows), probs))
        row_max[m] = _row_max(rows, m, below)
    return _Along(envelope=env, groups=hists, row_max=row_max)


def _blocks(rows: int, cols: int, nnz: int, p_segment_empty: Callable[[int], float]) -> dict[int, float]:
    out = {}
    for b in BLOCK_SIZES:
        blocks = math.ceil(rows / b) * math.ceil(cols / b)
        occupied = blocks * (1.0 - p_segment_empty(b) ** min(b, rows))
        out[b] = nnz / (occupied * b * b) if occupied > 0 else 1.0
    return out


def _pattern(shape, rows, cols, nnz, per_row, along: _Along, env_out, block, *, p_col_empty: float,
             **extra) -> Pattern:
    kw = dict(rows_removed=0, cols_removed=0, removed_rows=(), removed_cols=())
    kw.update(extra)
    kept = rows - kw["rows_removed"]
    return Pattern(shape=tuple(shape), rows=rows, cols=cols, nnz=nnz, density=nnz / max(1, rows * cols),
                   nm_envelope=along.envelope, nm_envelope_out=env_out, fan_in=FanIn(min=per_row if kept else 0,
                   max=per_row if kept else 0, constant=bool(kept)), block=block,
                   row_nnz_histogram={c: r for c, r in ((0, rows - kept), (per_row, kept)) if r},
                   reduction_per_channel=reduction_per_channel(tuple(shape)),
                   zero_cols=int(round(cols * p_col_empty)), nm_group_histogram=along.groups,
                   row_group_max_histogram=along.row_max, source="closed-form", **kw)


def _out_envelope(rows: int, cols: int, p: float) -> dict[int, int]:
    return {m: _hist_env(_expected(_sizes(rows, m, cols), lambda d: binomial(d, p)))[1] for m in NM_GROUP_SIZES}


def _no_empty_channels(shape, rows: int, p_channel_empty_in_row: float) -> bool:
    cin = shape[1] if len(shape) > 2 else shape[-1]
    return cin * p_channel_empty_in_row ** rows < 0.5


def dense_pattern(shape: tuple[int, ...], rows: int, cols: int) -> Pattern:
    full = lambda d: np.eye(d + 1)[d]  # noqa: E731 - every entry of a group is kept
    return _pattern(shape, rows, cols, rows * cols, cols, _along(rows, cols, full),
                    {m: min(m, rows) for m in NM_GROUP_SIZES}, _blocks(rows, cols, rows * cols, lambda b: 0.0),
                    p_col_empty=0.0 if rows else 1.0)


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

    nnz = rows * cols * n // m
    return _pattern(shape, rows, cols, nnz, cols * n // m, _along(rows, cols, probs, _nm_below(cols, n, m, probs)),
                    _out_envelope(rows, cols, n / m),
                    _blocks(rows, cols, nnz, lambda b: float(probs(b)[0])), p_col_empty=((m - n) / m) ** rows)


def fanin_pattern(shape: tuple[int, ...], rows: int, cols: int, k: int) -> Pattern | None:
    r = reduction_per_channel(tuple(shape))
    if k < 1 or not _no_empty_channels(shape, rows, math.comb(cols - r, k) / math.comb(cols, k)):
        return None
    probs = lambda d: hypergeom(cols, k, d)  # noqa: E731 - a group of d of the row's cols, k of them kept
    nnz = rows * k
    return _pattern(shape, rows, cols, nnz, k, _along(rows, cols, probs, _fanin_below(cols, k)),
                    _out_envelope(rows, cols, k / cols),
                    _blocks(rows, cols, nnz, lambda b: float(probs(b)[0])), p_col_empty=(1 - k / cols) ** rows)


def channels_pattern(shape: tuple[int, ...], rows: int, cols: int, kept_rows: np.ndarray) -> Pattern:
    keep = np.zeros(rows, bool)
    keep[kept_rows] = True
    full = lambda d: np.eye(d + 1)[d]  # noqa: E731 - a kept row is dense
    along = _along(int(keep.sum()), cols, full)
    removed = int(rows - keep.sum())
    if removed:
        for m in NM_GROUP_SIZES:
            along.groups[m][0] = along.groups[m].get(0, 0) + removed * math.ceil(cols / m)
            along.row_max[m][0] = removed
    env_out, block = {}, {}
    for m in NM_GROUP_SIZES:
        env_out[m] = int(np.bincount(np.flatnonzero(keep) // m).max(initial=0))
    nnz = int(keep.sum()) * cols
    for b in BLOCK_SIZES:
        occupied = np.unique(np.flatnonzero(keep) // b).size * math.ceil(cols / b)
        block[b] = nnz / (occupied * b * b) if occupied else 1.0
    return _pattern(shape, rows, cols, nnz, cols, along, env_out, block, p_col_empty=0.0 if keep.any() else 1.0,
                    rows_removed=removed, removed_rows=tuple(int(i) for i in np.flatnonzero(~keep)))
