"""Synthetic masks of a named pattern, seeded, for exploring before training.

Pattern strings (the same everywhere: `inspect`, `evaluate --pattern`, `measure --pattern`):
  dense          every weight kept
  N:M            e.g. 2:4 — N random positions kept in every group of M along the reduction (Cin innermost)
  fanin=K        constant fan-in: every output row keeps exactly K random positions (SRigL);
                 fanin=D with 0 < D < 1 keeps round(D · reduction) per row (one spec for a whole network)
  density=D      unstructured, exactly round(D · size) random positions (0 < D <= 1)
  channels=D     channel-removed (Chase-like): a fraction D of output channels kept, dense; the rest all zero.
                 On a network (`evaluate --workload W`) it is a channel-pruned network: a share D of the
                 channels of every removable coupling group is kept, consistently across producers and
                 consumers (graph.synthetic); `channels=D,skip=S` keeps a share S of the residual
                 (skip) groups' channels, `skip=keep` keeps them all

`synthetic_pattern` gives the Pattern of such a mask in closed form (no mask drawn) for dense, N:M,
fan-in and channels; `make_matrix` draws the mask when one must exist, vectorised (argpartition of
random scores on an `[..., M]` view) and in chunks of rows, up to MAX_SYNTHETIC_WEIGHTS weights.
"""

from __future__ import annotations

import math

import numpy as np

from simsparse.errors import PatternError
from simsparse.masks import closed_form
from simsparse.masks.patterns import from_gemm_rows
from simsparse.parse import PATTERN_HELP, PatternSpec, parse_pattern  # noqa: F401  (the one parser, re-exported)
from simsparse.records import Pattern


def _matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        raise PatternError(f"weight shape {shape} has no output/reduction axes; masks need 2-D or conv weights")
    return int(shape[0]), int(np.prod(shape[1:]))


CHUNK_ELEMENTS = 1 << 22   # random scores drawn per chunk of rows (bounds the float64 temporaries)
# weights of one mask that is actually drawn (density=D has no closed form; kernels and `materialise`
# need the values): density=D peaks near 9 bytes per weight (an int64 permutation and the mask), so
# ~1.2 GB here. Closed-form patterns never reach it (masks/closed_form.py).
MAX_SYNTHETIC_WEIGHTS = 2**27


