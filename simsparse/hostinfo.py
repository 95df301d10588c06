"""What this CPU is: cores, SIMD width, FMA ports, caches, clock, and a bandwidth probe per level.

Detection reads plain files (`/proc/cpuinfo`, `/sys/devices/system/cpu/cpu0/cache/index*`) whose
paths are arguments, so tests inject a fake tree. The bandwidth probe (a numba read loop over a
working set sized for each level) runs once per machine and is cached as JSON under
`${XDG_CACHE_HOME:-~/.cache}/simsparse/` keyed by the machine (simsparse.hostcache). `SIMSPARSE_SKIP_PROBE=1` (or
`probe=False`) replaces the measurement with documented per-clock defaults (no timing at all).

`host_spec_data()` turns all of it into `kind: cpu_simd` spec data (see archs/cpu_simd.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from simsparse.hostcache import cache_dir, positive_number, read_cache, write_cache

PROC_CPUINFO = "/proc/cpuinfo"
SYSFS_CACHE = "/sys/devices/system/cpu/cpu0/cache"
SKIP_PROBE_ENV = "SIMSPARSE_SKIP_PROBE"
PROBE_VERSION = 2

# Per-clock read bandwidth per core used when the probe is skipped (documented defaults,
# Golden Cove-like: 2 x 64 B loads per clock from L1, 64 B/clk from L2, ~16 B/clk from the LLC).
DEFAULT_BYTES_PER_CLK = {"l1": 128.0, "l2": 48.0, "llc": 16.0, "dram": 8.0}
DEFAULT_DRAM_BYTES_PER_S = 20.0e9


@dataclass(frozen=True)
class CacheLevel:
    level: int
    type: str            # Data | Instruction | Unified
    size_bytes: int
    shared_cpus: int     # how many logical CPUs share it


@dataclass(frozen=True)
class CpuInfo:
    model_name: str
    flags: frozenset
    mhz: float           # 0.0 when unknown


# ----------------------------------------------------------------------------- parsing


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor block of /proc/cpuinfo: model name, flags, MHz."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    mhz = 0.0
    try:
        mhz = float(fields.get("cpu MHz", "0") or 0)
    except ValueError:
        mhz = 0.0
    return CpuInfo(model_name=fields.get("model name", "unknown cpu"),
                   flags=frozenset(fields.get("flags", "").split()), mhz=mhz)


def parse_size(text: str) -> int:
    """sysfs cache size ("48K", "2048K", "105M", "1024") -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)B?\s*", text, flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"cannot read cache size {text!r}")
    scale = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}[m.group(2).upper()]
    return int(m.group(1)) * scale


def _count_cpu_list(text: str) -> int:
    """"0-3,8" -> 5."""
    total = 0
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        total += (int(hi) - int(lo) + 1) if hi else 1
    return max(1, total)


def read_caches(root: str | Path = SYSFS_CACHE) -> list[CacheLevel]:
    """Data/unified caches of cpu0 from sysfs, innermost first ([] when the tree is absent)."""
    out = []
    for d in sorted(Path(root).glob("index*")):
        try:
            ctype = (d / "type").read_text().strip()
            level = int((d / "level").read_text())
            size = parse_size((d / "size").read_text())
            shared_path = d / "shared_cpu_list"
            shared = _count_cpu_list(shared_path.read_text()) if shared_path.exists() else 1
        except (OSError, ValueError):
            continue
        if ctype == "Instruction":
            continue
        out.append(CacheLevel(level=level, type=ctype, size_bytes=size, shared_cpus=shared))
    return sorted(out, key=lambda c: c.level)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def simd_from_flags(flags: frozenset, model_name: str = "") -> dict:
    """fp32 lanes, FMA ports and vector loads per clock from the CPU flags.

    avx512f -> 16 lanes; 2 FMA ports on server parts (Xeon, or AMX present), 1 on client parts.
    avx2+fma -> 8 lanes, 2 ports. Otherwise SSE: 4 lanes, 1 port (mul+add, no FMA).
    Loads per clock: 3 on Golden Cove and later cores (Sapphire Rapids: their flags add
    avx512_fp16 / amx_tile; 3 loads of up to 256 bit, or 2 of 512), else 2.
    """
    server = "xeon" in model_name.lower() or "epyc" in model_name.lower() or "amx_tile" in flags
    golden_cove = "avx512_fp16" in flags or "amx_tile" in flags
    if "avx512f" in flags:
        return {"isa": "avx512", "fp32_lanes": 16, "fma_ports": 2 if server else 1,
                "load_ports": 3 if golden_cove else 2, "amx": "amx_tile" in flags,
                "jit_fp32_lanes": 8}   # LLVM's Intel AVX-512 tunings prefer 256-bit vectors (numba)
    if "avx2" in flags and "fma" in flags:
        return {"isa": "avx2", "fp32_lanes": 8, "fma_ports": 2, "load_ports": 2, "amx": False}
    return {"isa": "sse", "fp32_lanes": 4, "fma_ports": 1, "load_ports": 2, "amx": False}


