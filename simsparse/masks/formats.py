"""Storage-size models of sparse formats (bytes of values and of metadata/indices).

One function per format; `storage_bytes` dispatches by name. Sizes follow the usual layouts:
dense; N:M compressed (N values per group of M plus ceil(log2 M) index bits per kept value —
2:4 fp16 is 56.25 % of dense); CSR (values + int32 column indices + int32 row pointers);
condensed constant fan-in (values [rows, K] + narrow indices [rows, K] + int32 ids of active rows);
shrunk (the dense matrix left after removing all-zero rows and input channels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simsparse.errors import UnknownNameError
from simsparse.records import Pattern
from simsparse.units import dtype_bytes


@dataclass(frozen=True)
class StorageSize:
    values_bytes: float
    metadata_bytes: float

    @property
    def total_bytes(self) -> float:
        return self.values_bytes + self.metadata_bytes


def dense_bytes(p: Pattern, dtype: str) -> StorageSize:
    return StorageSize(p.rows * p.cols * dtype_bytes(dtype), 0.0)


def nm_bytes(p: Pattern, dtype: str, *, n: int, m: int) -> StorageSize:
    groups = p.rows * math.ceil(p.cols / m)
    kept = groups * n
    index_bits = max(1, math.ceil(math.log2(m)))
    return StorageSize(kept * dtype_bytes(dtype), kept * index_bits / 8.0)


def csr_bytes(p: Pattern, dtype: str) -> StorageSize:
    return StorageSize(p.nnz * dtype_bytes(dtype), p.nnz * 4.0 + (p.rows + 1) * 4.0)


def index_bytes_for(cols: int) -> int:
    """Narrowest unsigned index type that addresses `cols` columns."""
    return 1 if cols <= 256 else 2 if cols <= 65536 else 4


def condensed_bytes(p: Pattern, dtype: str) -> StorageSize:
    active = p.rows - p.rows_removed
    k = p.fan_in.max
    return StorageSize(active * k * dtype_bytes(dtype), active * k * index_bytes_for(p.cols) + active * 4.0)


def shrunk_bytes(p: Pattern, dtype: str) -> StorageSize:
    cols = p.cols - p.cols_removed * p.reduction_per_channel
    return StorageSize((p.rows - p.rows_removed) * cols * dtype_bytes(dtype), 0.0)


def storage_bytes(p: Pattern, fmt: str, dtype: str) -> StorageSize:
    """Bytes of `fmt` ("dense", "csr", "condensed", "shrunk", or "N:M") for a layer of pattern `p`."""
    if ":" in fmt:
        n, m = (int(x) for x in fmt.split(":"))
        return nm_bytes(p, dtype, n=n, m=m)
    table = {"dense": dense_bytes, "csr": csr_bytes, "condensed": condensed_bytes, "shrunk": shrunk_bytes}
    if fmt not in table:
        raise UnknownNameError(f"unknown storage format {fmt!r}; known: {', '.join(sorted(table))}, N:M")
    return table[fmt](p, dtype)
