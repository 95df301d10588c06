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
random scores on an `[..., M]` view) and in chunks of rows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from simsparse.errors import PatternError
from simsparse.masks import closed_form
from simsparse.masks.patterns import from_gemm_rows
from simsparse.records import Pattern

PATTERN_HELP = ("dense, N:M (e.g. 2:4), fanin=K (or fanin=D, 0<D<1), density=D (0<D<=1), "
                "channels=D (0<D<=1; on a network also channels=D,skip=S|keep)")


@dataclass(frozen=True)
class PatternSpec:
    """A parsed pattern string."""

    kind: str                 # dense | nm | fanin | density | channels
    n: int = 0
    m: int = 0
    fan_in: int = 0
    fan_in_fraction: float = 0.0   # fanin=D form: fraction of the reduction kept per row
    density: float = 1.0
    text: str = "dense"
    skip: float | None = None      # channels=D,skip=S: share kept in residual groups (1.0 = keep; None: as D)


def parse_pattern(text: str) -> PatternSpec:
    """Parse a --pattern string; PatternError naming the accepted forms otherwise."""
    t = str(text).strip().lower()
    bad = PatternError(f"unknown pattern {text!r}; use one of: {PATTERN_HELP}")
    if t == "dense":
        return PatternSpec(kind="dense", text="dense")
    if match := re.fullmatch(r"(\d+):(\d+)", t):
        n, m = int(match[1]), int(match[2])
        if not (0 < n <= m):
            raise PatternError(f"pattern {text!r}: N:M needs 0 < N <= M (e.g. 2:4)")
        return PatternSpec(kind="nm", n=n, m=m, text=f"{n}:{m}")
    if t.startswith("channels=") and "," in t:
        return _channels_with_skip(text, t)
    if "=" in t:
        key, _, value = t.partition("=")
        try:
            if key == "fanin" and "." in value:
                d = float(value)
                if not (0.0 < d < 1.0):
                    raise PatternError(f"pattern {text!r}: fanin=D needs 0 < D < 1 (or an integer fan-in K)")
                return PatternSpec(kind="fanin", fan_in_fraction=d, density=d, text=f"fanin={d:g}")
            if key == "fanin":
                k = int(value)
                if k < 0:
                    raise bad
                return PatternSpec(kind="fanin", fan_in=k, text=f"fanin={k}")
            if key in ("density", "channels"):
                d = float(value)
                if not (0.0 < d <= 1.0) or math.isnan(d):
                    raise PatternError(f"pattern {text!r}: {key}=D needs 0 < D <= 1")
                return PatternSpec(kind=key, density=d, text=f"{key}={d:g}")
        except ValueError:
            raise bad from None
    raise bad


def _channels_with_skip(text: str, t: str) -> PatternSpec:
    head, _, tail = t.partition(",")
    base = parse_pattern(head)
    key, _, value = tail.partition("=")
    if key != "skip" or not value:
        raise PatternError(f"pattern {text!r}: after channels=D only skip=S (0<S<=1) or skip=keep may follow")
    if value == "keep":
        return PatternSpec(kind="channels", density=base.density, skip=1.0, text=f"{base.text},skip=keep")
    try:
        share = float(value)
    except ValueError:
        share = float("nan")
    if not (0.0 < share <= 1.0):
        raise PatternError(f"pattern {text!r}: skip=S needs 0 < S <= 1 (or skip=keep)")
    return PatternSpec(kind="channels", density=base.density, skip=share, text=f"{base.text},skip={share:g}")


def _matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        raise PatternError(f"weight shape {shape} has no output/reduction axes; masks need 2-D or conv weights")
    return int(shape[0]), int(np.prod(shape[1:]))


CHUNK_ELEMENTS = 1 << 22   # random scores drawn per chunk of rows (bounds the float64 temporaries)


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


def make_matrix(rows: int, cols: int, pattern: str | PatternSpec, *, seed: int = 0) -> np.ndarray:
    """An `[n, k]` bool mask of the pattern (GEMM orientation)."""
    spec = pattern if isinstance(pattern, PatternSpec) else parse_pattern(pattern)
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
