"""`condensed`: SRigL's layout for constant fan-in masks (numba, multi-threaded).

Storage: values [rows_active, fan_in] fp32 + column indices [rows_active, fan_in] uint16
(uint32 when k > 65536), indices sorted per row; all-zero (ablated) rows are dropped and their
outputs scattered back as zeros via `row_ids`.

Why uint16 and not int16: numba indexes with intp, so a signed narrow index is sign-extended to
64 bits and LLVM emits 8-lane `vgatherqps`; a zero-extended uint16 lets it use 16-lane
`vgatherdps` (AVX-512), and still halves the index bytes of int32 CSR.

Two paths:
- batch 1: one gather-dot per output row, rows split over threads (`prange`);
- batch > 1: x is transposed to [k, batch] so each stored nonzero scales one contiguous row of
  x^T into the row's accumulator (vectorised over the batch), rows split over threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit, prange

from simsparse.errors import PatternError
from simsparse.kernels import KERNELS, Kernel, check_inputs, check_x


@njit(parallel=True, fastmath=True, cache=True)
def _gemv(values, indices, row_ids, x, y):
    rows, fan_in = values.shape
    for i in prange(rows):
        acc = np.float32(0.0)
        for j in range(fan_in):
            acc += values[i, j] * x[indices[i, j]]
        y[row_ids[i]] = acc


@njit(parallel=True, fastmath=True, cache=True)
def _gemm(values, indices, row_ids, x_t, acc, y):
    """acc [rows, batch] scratch; y [batch, n] output; x_t [k, batch]."""
    rows, fan_in = values.shape
    batch = x_t.shape[1]
    for i in prange(rows):
        a = acc[i]
        for c in range(batch):
            a[c] = 0.0
        for j in range(fan_in):
            v = values[i, j]
            xr = x_t[indices[i, j]]
            for c in range(batch):
                a[c] += v * xr[c]
        r = row_ids[i]
        for c in range(batch):
            y[c, r] = a[c]


def narrow_index_dtype(k: int) -> np.dtype:
    """uint16 while every column index fits (k <= 65536), else uint32."""
    return np.dtype(np.uint16) if k <= 2**16 else np.dtype(np.uint32)


@dataclass(frozen=True, eq=False)
class CondensedPrepared:
    values: np.ndarray    # [rows_active, fan_in] float32
    indices: np.ndarray   # [rows_active, fan_in] uint16|uint32 column ids, ascending per row
    row_ids: np.ndarray   # [rows_active] int32 output row of each stored row
    n: int
    k: int

    @property
    def fan_in(self) -> int:
        return int(self.values.shape[1])

    @property
    def rows_removed(self) -> int:
        return self.n - int(self.values.shape[0])


def constant_fan_in(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """(active row ids, fan-in) of a mask whose active rows share one fan-in; PatternError otherwise."""
    per_row = mask.sum(axis=1)
    active = np.flatnonzero(per_row)
    if active.size == 0:
        return active, 0
    lo, hi = int(per_row[active].min()), int(per_row[active].max())
    if lo != hi:
        raise PatternError(f"condensed needs a constant fan-in among active rows, found {lo}..{hi} "
                           "nonzeros per row; use --kernel csr (or a fanin=K mask)")
    return active, lo


@KERNELS.register("condensed")
class CondensedKernel(Kernel):
    name = "condensed"
    index_dtype = "uint16"   # uint32 when k > 65536
    layout = ("values [rows_active, fan_in] fp32 + indices [rows_active, fan_in] uint16 + row ids int32; "
              "batch 1: gather-dot per row; batch > 1: row of x^T [k, batch] scaled per nonzero")
    backend = "numba"

    @classmethod
    def prepare(cls, weight, mask) -> CondensedPrepared:
        w, m = check_inputs(weight, mask)
        n, k = m.shape
        active, fan_in = constant_fan_in(m)
        sub = m[active]
        cols = np.nonzero(sub)[1].reshape(active.size, fan_in)   # row-major -> ascending per row
        values = w.numpy()[active[:, None], cols].astype(np.float32)
        return CondensedPrepared(values=np.ascontiguousarray(values),
                                 indices=np.ascontiguousarray(cols.astype(narrow_index_dtype(k))),
                                 row_ids=active.astype(np.int32), n=n, k=k)

    @classmethod
    def run(cls, prepared: CondensedPrepared, x: torch.Tensor) -> torch.Tensor:
        x = check_x(x, prepared.k)
        batch = x.shape[0]
        alloc = torch.zeros if prepared.rows_removed else torch.empty
        y = alloc((batch, prepared.n), dtype=torch.float32)
        if prepared.values.shape[0] == 0 or batch == 0:
            return y.zero_()
        p = prepared
        if batch == 1:
            _gemv(p.values, p.indices, p.row_ids, x.numpy()[0], y.numpy()[0])
        else:
            x_t = x.t().contiguous().numpy()
            acc = np.empty((p.values.shape[0], batch), dtype=np.float32)
            _gemm(p.values, p.indices, p.row_ids, x_t, acc, y.numpy())
        return y

    @classmethod
    def storage_bytes(cls, prepared: CondensedPrepared) -> dict[str, int]:
        return {"values": int(prepared.values.nbytes), "indices": int(prepared.indices.nbytes),
                "row_ids": int(prepared.row_ids.nbytes)}

    @classmethod
    def warm_up(cls) -> None:
        mask = np.zeros((3, 5), dtype=bool)
        mask[:, :2] = True
        p = cls.prepare(torch.ones(3, 5), mask)
        cls.run(p, torch.ones(1, 5))
        cls.run(p, torch.ones(2, 5))
