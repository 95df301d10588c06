"""`nm`: N:M compressed weights (numba, multi-threaded).

Storage: for each row and each group of M consecutive columns along k, N value slots (fp32)
and N in-group offsets (uint8); groups with fewer than N nonzeros are padded with value 0 at
offset 0; a last partial group (k not a multiple of M) is handled like the others. This is the
layout of 2:4 sparse tensor cores, run here on the CPU: the column of slot j is
(j // N) * M + offset[j], computed on the fly (a shift when N is a power of two). The batch
paths are those of `condensed` (gemv / per-column gather-dot / blocked over x^T).

M is chosen by `prepare(..., group_m=None)` among masks.formats.NM_GROUP_CHOICES (4, 8, 16, 32)
by masks.patterns.best_nm: the fewest slots per column (smallest N/M, then smallest M); pass
group_m to force one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit, prange

from simsparse.errors import PatternError
from simsparse.kernels.base import KERNELS, Kernel, check_inputs, check_x
from simsparse.kernels.condensed import _stack_f32
from simsparse.masks.formats import BLOCK_BATCH, NM_COLUMNS_MAX_BATCH, NM_GROUP_CHOICES, NM_OFFSET_BYTES
from simsparse.masks.patterns import best_nm, nm_envelope


@njit(cache=True, inline="always")
def _col(j, n_keep, n_shift, group_m, offset):
    g = (j >> n_shift) if n_shift >= 0 else (j // n_keep)
    return g * group_m + offset


@njit(parallel=True, fastmath=True, cache=True)
def _gemv(values, offsets, n_keep, n_shift, group_m, x, y):
    rows, slots = values.shape
    for i in prange(rows):
        acc = np.float32(0.0)
        for j in range(slots):
            acc += values[i, j] * x[_col(j, n_keep, n_shift, group_m, offsets[i, j])]
        y[i] = acc


@njit(parallel=True, fastmath=True, cache=True)
def _gemm_columns(values, offsets, n_keep, n_shift, group_m, x, y):
    """batch 2..4: the batch-1 gather-dot once per batch column."""
    rows, slots = values.shape
    for i in prange(rows):
        for c in range(x.shape[0]):
            xc = x[c]
            acc = np.float32(0.0)
            for j in range(slots):
                acc += values[i, j] * xc[_col(j, n_keep, n_shift, group_m, offsets[i, j])]
            y[c, i] = acc


@njit(parallel=True, fastmath=True, cache=True)
def _gemm_blocked(values, offsets, n_keep, n_shift, group_m, x_t, y_t):
    """batch > 4: rows of x^T scaled into a stack accumulator, 4 slots per update, written to
    y^T [n, batch] row by row (contiguous stores; y is returned as its transposed view)."""
    rows, slots = values.shape
    batch = x_t.shape[1]
    s4 = slots - slots % 4
    for i in prange(rows):
        a = _stack_f32(BLOCK_BATCH)
        for c0 in range(0, batch, BLOCK_BATCH):
            w = min(BLOCK_BATCH, batch - c0)
            for c in range(w):
                a[c] = 0.0
            for j in range(0, s4, 4):
                v0, v1, v2, v3 = values[i, j], values[i, j + 1], values[i, j + 2], values[i, j + 3]
                x0 = x_t[_col(j, n_keep, n_shift, group_m, offsets[i, j]), c0:]
                x1 = x_t[_col(j + 1, n_keep, n_shift, group_m, offsets[i, j + 1]), c0:]
                x2 = x_t[_col(j + 2, n_keep, n_shift, group_m, offsets[i, j + 2]), c0:]
                x3 = x_t[_col(j + 3, n_keep, n_shift, group_m, offsets[i, j + 3]), c0:]
                for c in range(w):
                    a[c] += (v0 * x0[c] + v1 * x1[c]) + (v2 * x2[c] + v3 * x3[c])
            for j in range(s4, slots):
                v = values[i, j]
                xr = x_t[_col(j, n_keep, n_shift, group_m, offsets[i, j]), c0:]
                for c in range(w):
                    a[c] += v * xr[c]
            yr = y_t[i, c0:]
            for c in range(w):
                yr[c] = a[c]


@dataclass(frozen=True, eq=False)
class NmPrepared:
    values: np.ndarray    # [n, groups * n_keep] float32
    offsets: np.ndarray   # [n, groups * n_keep] uint8 in-group column offsets
    n_keep: int           # N
    group_m: int          # M
    n: int
    k: int

    @property
    def n_shift(self) -> int:
        """log2(N) when N is a power of two, else -1 (division)."""
        return int(self.n_keep).bit_length() - 1 if self.n_keep & (self.n_keep - 1) == 0 else -1


def _grouped(mask: np.ndarray, group_m: int) -> np.ndarray:
    """mask [n, k] -> [n, groups, M], zero-padded at the end of k."""
    n, k = mask.shape
    groups = -(-k // group_m)
    padded = np.zeros((n, groups * group_m), dtype=mask.dtype)
    padded[:, :k] = mask
    return padded.reshape(n, groups, group_m)


def choose_group(mask: np.ndarray, group_m: int | None) -> tuple[int, int]:
    """(N, M) for this mask (masks.patterns.best_nm); PatternError when no M gives N < M."""
    candidates = (group_m,) if group_m is not None else NM_GROUP_CHOICES
    best = best_nm({m_: nm_envelope(mask, m_) for m_ in candidates}, candidates)
    if best is None:
        where = f"M={group_m}" if group_m is not None else "M in 4, 8, 16, 32"
        raise PatternError(f"nm needs an N:M mask (N < M) along k, none found for {where}; "
                           "use --kernel condensed, csr or dense for this pattern")
    return best


@KERNELS.register("nm")
class NmKernel(Kernel):
    name = "nm"
    format = "nm"
    index_dtype = "uint8"
    layout = "values [n, k/M*N] fp32 + in-group offsets [n, k/M*N] uint8; column = group*M + offset"
    backend = "numba"
    batch_paths = {"gemv": (1, 1), "columns": (2, NM_COLUMNS_MAX_BATCH), "blocked": (NM_COLUMNS_MAX_BATCH + 1, None)}

    @classmethod
    def prepare(cls, weight, mask, *, group_m: int | None = None) -> NmPrepared:
        w, m = check_inputs(weight, mask)
        n, k = m.shape
        n_keep, group_m = choose_group(m, group_m)
        grouped = _grouped(m, group_m)                                   # [n, G, M]
        order = np.argsort(~grouped, axis=2, kind="stable")[:, :, :n_keep]  # nonzeros first, ascending
        valid = np.take_along_axis(grouped, order, axis=2)
        wg = _grouped(w.numpy(), group_m)
        values = np.where(valid, np.take_along_axis(wg, order, axis=2), 0.0).astype(np.float32)
        offsets = np.where(valid, order, 0).astype(f"uint{8 * NM_OFFSET_BYTES}")
        return NmPrepared(values=np.ascontiguousarray(values.reshape(n, -1)),
                          offsets=np.ascontiguousarray(offsets.reshape(n, -1)),
                          n_keep=n_keep, group_m=group_m, n=n, k=k)

    @classmethod
    def run(cls, prepared: NmPrepared, x: torch.Tensor) -> torch.Tensor:
        p = prepared
        x = check_x(x, p.k)
        batch = x.shape[0]
        y = torch.empty((batch, p.n), dtype=torch.float32)
        if p.n == 0 or batch == 0 or p.k == 0:
            return y.zero_()
        args = (p.values, p.offsets, p.n_keep, p.n_shift, p.group_m)
        if batch == 1:
            _gemv(*args, x.numpy()[0], y.numpy()[0])
        elif batch <= NM_COLUMNS_MAX_BATCH:
            _gemm_columns(*args, x.numpy(), y.numpy())
        else:
            y_t = np.empty((p.n, batch), dtype=np.float32)
            _gemm_blocked(*args, x.t().contiguous().numpy(), y_t)
            return torch.from_numpy(y_t).t()
        return y

    @classmethod
    def storage_bytes(cls, prepared: NmPrepared) -> dict[str, int]:
        return {"values": int(prepared.values.nbytes), "indices": int(prepared.offsets.nbytes)}

    @classmethod
    def warm_up(cls) -> None:
        p = cls.prepare(torch.ones(2, 8), np.tile([True, False, True, False], (2, 2)))
        for batch in (1, NM_COLUMNS_MAX_BATCH, NM_COLUMNS_MAX_BATCH + 1):
            cls.run(p, torch.ones(batch, 8))