def _row_chunks(rows: int, per_row: int):
    step = max(1, CHUNK_ELEMENTS // max(1, per_row))
    return ((r, min(rows, r + step)) for r in range(0, rows, step))


def _nm_matrix(rows: int, cols: int, n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """N random positions per group of M: argpartition of random scores on an [rows, groups, M] view,
    drawn in chunks of rows (the same draws as one call: the generator fills consecutively)."""
    groups = math.ceil(cols / m)
    mat = np.zeros((rows, groups, m), bool)
    for r0, r1 in _row_chunks(rows, groups * m):
        if n == m:
            mat[r0:r1] = True
            rng.random((r1 - r0, groups, m))   # keep the stream of draws the same for later chunks
            continue
        keep = np.argpartition(rng.random((r1 - r0, groups, m)), n - 1, axis=2)[:, :, :n]
        np.put_along_axis(mat[r0:r1], keep, True, axis=2)
    return mat.reshape(rows, groups * m)[:, :cols]


def _fanin_matrix(rows: int, cols: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if k > cols:
        raise PatternError(f"pattern fanin={k} exceeds the layer's reduction length {cols}")
    mat = np.zeros((rows, cols), bool)
    if k == cols:
        mat[:] = True
        return mat
    for r0, r1 in _row_chunks(rows, cols):
        scores = rng.random((r1 - r0, cols))
        if k > 0:
            np.put_along_axis(mat[r0:r1], np.argpartition(scores, k - 1, axis=1)[:, :k], True, axis=1)
    return mat


def _fan_in_of(spec: PatternSpec, cols: int) -> int:
    return max(1, round(spec.fan_in_fraction * cols)) if spec.fan_in_fraction else spec.fan_in


def _kept_rows(rows: int, density: float, rng: np.random.Generator) -> np.ndarray:
    """Indices (sorted) of the output channels a channels=D mask keeps."""
    keep_rows = max(1, round(density * rows)) if rows else 0
    return np.sort(rng.permutation(rows)[:keep_rows])


def check_drawable(rows: int, cols: int, spec: PatternSpec) -> None:
    """Refuse to draw a mask larger than MAX_SYNTHETIC_WEIGHTS (one line, before any allocation)."""
    if rows * cols > MAX_SYNTHETIC_WEIGHTS:
        if spec.kind == "nm" and cols % spec.m:
            why = (f"an N:M mask is known without drawing only when the reduction ({cols}) is a multiple of M "
                   f"({spec.m}); pad it to {-(-cols // spec.m) * spec.m} or use a smaller layer")
        else:
            why = "dense, N:M, fanin and channels patterns need no mask, or use a smaller layer"
        raise PatternError(f"pattern {spec.text} on a {rows} x {cols} weight: its mask must be drawn, and "
                           f"{rows * cols} weights is more than the {MAX_SYNTHETIC_WEIGHTS} drawn in memory; {why}")


def make_matrix(rows: int, cols: int, pattern: str | PatternSpec, *, seed: int = 0) -> np.ndarray:
    """An `[n, k]` bool mask of the pattern (GEMM orientation); at most MAX_SYNTHETIC_WEIGHTS."""
    spec = pattern if isinstance(pattern, PatternSpec) else parse_pattern(pattern)
    check_drawable(rows, cols, spec)
    rng = np.random.default_rng(seed)
    if spec.kind == "dense":
        return np.ones((rows, cols), bool)
    if spec.kind == "nm":
        return _nm_matrix(rows, cols, spec.n, spec.m, rng)
    if spec.kind == "fanin":
        return _fanin_matrix(rows, cols, _fan_in_of(spec, cols), rng)
    if spec.kind == "density":
        flat = np.zeros(rows * cols, bool)
        flat[rng.permutation(rows * cols)[: round(spec.density * rows * cols)]] = True
        return flat.reshape(rows, cols)
    mat = np.zeros((rows, cols), bool)
    mat[_kept_rows(rows, spec.density, rng)] = True
    return mat


def synthetic_pattern(shape: tuple[int, ...], pattern: str | PatternSpec, *, seed: int = 0) -> Pattern | None:
    """The closed-form `Pattern` of `make_mask(shape, pattern, seed=seed)`, without drawing the mask
    (`masks.closed_form` says which fields are exact and which expected); None where the pattern
    has no closed form (density=D, ...): draw the mask and `analyze` it then."""
    spec = pattern if isinstance(pattern, PatternSpec) else parse_pattern(pattern)
    shape = tuple(int(s) for s in shape)
    rows, cols = _matrix_shape(shape)
    if spec.kind == "dense":
        return closed_form.dense_pattern(shape, rows, cols)
    if spec.kind == "nm":
        return closed_form.nm_pattern(shape, rows, cols, spec.n, spec.m)
    if spec.kind == "fanin":
        k = _fan_in_of(spec, cols)
        if k > cols:
            raise PatternError(f"pattern fanin={k} exceeds the layer's reduction length {cols}")
        return closed_form.fanin_pattern(shape, rows, cols, k)
    if spec.kind == "channels":
        return closed_form.channels_pattern(shape, rows, cols, _kept_rows(rows, spec.density,
                                                                          np.random.default_rng(seed)))
    return None


def make_mask(shape: tuple[int, ...], pattern: str | PatternSpec, *, seed: int = 0) -> np.ndarray:
    """A weight-shaped bool mask of the pattern (N:M and fan-in along the reduction, Cin innermost)."""
    shape = tuple(int(s) for s in shape)
    rows, cols = _matrix_shape(shape)
    return from_gemm_rows(make_matrix(rows, cols, pattern, seed=seed), shape)


def two_four_checkerboard(n: int, k: int) -> np.ndarray:
    """The reference 2:4 (and 1:2) `[n, k]` mask: every other weight kept, the phase alternating by
    row, so that no input column is all zero (no shrunk GEMM applies). The GPU validation rows
    and the tests (simsparse.testing) run on it."""
    mask = np.zeros((n, k), dtype=bool)
    mask[0::2, 0::2] = True
    mask[1::2, 1::2] = True
    return mask