def clock_hz(info: CpuInfo, *, timer: Callable[[], float] | None = None) -> float:
    """Core clock: cpuinfo MHz, else the '@ X.XXGHz' of the model name, else a timing loop."""
    if info.mhz > 0:
        return info.mhz * 1e6
    m = re.search(r"@\s*([\d.]+)\s*GHz", info.model_name)
    if m:
        return float(m.group(1)) * 1e9
    return _timed_clock_hz(timer or time.perf_counter)


def _timed_clock_hz(timer: Callable[[], float]) -> float:
    """A dependent chain of fp64 multiplies (4-cycle latency on recent x86 cores), ~10 ms."""
    mul_chain = _loops()["mul_chain"]
    n = 10_000_000
    mul_chain(10)
    t0 = timer()
    mul_chain(n)
    dt = max(timer() - t0, 1e-9)
    return 4.0 * n / dt


# ----------------------------------------------------------------------------- bandwidth probe

_LOOPS: dict = {}


def _loops() -> dict:
    """numba-compiled probe loops (compiled on first use, so importing this module stays cheap)."""
    if _LOOPS:
        return _LOOPS
    import numba

    @numba.njit(fastmath=True, cache=False)
    def sum_repeat(a, reps):
        total = 0.0
        for _ in range(reps):
            s = np.float32(0.0)
            for i in range(a.shape[0]):
                s += a[i]
            total += s
        return total

    @numba.njit(fastmath=True, parallel=True, cache=False)
    def sum_repeat_parallel(a, reps):
        out = np.zeros(a.shape[0])
        for t in numba.prange(a.shape[0]):
            total = 0.0
            for _ in range(reps):
                s = np.float32(0.0)
                for i in range(a.shape[1]):
                    s += a[t, i]
                total += s
            out[t] = total
        return out.sum()

    @numba.njit(cache=False)
    def mul_chain(n):
        x = 1.0
        for _ in range(n):
            x = x * 0.999999
        return x

    _LOOPS.update(sum_repeat=sum_repeat, sum_repeat_parallel=sum_repeat_parallel, mul_chain=mul_chain)
    return _LOOPS



