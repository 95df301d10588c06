"""`condensed`: SRigL's layout for constant fan-in masks (numba, multi-threaded).

Storage: values [rows_active, fan_in] fp32 + column indices [rows_active, fan_in] uint16
(uint32 when k > 65536), indices sorted per row; all-zero (ablated) rows are dropped and their
outputs scattered back as zeros via `row_ids`.

Why uint16 and not int16: numba indexes with intp, so a signed narrow index is sign-extended to
64 bits and LLVM emits 8-lane `vgatherqps`; a zero-extended uint16 lets it use 16-lane
`vgatherdps` (AVX-512), and still halves the index bytes of int32 CSR.

Three paths, all splitting output rows over threads (`prange`):
- batch 1: one gather-dot per output row (`_gemv`);
- batch 2..4: the same gather-dot once per batch column (`_gemm_columns`);
- batch > 4: x is transposed to [k, batch]; each stored nonzero scales one contiguous row of x^T
  into a stack accumulator of 64 batch columns, vectorised over the batch (`_gemm_blocked`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from simsparse.errors import PatternError
from simsparse.kernels import KERNELS, Kernel, check_inputs, check_x


BLOCK_BATCH = 64            # batch columns per stack accumulator block (batched path)
COLUMNS_MAX_BATCH = 4       # batch 2..4: one gather-dot per (row, column); above: blocked path


@intrinsic
def _stack_f32(typingctx, size):
    """A float32 scratch array of a literal size on the stack. LLVM knows it aliases no input,
    so the batched accumulator loop needs no runtime alias checks (measured ~1.5-2x faster than
    a heap accumulator at batch 16-256 here)."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    n_items = size.literal_value
    arr_t = types.Array(types.float32, 1, "C")

    def codegen(context, builder, signature, args):
        ptr = cgutils.alloca_once(builder, context.get_value_type(types.float32), size=n_items)
        arr = context.make_array(arr_t)(context, builder)
        intp = context.get_value_type(types.intp)
        context.populate_array(arr, data=ptr, shape=[intp(n_items)], strides=[intp(4)], itemsize=intp(4),
                               meminfo=None)
        return arr._getvalue()

    return arr_t(size), codegen


@njit(parallel=True, fastmath=True, cache=True)
def _gemv(values, indices, row_ids, x, y):
    """batch 1: y[row_ids[i]] = sum_j values[i, j] * x[indices[i, j]] (16-lane gathers)."""
    rows, fan_in = values.shape
    for i in prange(rows):
        acc = np.float32(0.0)
        for j in range(fan_in):
            acc += values[i, j] * x[indices[i, j]]
        y[row_ids[i]] = acc


@njit(parallel=True, fastmath=True, cache=True)
def _gemm_columns(values, indices, row_ids, x, y):
    """Small batches: the batch-1 gather-dot once per batch column (x [batch, k], y [batch, n])."""
    rows, fan_in = values.shape
    for i in prange(rows):
        r = row_ids[i]
        for c in range(x.shape[0]):
            xc = x[c]
            acc = np.float32(0.0)
            for j in range(fan_in):
                acc += values[i, j] * xc[indices[i, j]]
            y[c, r] = acc


@njit(parallel=True, fastmath=True, cache=True)
def _gemm_blocked(values, indices, row_ids, x_t, y):
    """Larger batches: per nonzero, scale a row of x^T [k, batch] into a stack accumulator of
    BLOCK_BATCH columns; 8 nonzeros per accumulator update to amortise its load/store."""
    rows, fan_in = values.shape
    batch = x_t.shape[1]
    f8 = fan_in - fan_in % 8
    for i in prange(rows):
        a = _stack_f32(BLOCK_BATCH)
        r = row_ids[i]
        for c0 in range(0, batch, BLOCK_BATCH):
            w = min(BLOCK_BATCH, batch - c0)
            for c in range(w):
                a[c] = 0.0
            for j in range(0, f8, 8):
                v0, v1, v2, v3 = values[i, j], values[i, j + 1], values[i, j + 2], values[i, j + 3]
                v4, v5, v6, v7 = values[i, j + 4], values[i, j + 5], values[i, j + 6], values[i, j + 7]
                x0, x1 = x_t[indices[i, j], c0:], x_t[indices[i, j + 1], c0:]
                x2, x3 = x_t[indices[i, j + 2], c0:], x_t[indices[i, j + 3], c0:]
                x4, x5 = x_t[indices[i, j + 4], c0:], x_t[indices[i, j + 5], c0:]
                x6, x7 = x_t[indices[i, j + 6], c0:], x_t[indices[i, j + 7], c0:]
                for c in range(w):
                    a[c] += (((v0 * x0[c] + v1 * x1[c]) + (v2 * x2[c] + v3 * x3[c]))
                             + ((v4 * x4[c] + v5 * x5[c]) + (v6 * x6[c] + v7 * x7[c])))
            for j in range(f8, fan_in):
                v = values[i, j]
                xr = x_t[indices[i, j], c0:]
                for c in range(w):
                    a[c] += v * xr[c]
            for c in range(w):
                y[c0 + c, r] = a[c]


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
              "batch 1: gather-dot per row; 2..4: gather-dot per row and column; "
              "> 4: rows of x^T [k, batch] scaled per nonzero into 64-column blocks")
    batch_paths = {"gemv": (1, 1), "columns": (2, COLUMNS_MAX_BATCH), "blocked": (COLUMNS_MAX_BATCH + 1, None)}
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
        elif batch <= COLUMNS_MAX_BATCH:
            _gemm_columns(p.values, p.indices, p.row_ids, x.numpy(), y.numpy())
        else:
            _gemm_blocked(p.values, p.indices, p.row_ids, x.t().contiguous().numpy(), y.numpy())
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
        for batch in (1, COLUMNS_MAX_BATCH, COLUMNS_MAX_BATCH + 1):
            cls.run(p, torch.ones(batch, 5))
