"""Conversions in one place: dtype sizes, FLOPs <-> MACs, time units."""

from __future__ import annotations

from simsparse.errors import SimSparseError

DTYPE_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "fp8": 1, "int8": 1}   # fp8: e4m3 or e5m2 (one rate)
DTYPES = tuple(DTYPE_BYTES)


def dtype_bytes(dtype: str) -> int:
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise SimSparseError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}") from None


def flops_from_macs(macs: float) -> float:
    return 2.0 * macs


US_PER_S = 1e6
