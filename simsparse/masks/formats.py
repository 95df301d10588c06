"""Storage formats of a sparse weight: names, layout constants and the byte model, in one place.

The real CPU kernels (simsparse/kernels) build these layouts and the CPU model
(archs/cpu_loops.py) charges their bytes; both read this module, which imports neither torch nor
numba. A kernel that changes its layout changes it here (tests check every kernel's
`storage_bytes` against `kernel_storage_bytes`).

FORMATS, the one list of kernel/format names:
  dense      values [n, k] (zeros stored)
  csr        values [nnz] + int32 column indices [nnz] + int32 row pointers [n + 1] (torch CSR)
  condensed  constant fan-in (SRigL): values and column indices [rows_active, fan_in], stored in
             slices of CONDENSED_SLICE_ROWS rows (SELL-64; the last slice padded with zero rows),
             indices uint16 while k <= 65536 (else uint32), plus int32 ids of the active rows
  nm         N:M compressed rows: N value slots per group of M along k (ceil(k / M) groups per row)
             + one uint8 in-group offset per slot (the CPU kernel); N:M hardware keeps
             ceil(log2 M) index bits per kept value instead (`storage_bytes(p, "2:4", dtype)`)
  shrunk     the dense matrix of the kept rows x kept reduction columns (all-zero ones dropped)
             + int64 ids of the kept rows / columns when some are dropped

Batch thresholds of the numba kernels' code paths are here too: the CPU model times each path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simsparse.errors import PatternError, UnknownNameError
from simsparse.masks.patterns import NM_GROUP_SIZES, best_nm
from simsparse.records import Pattern
from simsparse.units import dtype_bytes

FORMATS = ("dense", "csr", "condensed", "nm", "shrunk")

CSR_INDEX_BYTES = 4              # int32 column indices and row pointers
CONDENSED_SLICE_ROWS = 64        # rows per slice (SELL-64) and register accumulators per gather-dot step
CONDENSED_ROW_ID_BYTES = 4       # int32 output row of each stored row
CONDENSED_COLUMNS_MAX_BATCH = 8  # batch 2..8: gather-dots reusing each index per column; above: blocked
NM_OFFSET_BYTES = 1              # uint8 in-group offset per value slot
NM_GROUP_CHOICES = (4, 8, 16, 32)   # group sizes M the nm kernel chooses among (best_nm)
NM_COLUMNS_MAX_BATCH = 4         # batch 2..4: the gather-dot once per column; above: blocked
BLOCK_BATCH = 64                 # batched path of condensed and nm: batch columns per stack accumulator
SHRUNK_ID_BYTES = 8              # int64 kept row / column ids

assert set(NM_GROUP_CHOICES) <= set(NM_GROUP_SIZES)  # Pattern measures every envelope nm chooses among


@dataclass(frozen=True)
class StorageSize:
    values_bytes: float
    metadata_bytes: float        # indices, offsets, row pointers, row ids

    @property
    def total_bytes(self) -> float:
        return self.values_bytes + self.metadata_bytes


def condensed_index_bytes(k: int) -> int:
    """Bytes of one condensed column index: uint16 while every index fits (k <= 65536), else uint32."""
    return 2 if k <= 2 ** 16 else 4


def condensed_stored_rows(rows_active: int) -> int:
    """Rows the sliced layout stores: the active rows padded to whole slices."""
    return math.ceil(rows_active / CONDENSED_SLICE_ROWS) * CONDENSED_SLICE_ROWS


def nm_slots_per_row(k: int, n_keep: int, group_m: int) -> int:
    """Value slots of one N:M-compressed row: N per group of M along k (the last group padded)."""
    return math.ceil(k / max(1, group_m)) * n_keep


def dense_size(*, rows: int, cols: int, value_bytes: float) -> StorageSize:
    return StorageSize(rows * cols * value_bytes, 0.0)


def csr_size(*, rows: int, nnz: int, value_bytes: float) -> StorageSize:
    return StorageSize(nnz * value_bytes, nnz * CSR_INDEX_BYTES + (rows + 1) * CSR_INDEX_BYTES)


def condensed_size(*, rows_active: int, fan_in: int, cols: int, value_bytes: float) -> StorageSize:
    stored = condensed_stored_rows(rows_active) * fan_in
    return StorageSize(stored * value_bytes,
                       stored * condensed_index_bytes(cols) + rows_active * CONDENSED_ROW_ID_BYTES)


def nm_size(*, rows: int, cols: int, n_keep: int, group_m: int, value_bytes: float,
            index_bits: float = 8.0 * NM_OFFSET_BYTES) -> StorageSize:
    slots = rows * nm_slots_per_row(cols, n_keep, group_m)
    return StorageSize(slots * value_bytes, slots * index_bits / 8.0)


def shrunk_size(*, rows: int, cols: int, rows_kept: int, cols_kept: int, value_bytes: float) -> StorageSize:
    ids = (rows_kept if rows_kept < rows else 0) + (cols_kept if cols_kept < cols else 0)
    return StorageSize(rows_kept * cols_kept * value_bytes, ids * SHRUNK_ID_BYTES)


def kernel_storage_bytes(p: Pattern, fmt: str, dtype: str) -> StorageSize:
    """What the CPU kernel of format `fmt` (one of FORMATS) stores for a mask of pattern `p`."""
    vb = dtype_bytes(dtype)
    if fmt == "dense":
        return dense_size(rows=p.rows, cols=p.cols, value_bytes=vb)
    if fmt == "csr":
        return csr_size(rows=p.rows, nnz=p.nnz, value_bytes=vb)
    if fmt == "condensed":
        return condensed_size(rows_active=p.rows - p.rows_removed, fan_in=p.fan_in.max, cols=p.cols,
                              value_bytes=vb)
    if fmt == "nm":
        choice = best_nm(p.nm_envelope, NM_GROUP_CHOICES)
        if choice is None:
            raise PatternError("format nm needs an N:M mask (N < M for some M in 4..32); use csr or dense")
        return nm_size(rows=p.rows, cols=p.cols, n_keep=choice[0], group_m=choice[1], value_bytes=vb)
    if fmt == "shrunk":
        return shrunk_size(rows=p.rows, cols=p.cols, rows_kept=p.rows - p.rows_removed,
                           cols_kept=p.cols - p.zero_cols, value_bytes=vb)
    raise UnknownNameError(f"unknown storage format {fmt!r}; known: {', '.join(FORMATS)}")


def storage_bytes(p: Pattern, fmt: str, dtype: str) -> StorageSize:
    """Bytes of `fmt` for a layer of pattern `p`: a kernel format (FORMATS), or "N:M" as N:M
    hardware stores it (ceil(log2 M) index bits per kept value: 2:4 fp16 is 56.25 % of dense)."""
    if ":" in fmt:
        n, m = (int(x) for x in fmt.split(":"))
        return nm_size(rows=p.rows, cols=p.cols, n_keep=n, group_m=m, value_bytes=dtype_bytes(dtype),
                       index_bits=max(1, math.ceil(math.log2(m))))
    return kernel_storage_bytes(p, fmt, dtype)
