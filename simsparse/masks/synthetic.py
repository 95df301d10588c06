"""Synthetic masks of a named pattern, seeded, for exploring before training.

Pattern strings (the same everywhere: `inspect`, `evaluate --pattern`, `measure --pattern`):
  dense          every weight kept
  N:M            e.g. 2:4 — N random positions kept in every group of M along the reduction (Cin innermost)
  fanin=K        constant fan-in: every output row keeps exactly K random positions (SRigL);
                 fanin=D with 0 < D < 1 keeps round(D · reduction) per row (one spec for a whole network)
  density=D      unstructured, exactly round(D · size) random positions (0 < D <= 1)
  channels=D     channel-removed (Chase-like): a fraction D of output channels kept, dense; the rest all zero
"""

from __future__ import annotations

import math

import numpy as np

from simsparse.errors import PatternError
from simsparse.masks.patterns import from_matrix
from simsparse.parse import PATTERN_HELP, PatternSpec, parse_pattern  # noqa: F401  (the one parser, re-exported)


def _matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) < 2:
        raise PatternError(f"weight shape {shape} has no output/reduction axes; masks need 2-D or conv weights")
    return int(shape[0]), int(np.prod(shape[1:]))


def _nm_matrix(rows: int, cols: int, n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    groups = math.ceil(cols / m)
    scores = rng.random((rows, groups, m))
    keep = np.argsort(scores, axis=2)[:, :, :n]
    mat = np.zeros((rows, groups, m), bool)
    np.put_along_axis(mat, keep, True, axis=2)
    return mat.reshape(rows, groups * m)[:, :cols]


def _fanin_matrix(rows: int, cols: int, k: int, rng: np.random.Generator) -> np.ndarray:
    if k > cols:
        raise PatternError(f"pattern fanin={k} exceeds the layer's reduction length {cols}")
    scores = rng.random((rows, cols))
    keep = np.argpartition(scores, k - 1, axis=1)[:, :k] if 0 < k < cols else None
    mat = np.zeros((rows, cols), bool)
    if k == cols:
        mat[:] = True
    elif keep is not None:
        np.put_along_axis(mat, keep, True, axis=1)
    return mat


def make_matrix(rows: int, cols: int, pattern: str | PatternSpec, *, seed: int = 0) -> np.ndarray:
    """An `[n, k]` bool mask of the pattern (GEMM orientation)."""
    spec = pattern if isinstance(pattern, PatternSpec) else parse_pattern(pattern)
    rng = np.random.default_rng(seed)
    if spec.kind == "dense":
        return np.ones((rows, cols), bool)
    if spec.kind == "nm":
        return _nm_matrix(rows, cols, spec.n, spec.m, rng)
    if spec.kind == "fanin":
        k = max(1, round(spec.fan_in_fraction * cols)) if spec.fan_in_fraction else spec.fan_in
        return _fanin_matrix(rows, cols, k, rng)
    if spec.kind == "density":
        flat = np.zeros(rows * cols, bool)
        flat[rng.permutation(rows * cols)[: round(spec.density * rows * cols)]] = True
        return flat.reshape(rows, cols)
    keep_rows = max(1, round(spec.density * rows)) if rows else 0
    mat = np.zeros((rows, cols), bool)
    mat[np.sort(rng.permutation(rows)[:keep_rows])] = True
    return mat


def make_mask(shape: tuple[int, ...], pattern: str | PatternSpec, *, seed: int = 0) -> np.ndarray:
    """A weight-shaped bool mask of the pattern (N:M and fan-in along the reduction, Cin innermost)."""
    shape = tuple(int(s) for s in shape)
    rows, cols = _matrix_shape(shape)
    return from_matrix(make_matrix(rows, cols, pattern, seed=seed), shape)
