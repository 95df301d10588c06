"""The expected error band of a GPU estimate, looked up in the committed table
`accelerators/measurements/gpu_error_bands.json` (written by `python -m simsparse.validate.gpu_bands
--regenerate`, checked current by a test).

A band is a pair of validation-residual percentiles (measured / predicted - 1, 10th and 90th) of
the rows of the estimate's GPU spec, software stack, dtype and regime:
  skinny  m <= 256 tokens (decode and small batches: latency- and weight-bandwidth-bound),
  square  256 < m < 8192,
  large   m >= 8192 (compute-bound, power-limited clocks).
A dense call takes the dense-time band, a 2:4 call the sparse-time band and the speedup
band; a memory-bound kernel takes its spec's `memory` entry. Entries without rows of their own are
marked as priors and name what they borrow. A spec outside the table (a user's YAML) gets the
widest band the table holds for its dtype and regime, marked as a prior.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from simsparse.records import ErrorBand
from simsparse.resources import data_dir

BANDS_FILE = "gpu_error_bands.json"
REGIMES = ("skinny", "square", "large")
SKINNY_MAX_M = 256
LARGE_MIN_M = 8192
MEMORY = "memory"            # the regime key of memory-bound (non-GEMM) kernels


def regime(m: int) -> str:
    """skinny, square or large from the token count m."""
    if m <= SKINNY_MAX_M:
        return "skinny"
    return "large" if m >= LARGE_MIN_M else "square"


def bands_path() -> Path:
    return data_dir("accelerators") / "measurements" / BANDS_FILE


@lru_cache(maxsize=1)
def _table() -> dict[tuple[str, str, str, str], dict]:
    path = bands_path()
    if not path.is_file():
        return {}
    rows = json.loads(path.read_text(encoding="utf-8"))["bands"]
    return {(r["arch"], r["software"], r["dtype"], r["regime"]): r for r in rows}


def _band(entry: dict, *, sparse: bool, basis_suffix: str = "", prior: bool = False) -> ErrorBand:
    time = entry["sparse"] if sparse else entry["dense"]
    speed = entry.get("speedup") if sparse else None
    return ErrorBand(latency_low=time[0], latency_high=time[1],
                     speedup_low=speed[0] if speed else None, speedup_high=speed[1] if speed else None,
                     basis=entry["basis"] + basis_suffix, prior=prior or entry["prior"])


def _widest(dtype: str, reg: str) -> dict | None:
    """The widest entry of the table for a dtype and regime (any arch, any stack)."""
    cands = [r for (a, s, d, g), r in _table().items() if d == dtype and g == reg]
    if not cands:
        return None
    return max(cands, key=lambda r: (r["sparse"][1] - r["sparse"][0]) + (r["dense"][1] - r["dense"][0]))


def band_for(arch: str, software: str, dtype: str, m: int, *, sparse: bool) -> ErrorBand | None:
    """The band of a GEMM call (m tokens; `sparse`: on the 2:4 back end), None without a table."""
    reg = regime(m)
    entry = _table().get((arch, software, dtype, reg))
    if entry is not None:
        return _band(entry, sparse=sparse)
    wide = _widest(dtype, reg)
    if wide is None:
        return None
    return _band(wide, sparse=sparse, prior=True,
                 basis_suffix=f"; {arch} {software} has no band of its own: the widest {dtype} {reg} band of the shipped specs")


def memory_band(arch: str, software: str) -> ErrorBand | None:
    """The band of a memory-bound kernel (norms, element-wise ops)."""
    entry = _table().get((arch, software, "", MEMORY))
    return _band(entry, sparse=False) if entry is not None else None
