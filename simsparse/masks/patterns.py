"""Pattern analysis: what structure a mask really has, measured from it (never assumed).

Orientation: a weight mask is seen as an `[n, k]` matrix — n output rows, k the reduction with
Cin innermost for convs (`[Cout, Cin, kh, kw] -> [Cout, kh, kw, Cin] -> [Cout, kh*kw*Cin]`), the
layout N:M hardware groups along. Envelopes and block statistics are computed hierarchically on
uint8 counts (each level halves the previous one), so a ResNet-50-sized model takes well under 1 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from simsparse.errors import PatternError
from simsparse.records import FanIn, MaskSet, Pattern

NM_GROUP_SIZES = (2, 4, 8, 16, 32)
BLOCK_SIZES = (2, 4, 8, 16)


def to_bool_array(mask, *, name: str = "mask") -> np.ndarray:
    """A numpy bool array from a bool/0-1 numpy array or torch tensor; PatternError otherwise."""
    if hasattr(mask, "detach"):  # torch tensor, without importing torch here
        mask = mask.detach().cpu().numpy()
    arr = np.asarray(mask)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind in "fc" and np.isnan(arr).any():
        raise PatternError(f"{name} contains NaN; a mask must hold only 0/1 (or booleans)")
    if arr.dtype.kind not in "biuf":
        raise PatternError(f"{name} has dtype {arr.dtype}; a mask must be boolean or 0/1 numbers")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise PatternError(f"{name} holds values other than 0 and 1; pass a boolean mask (weight != 0)")
    return arr.astype(bool)


def reduction_per_channel(weight_shape: tuple[int, ...]) -> int:
    """Reduction columns per input channel: kh*kw for convs, 1 for linear layers."""
    return int(np.prod(weight_shape[2:])) if len(weight_shape) > 2 else 1


# ----------------------------------------------------------------------------- orientation


def gemm_rows(weight):
    """The `[n, k]` GEMM view of a weight-shaped numpy array or torch tensor (any dtype): rows are
    output features/channels, k the reduction with Cin innermost for convs
    (`[Cout, Cin, *kernel] -> [Cout, *kernel, Cin] -> [Cout, k]`). A 1-D array is one row.
    The one orientation helper: pattern analysis, lowering and the N:M trainer all use it."""
    if weight.ndim == 0:
        raise PatternError("a weight with no dimensions has no [n, k] GEMM view")
    if weight.ndim == 1:
        return weight.reshape(1, -1)
    if weight.ndim == 2:
        return weight
    moved = weight.movedim(1, -1) if hasattr(weight, "movedim") else np.moveaxis(weight, 1, -1)
    return moved.reshape(weight.shape[0], -1)


def from_gemm_rows(rows, weight_shape: tuple[int, ...]):
    """Inverse of `gemm_rows`: back to the weight's own (contiguous) shape."""
    shape = tuple(int(s) for s in weight_shape)
    if len(shape) <= 2:
        back = rows.reshape(shape)
    else:
        moved = rows.reshape((shape[0], *shape[2:], shape[1]))
        back = moved.movedim(-1, 1) if hasattr(moved, "movedim") else np.moveaxis(moved, -1, 1)
    return back.contiguous() if hasattr(back, "contiguous") else np.ascontiguousarray(back)


def as_matrix(mask) -> np.ndarray:
    """The `[n, k]` GEMM view of a weight-shaped bool mask (numpy; 2-D to 5-D weights)."""
    arr = to_bool_array(mask)
    if arr.ndim not in (2, 3, 4, 5):
        raise PatternError(f"mask of shape {tuple(arr.shape)} is not a Linear [out, in] or Conv "
                           "[out, in, kh, kw] weight; only 2-D to 5-D weights can be analysed")
    return np.ascontiguousarray(gemm_rows(arr))


# ----------------------------------------------------------------------------- group counts


def _pad_cols(counts: np.ndarray, multiple: int) -> np.ndarray:
    extra = (-counts.shape[1]) % multiple
    if extra:
        counts = np.concatenate([counts, np.zeros((counts.shape[0], extra), counts.dtype)], axis=1)
    return counts


def group_counts(mat: np.ndarray, m: int) -> np.ndarray:
    """Nonzeros per group of `m` consecutive entries along axis 1 (zero-padded at the end)."""
    counts = _pad_cols(mat.view(np.uint8), m)
    return counts.reshape(counts.shape[0], -1, m).sum(axis=2, dtype=np.uint8)


def nm_envelope(mat: np.ndarray, m: int) -> int:
    """Smallest N such that every group of `m` along axis 1 of a bool `[n, k]` matrix holds <= N
    nonzeros, for any m (`Pattern.nm_envelope` has the powers of two up to 32)."""
    counts = group_counts(mat, m)
    return int(counts.max()) if counts.size else 0


@dataclass(frozen=True, eq=False)
class _GroupStats:
    envelope: dict[int, int]
    groups: dict[int, dict[int, int]]      # M -> {count: groups}
    row_max: dict[int, dict[int, int]]     # M -> {row's largest group count: rows}


def _histogram(values: np.ndarray, top: int) -> dict[int, int]:
    """{v: occurrences} of small non-negative integers <= top (one comparison pass per value:
    several times faster than np.bincount, which widens uint8 to intp first)."""
    out = {v: int(np.count_nonzero(values == v)) for v in range(top + 1)}
    return {v: c for v, c in out.items() if c}