def probe_working_sets(caches: list[CacheLevel], cores: int) -> dict[str, int]:
    """Bytes read per level: half of each private level, LLC share / 2 (<= 16 MiB), DRAM 4x the LLC (64..256 MiB)."""
    sizes = {c.level: c for c in caches}
    ws = {}
    if 1 in sizes:
        ws["l1"] = sizes[1].size_bytes // 2
    if 2 in sizes:
        ws["l2"] = sizes[2].size_bytes // 2
    llc = max(caches, key=lambda c: c.level) if caches else None
    if llc is not None and llc.level >= 3:
        ws["llc"] = min(llc.size_bytes // (2 * max(1, min(cores, llc.shared_cpus))), 16 << 20)
    llc_bytes = llc.size_bytes if llc is not None else 32 << 20
    ws["dram"] = int(min(max(4 * llc_bytes, 64 << 20), 256 << 20))
    return ws


def measure_read_bandwidth(nbytes: int, *, threads: int = 1, sample_s: float = 0.002,
                           samples: int = 15) -> float:
    """Bytes/s of a vectorised read (sum) over `nbytes` per thread: the best of `samples` short
    samples (~sample_s each; short samples slip between other processes' time slices)."""
    loops = _loops()
    n = max(256, nbytes // 4)
    if threads <= 1:
        a = np.ones(n, dtype=np.float32)
        fn = lambda reps: loops["sum_repeat"](a, reps)  # noqa: E731
    else:
        a = np.ones((threads, n), dtype=np.float32)
        fn = lambda reps: loops["sum_repeat_parallel"](a, reps)  # noqa: E731
    fn(1)
    reps = 1
    while True:
        t0 = time.perf_counter()
        fn(reps)
        dt = time.perf_counter() - t0
        if dt >= sample_s or reps >= 1 << 20:
            break
        reps *= 2
    best = dt
    for _ in range(samples - 1):
        t0 = time.perf_counter()
        fn(reps)
        best = min(best, time.perf_counter() - t0)
    return threads * n * 4 * reps / best


def probe_bandwidth(caches: list[CacheLevel], cores: int) -> dict:
    """{level: {"per_core_bytes_per_s", "all_cores_bytes_per_s", "working_set_bytes"}}."""
    out = {}
    for level, ws in probe_working_sets(caches, cores).items():
        one = measure_read_bandwidth(ws, threads=1)
        many = measure_read_bandwidth(ws, threads=cores) if cores > 1 else one
        out[level] = {"per_core_bytes_per_s": one, "all_cores_bytes_per_s": max(one, many),
                      "working_set_bytes": ws}
    return out


def default_bandwidth(caches: list[CacheLevel], cores: int, clock: float) -> dict:
    """The no-probe stand-in: documented bytes/clk per core (DEFAULT_BYTES_PER_CLK)."""
    out = {}
    for level, ws in probe_working_sets(caches, cores).items():
        per_core = DEFAULT_BYTES_PER_CLK[level] * clock
        if level == "dram":
            per_core = min(per_core, DEFAULT_DRAM_BYTES_PER_S)
        total = per_core * cores if level in ("l1", "l2") else max(per_core, min(per_core * cores,
                                                                               4 * per_core))
        out[level] = {"per_core_bytes_per_s": per_core, "all_cores_bytes_per_s": total,
                      "working_set_bytes": ws}
    return out


def machine_key(info: CpuInfo, caches: list[CacheLevel], cores: int) -> str:
    """Stable id of this machine (CPU model, flags, caches, usable cores)."""
    text = json.dumps({"model": info.model_name, "flags": sorted(info.flags), "cores": cores,
                       "caches": [asdict(c) for c in caches]}, sort_keys=True)
    slug = re.sub(r"[^a-z0-9]+", "-", info.model_name.lower()).strip("-")[:32]
    return f"{slug}-{cores}c-{hashlib.sha1(text.encode()).hexdigest()[:10]}"


@dataclass(frozen=True)
class Host:
    """Everything detected about this machine (plain data, no timing yet)."""

    info: CpuInfo
    caches: tuple[CacheLevel, ...]
    cores: int
    clock_hz: float
    simd: dict
    key: str


def detect(*, cpuinfo_path: str | Path = PROC_CPUINFO, sysfs_cache: str | Path = SYSFS_CACHE,
           cores: int | None = None) -> Host:
    """Read this machine (or an injected fake tree)."""
    try:
        text = Path(cpuinfo_path).read_text()
    except OSError:
        text = ""
    info = parse_cpuinfo(text)
    caches = read_caches(sysfs_cache)
    ncores = cores if cores is not None else available_cores()
    return Host(info=info, caches=tuple(caches), cores=ncores, clock_hz=clock_hz(info),
                simd=simd_from_flags(info.flags, info.model_name),
                key=machine_key(info, caches, ncores))


def host_bandwidth(host: Host, *, probe: bool | None = None, refresh: bool = False) -> dict:
    """Per-level bandwidth: cached probe result, a fresh probe, or documented defaults."""
    if probe is None:
        probe = os.environ.get(SKIP_PROBE_ENV, "") not in ("1", "true", "yes")
    if not probe:
        return default_bandwidth(list(host.caches), host.cores, host.clock_hz)
    path = cache_dir() / f"host_{host.key}.json"
    cached = read_cache(path, version=PROBE_VERSION, what="host-probe cache", version_key="probe_version",
                        valid=lambda d: d["machine"] == host.key and _valid_bandwidth(d["bandwidth"]))
    if cached and not refresh:
        return cached["bandwidth"]
    bw = probe_bandwidth(list(host.caches), host.cores)
    write_cache(path, {"machine": host.key, "bandwidth": bw, "model_name": host.info.model_name},
                version=PROBE_VERSION, what="host-probe cache", version_key="probe_version")
    return bw


def _valid_bandwidth(bw: dict) -> bool:
    return "dram" in bw and all(positive_number(v["per_core_bytes_per_s"]) and positive_number(v["all_cores_bytes_per_s"])
                                for v in bw.values())
