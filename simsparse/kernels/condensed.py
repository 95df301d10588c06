"""`condensed`: SRigL's layout for constant fan-in masks (numba, multi-threaded).

Storage: the active rows' values fp32 and column indices uint16 (uint32 when k > 65536), fan_in
of each per row, indices ascending within a row; all-zero (ablated) rows are dropped and their
outputs scattered back as zeros via `row_ids`. The rows are stored in slices of SLICE_ROWS = 64
(the "sliced ELLPACK" / SELL-64 arrangement of the same [rows, fan_in] arrays):
values[s, j, r] is entry j of row s*64 + r, so the 64 rows of a slice sit side by side and
one SIMD vector holds entry j of 16 neighbouring rows. The last slice is padded with value-0,
index-0 rows (at most 63; storage_bytes counts them).

Why sliced: at batch 1 the kernel is bound by gathered elements (here ~5.5 per ns per core with
AVX-512 gathers, whatever the vector width). A row-per-dot loop adds, per row, a horizontal sum
and a scalar tail of fan_in mod (16 x unroll) entries; vectorising across the 64 rows of a slice
needs neither and keeps 64 accumulators in registers. Measured here (2 threads, 90 %, batch 1,
768->3072 and 3072->768): the row-per-dot loop took 25-45 us, the sliced one 24-26 us, at the
single-thread gather floor times 1/2.

Tried and not adopted: a K-blocked layout whose batch-1 loop replaces gathers by in-register
table look-ups (AVX-512 vpermi2ps over 32 columns of x, 8-bit local indices, LLVM intrinsics
through numba). Rows of a 16-row vector hold different numbers of entries per 32-column block,
so the layout pads ~2.0x (90 %, 3072x768): 2.6 MB per call instead of 1.4 MB, LLC-bound on one
thread (56-89 us vs 46-75 us sliced) and only 1.0-1.5x faster on two (20-26 us vs 26-39 us).

Why uint16 and not int16: numba indexes with intp, so a signed narrow index is sign-extended to
64 bits and LLVM emits 8-lane `vgatherqps`; a zero-extended uint16 lets it use 32-bit
`vgatherdps`, and still halves the index bytes of int32 CSR.

Three paths, all splitting the work over threads (`prange`):
- batch 1: per slice, 64 gather-dots side by side (`_gemv`);
- batch 2..8: the same, each gathered index reused for every batch column (`_gemm_columns`);
- batch > 8: x is transposed to [k, batch] (zero-padded to a multiple of 16 columns); each stored
  nonzero scales one contiguous row of x^T into a stack accumulator of 64 batch columns,
  vectorised over the batch, written to a row of y^T; y is returned as a transposed view of
  y^T (as torch's CSR spmm path returns it) (`_gemm_blocked`).

Layout constants (slice rows, batch thresholds, index width) live in simsparse.masks.formats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from simsparse.errors import PatternError
from simsparse.kernels.base import KERNELS, Kernel, check_inputs, check_x
from simsparse.masks.formats import (BLOCK_BATCH, CONDENSED_COLUMNS_MAX_BATCH, CONDENSED_SLICE_ROWS,
                                     condensed_index_bytes)

_COLUMNS_ACC = CONDENSED_SLICE_ROWS * CONDENSED_COLUMNS_MAX_BATCH
PAD_BATCH = 16             # batched path: x^T columns padded to a multiple of this (one AVX-512 vector)


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
    """batch 1: y[row_ids[s*64 + r]] = sum_j values[s, j, r] * x[indices[s, j, r]]."""
    slices, fan_in, _ = values.shape
    rows = row_ids.size
    for s in prange(slices):
        acc = _stack_f32(CONDENSED_SLICE_ROWS)
        for r in range(CONDENSED_SLICE_ROWS):
            acc[r] = 0.0
        for j in range(fan_in):
            for r in range(CONDENSED_SLICE_ROWS):
                acc[r] += values[s, j, r] * x[np.intp(indices[s, j, r])]
        for r in range(min(CONDENSED_SLICE_ROWS, rows - s * CONDENSED_SLICE_ROWS)):
            y[row_ids[s * CONDENSED_SLICE_ROWS + r]] = acc[r]


@njit(parallel=True, fastmath=True, cache=True)
def _gemm_columns(values, indices, row_ids, x, y):
    """Small batches (x [batch <= 8, k], y [batch, n]): the batch-1 loop with one accumulator
    vector set per batch column, each loaded index and value reused for every column."""
    slices, fan_in, _ = values.shape
    rows = row_ids.size
    batch = x.shape[0]
    for s in prange(slices):
        acc = _stack_f32(_COLUMNS_ACC)
        for r in range(batch * CONDENSED_SLICE_ROWS):
            acc[r] = 0.0
        for j in range(fan_in):
            for c in range(batch):
                xc = x[c]
                for r in range(CONDENSED_SLICE_ROWS):
                    acc[c * CONDENSED_SLICE_ROWS + r] += values[s, j, r] * xc[np.intp(indices[s, j, r])]
        live = min(CONDENSED_SLICE_ROWS, rows - s * CONDENSED_SLICE_ROWS)
        for c in range(batch):
            for r in range(live):
                y[c, row_ids[s * CONDENSED_SLICE_ROWS + r]] = acc[c * CONDENSED_SLICE_ROWS + r]


@njit(parallel=True, fastmath=True, cache=True)
def _gemm_blocked(values, indices, row_ids, x_t, y_t):
    """Larger batches: per nonzero, scale a row of x^T [k, batch] into a stack accumulator of
    BLOCK_BATCH columns; 8 nonzeros per accumulator update to amortise its load/store. The
    result is written as y^T [n, batch] (one contiguous row per output row)."""
    fan_in = values.shape[1]
    rows = row_ids.size
    batch = x_t.shape[1]
    f8 = fan_in - fan_in % 8
    for i in prange(rows):
        a = _stack_f32(BLOCK_BATCH)
        s, q = i // CONDENSED_SLICE_ROWS, i % CONDENSED_SLICE_ROWS
        r = row_ids[i]
        for c0 in range(0, batch, BLOCK_BATCH):
            w = min(BLOCK_BATCH, batch - c0)
            for c in range(w):
                a[c] = 0.0
            for j in range(0, f8, 8):
                v0, v1, v2, v3 = values[s, j, q], values[s, j + 1, q], values[s, j + 2, q], values[s, j + 3, q]
                v4, v5, v6, v7 = values[s, j + 4, q], values[s, j + 5, q], values[s, j + 6, q], values[s, j + 7, q]
                x0, x1 = x_t[indices[s, j, q], c0:], x_t[indices[s, j + 1, q], c0:]
                x2, x3 = x_t[indices[s, j + 2, q], c0:], x_t[indices[s, j + 3, q], c0:]
                x4, x5 = x_t[indices[s, j + 4, q], c0:], x_t[indices[s, j + 5, q], c0:]
                x6, x7 = x_t[indices[s, j + 6, q], c0:], x_t[indices[s, j + 7, q], c0:]
                for c in range(w):
                    a[c] += (((v0 * x0[c] + v1 * x1[c]) + (v2 * x2[c] + v3 * x3[c]))
                             + ((v4 * x4[c] + v5 * x5[c]) + (v6 * x6[c] + v7 * x7[c])))
            for j in range(f8, fan_in):
                v = values[s, j, q]
                xr = x_t[indices[s, j, q], c0:]
                for c in range(w):
                    a[c] += v * xr[c]
            yr = y_t[r, c0:]
            for c in range(w):
                yr[c] = a[c]


def _run_blocked(p, x: np.ndarray) -> np.ndarray:
    """y [batch, n] as a transposed view of y^T [n, batch'] (what torch's CSR spmm returns too):
    writing y^T row by row replaces one strided store per (row, column) by contiguous vector
    stores (measured: 1.3-1.85x faster at batch 64-512 on 3072x768, 1.04-1.07x on 768x3072).
    x^T is zero-padded to a multiple of PAD_BATCH columns when the batch is not one: the
    accumulator loop then runs whole vectors only (measured: batch 9-12 ~20 % faster)."""
    batch, k = x.shape
    padded = -(-batch // PAD_BATCH) * PAD_BATCH
    if padded == batch:
        x_t = np.ascontiguousarray(x.T)
    else:
        x_t = np.zeros((k, padded), dtype=np.float32)
        x_t[:, :batch] = x.T
    y_t = (np.zeros if p.rows_removed else np.empty)((p.n, padded), dtype=np.float32)
    _gemm_blocked(p.values, p.indices, p.row_ids, x_t, y_t)
    return y_t[:, :batch].T


def to_slices(rows_major: np.ndarray) -> np.ndarray:
    """[rows, fan_in] -> [ceil(rows / 64), fan_in, 64], zero-padded rows at the end."""
    rows, fan_in = rows_major.shape
    slices = -(-rows // CONDENSED_SLICE_ROWS)
    padded = np.zeros((slices * CONDENSED_SLICE_ROWS, fan_in), dtype=rows_major.dtype)
    padded[:rows] = rows_major
    return np.ascontiguousarray(padded.reshape(slices, CONDENSED_SLICE_ROWS, fan_in).transpose(0, 2, 1))


def from_slices(sliced: np.ndarray, rows: int) -> np.ndarray:
    """Inverse of to_slices: [slices, fan_in, 64] -> [rows, fan_in]."""
    return sliced.transpose(0, 2, 1).reshape(-1, sliced.shape[1])[:rows]


def narrow_index_dtype(k: int) -> np.dtype:
    """The unsigned index type of masks.formats.condensed_index_bytes (uint16 while k <= 65536)."""
    return np.dtype(f"uint{8 * condensed_index_bytes(k)}")


@dataclass(frozen=True, eq=False)
class CondensedPrepared:
    values: np.ndarray    # [slices, fan_in, 64] float32 (to_slices of [rows_active, fan_in])
    indices: np.ndarray   # [slices, fan_in, 64] uint16|uint32 column ids, ascending along fan_in
    row_ids: np.ndarray   # [rows_active] int32 output row of each stored row
    n: int
    k: int

    @property
    def fan_in(self) -> int:
        return int(self.values.shape[1])

    @property
    def rows_active(self) -> int:
        return int(self.row_ids.size)

    @property
    def rows_removed(self) -> int:
        return self.n - self.rows_active

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(values, indices) as [rows_active, fan_in] arrays, the plain condensed view."""
        return from_slices(self.values, self.rows_active), from_slices(self.indices, self.rows_active)


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
    format = "condensed"
    index_dtype = "uint16"   # uint32 when k > 65536
    layout = ("values [rows_active, fan_in] fp32 + indices [rows_active, fan_in] uint16 + row ids int32, "
              "stored in slices of 64 rows (SELL-64); batch 1..8: 64 gather-dots side by side per slice; "
              "> 8: rows of x^T [k, batch] scaled per nonzero into 64-column blocks")
    batch_paths = {"gemv": (1, 1), "columns": (2, CONDENSED_COLUMNS_MAX_BATCH),
                   "blocked": (CONDENSED_COLUMNS_MAX_BATCH + 1, None)}
    backend = "numba"

    @classmethod
    def prepare(cls, weight, mask) -> CondensedPrepared:
        w, m = check_inputs(weight, mask)
        n, k = m.shape
        active, fan_in = constant_fan_in(m)
        sub = m[active]
        cols = np.nonzero(sub)[1].reshape(active.size, fan_in)   # row-major -> ascending per row
        values = w.numpy()[active[:, None], cols].astype(np.float32)
        return CondensedPrepared(values=to_slices(values), indices=to_slices(cols.astype(narrow_index_dtype(k))),
                                 row_ids=active.astype(np.int32), n=n, k=k)

    @classmethod
    def run(cls, prepared: CondensedPrepared, x: torch.Tensor) -> torch.Tensor:
        p = prepared
        x = check_x(x, p.k)
        batch = x.shape[0]
        work = bool(p.rows_active and batch and p.fan_in)
        if work and batch > CONDENSED_COLUMNS_MAX_BATCH:
            return torch.from_numpy(_run_blocked(p, x.numpy()))
        y = (np.empty if work and not p.rows_removed else np.zeros)((batch, p.n), dtype=np.float32)
        if work and batch == 1:
            _gemv(p.values, p.indices, p.row_ids, x.numpy()[0], y[0])
        elif work:
            _gemm_columns(p.values, p.indices, p.row_ids, x.numpy(), y)
        return torch.from_numpy(y)

    @classmethod
    def storage_bytes(cls, prepared: CondensedPrepared) -> dict[str, int]:
        """What the kernel streams: the sliced arrays, padding rows of the last slice included."""
        return {"values": int(prepared.values.nbytes), "indices": int(prepared.indices.nbytes),
                "row_ids": int(prepared.row_ids.nbytes)}

    @classmethod
    def warm_up(cls) -> None:
        mask = np.zeros((3, 5), dtype=bool)
        mask[:, :2] = True
        p = cls.prepare(torch.ones(3, 5), mask)
        for batch in (1, CONDENSED_COLUMNS_MAX_BATCH, CONDENSED_COLUMNS_MAX_BATCH + 1):
            cls.run(p, torch.ones(batch, 5))