def _group_stats(mat: np.ndarray) -> _GroupStats:
    """Envelope {M: max nonzeros in any group of M along axis 1}, the group-count and the
    per-row-maximum histograms, computed level by level on uint8 counts."""
    env: dict[int, int] = {}
    groups: dict[int, dict[int, int]] = {}
    row_max: dict[int, dict[int, int]] = {}
    counts = mat.view(np.uint8)
    for m in NM_GROUP_SIZES:
        counts = _pad_cols(counts, 2)
        counts = counts[:, 0::2] + counts[:, 1::2]
        env[m] = int(counts.max()) if counts.size else 0
        groups[m] = _histogram(counts, env[m])
        row_max[m] = _histogram(counts.max(axis=1) if counts.size else counts, env[m])
    return _GroupStats(envelope=env, groups=groups, row_max=row_max)


def _envelopes_out(mat: np.ndarray) -> dict[int, int]:
    """{M: max nonzeros in any group of M consecutive rows of a column}: the envelope along axis 0,
    pairing whole rows level by level (no transposed copy of the mask)."""
    out: dict[int, int] = {}
    counts = mat.view(np.uint8)
    for m in NM_GROUP_SIZES:
        if counts.shape[0] % 2:
            counts = np.concatenate([counts, np.zeros((1, counts.shape[1]), counts.dtype)], axis=0)
        counts = counts[0::2] + counts[1::2]
        out[m] = int(counts.max()) if counts.size else 0
    return out


def best_nm(envelope: Mapping[int, int], group_sizes: Sequence[int]) -> tuple[int, int] | None:
    """The (N, M), M among `group_sizes`, that covers a mask of this envelope with the fewest slots
    per column (smallest N/M, then the smaller M); None when no M gives N < M. N is at least 1.
    The one "best N:M" rule: the nm kernel picks its layout with it and the CPU model plans it."""
    best: tuple[int, int] | None = None
    for m in group_sizes:
        env = envelope.get(m)
        if env is None:
            continue
        n = max(1, int(env))
        if n < m and (best is None or n * best[1] < best[0] * m):
            best = (n, m)
    return best


def _blocks(mat: np.ndarray, nnz: int) -> dict[int, float]:
    """{b: nnz / (occupied b×b blocks · b²)} — 1.0 means the nonzeros tile exactly into b×b blocks."""
    out: dict[int, float] = {}
    occ = mat
    for b in BLOCK_SIZES:
        rows_extra = (-occ.shape[0]) % 2
        if rows_extra:
            occ = np.concatenate([occ, np.zeros((1, occ.shape[1]), bool)], axis=0)
        occ = _pad_cols(occ, 2)
        occ = occ[0::2, 0::2] | occ[1::2, 0::2] | occ[0::2, 1::2] | occ[1::2, 1::2]
        blocks = int(np.count_nonzero(occ))
        out[b] = nnz / (blocks * b * b) if blocks else 1.0
    return out


def analyze(mask, *, name: str = "mask") -> Pattern:
    """Measure the structure of one weight-shaped mask (numpy bool array or torch tensor)."""
    arr = to_bool_array(mask, name=name)
    return analyze_rows(as_matrix(arr), tuple(arr.shape))


def analyze_rows(mat: np.ndarray, weight_shape: tuple[int, ...]) -> Pattern:
    """`analyze` of a weight-shaped mask given as its `[n, k]` GEMM view `mat` (`as_matrix`), for a
    caller that keeps the view too (no second transposing copy)."""
    shape = tuple(int(s) for s in weight_shape)
    n, k = mat.shape
    nnz = int(np.count_nonzero(mat))
    row_nnz = np.count_nonzero(mat, axis=1)
    active = row_nnz[row_nnz > 0]
    fan_in = FanIn(min=int(active.min()) if active.size else 0,
                   max=int(active.max()) if active.size else 0,
                   constant=bool(active.size and active.min() == active.max()))
    removed_rows = np.flatnonzero(row_nnz == 0)
    cin = shape[1]                                     # Cin innermost: column j reads channel j % Cin
    removed_cols = np.flatnonzero(~mat.reshape(n, k // max(1, cin), cin).any(axis=(0, 1)))
    values, counts = np.unique(row_nnz, return_counts=True)
    along_k = _group_stats(mat)
    return Pattern(
        shape=shape, rows=n, cols=k, nnz=nnz, density=nnz / max(1, n * k),
        nm_envelope=along_k.envelope,
        nm_envelope_out=_envelopes_out(mat),
        fan_in=fan_in, rows_removed=int(removed_rows.size), cols_removed=int(removed_cols.size),
        removed_rows=tuple(int(i) for i in removed_rows), removed_cols=tuple(int(i) for i in removed_cols),
        row_nnz_histogram={int(v): int(c) for v, c in zip(values, counts)},
        block=_blocks(mat, nnz), reduction_per_channel=reduction_per_channel(shape),
        zero_cols=int(k - np.count_nonzero(mat.any(axis=0))),
        nm_group_histogram=along_k.groups, row_group_max_histogram=along_k.row_max,
    )


def analyze_set(masks: MaskSet) -> dict[str, Pattern]:
    """Patterns of every layer of a MaskSet, keyed by fully-qualified name."""
    return {fqn: analyze(layer.mask, name=fqn) for fqn, layer in masks.layers.items()}


def summarize(patterns: Mapping[str, Pattern]) -> dict:
    """Per-model summary: overall density, 2:4-compliant layers, constant fan-in layers, removed channels."""
    nnz = sum(p.nnz for p in patterns.values())
    size = sum(p.rows * p.cols for p in patterns.values())
    return {
        "layers": len(patterns),
        "nnz": nnz,
        "size": size,
        "density": nnz / max(1, size),
        "nm_2to4_layers": sorted(f for f, p in patterns.items() if p.is_nm(2, 4)),
        "constant_fan_in_layers": sorted(f for f, p in patterns.items()
                                         if p.fan_in.constant and p.density < 1.0),
        "rows_removed": sum(p.rows_removed for p in patterns.values()),
        "cols_removed": sum(p.cols_removed for p in patterns.values()),
    }
