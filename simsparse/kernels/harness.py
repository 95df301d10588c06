"""Timing harness: warm-up, repeats until a minimum time, median and IQR, thread control,
warm or cold cache, and the machine and library versions recorded with every result.

The clock is injectable (`clock=`), so the statistics are testable with a fake timer.
A sample is the mean of `inner` back-to-back calls (inner > 1 only for calls shorter than
`min_sample_s` in warm mode, to keep timer overhead out); cold mode flushes the caches
before every sample and so always uses inner = 1.
"""

from __future__ import annotations

import itertools
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, Mapping

import numba
import numpy as np
import scipy
import torch

from simsparse import hostinfo
from simsparse.errors import MeasurementError
from simsparse.kernels.contention import load_average  # noqa: F401  (re-exported)

CACHE_MODES = ("warm", "cold")
FLUSH_CAP_BYTES = 256 * 2**20   # cold-cache flush buffer cap (an LLC larger than this is only partly flushed)
Clock = Callable[[], float]


@dataclass(frozen=True)
class Machine:
    """The CPU a measurement ran on (enough to tell machines apart and to model them)."""

    cpu_model: str
    usable_cpus: int                 # CPUs this process may run on (affinity)
    isa: str                         # avx512 | avx2 | sse | other
    flags: tuple[str, ...]           # the SIMD/matrix flags present (summary, not all flags)
    cache_bytes: Mapping[str, int]   # {"L1d": B, "L2": B, "L3": B} per instance
    clock_hz: float                  # nominal, from /proc/cpuinfo (0.0 when unknown)
    system: str                      # e.g. "Linux x86_64"


@dataclass(frozen=True)
class TimingStats:
    samples_s: tuple[float, ...]     # seconds per call, one per sample
    median_s: float
    iqr_s: float                     # 75th - 25th percentile of samples_s
    min_s: float
    repeats: int                     # number of samples
    inner: int                       # calls per sample
    total_s: float                   # timed seconds over all samples
    p10_s: float = 0.0               # low quantile: with min_s, the robust estimate on a busy machine
    p90_s: float = 0.0               # [min_s, p90_s] is the reported noise band

    @property
    def noise(self) -> float:
        """Relative spread of the samples: IQR / median."""
        return self.iqr_s / self.median_s if self.median_s > 0 else 0.0


@dataclass(frozen=True)
class Measurement:
    """One kernel on one GEMM: y[m, n] = x[m, k] @ W[n, k]^T with W of `pattern`."""

    kernel: str
    m: int                           # batch rows
    n: int                           # output features
    k: int                           # input features (reduction)
    pattern: str
    median_s: float
    iqr_s: float
    threads: int
    repeats: int
    cache: str                       # warm | cold
    machine: Machine
    versions: Mapping[str, str]
    dtype: str = "fp32"
    min_s: float = 0.0
    inner: int = 1
    density: float = 1.0
    storage_bytes: Mapping[str, int] = field(default_factory=dict)
    load_avg_1min: float = 0.0       # system load when measured: above usable_cpus, timings are contended
    p10_s: float = 0.0               # low quantile of the samples
    p90_s: float = 0.0               # high end of the noise band [min_s, p90_s]
    noise: float = 0.0               # iqr_s / median_s
    cpu_share: float = 1.0           # CPU time the process got / (wall x threads) while timing this case
    steal_fraction: float = 0.0      # CPU time stolen by the hypervisor meanwhile (/proc/stat)
    noisy: str = ""                  # why this timing is less precise than asked ("" when it is not)


# ----------------------------------------------------------------------------- timing


def summarize(samples_s: list[float], *, inner: int, total_s: float) -> TimingStats:
    """Median, IQR (linear-interpolated quartiles) and min of per-call sample times."""
    if not samples_s:
        raise MeasurementError("no timing samples were taken; raise min_time_s or min_repeats")
    arr = np.asarray(samples_s, dtype=np.float64)
    q10, q25, q50, q75, q90 = np.percentile(arr, [10.0, 25.0, 50.0, 75.0, 90.0])
    return TimingStats(samples_s=tuple(float(s) for s in arr), median_s=float(q50),
                       iqr_s=float(q75 - q25), min_s=float(arr.min()), repeats=len(samples_s),
                       inner=inner, total_s=float(total_s), p10_s=float(q10), p90_s=float(q90))


def choose_inner(call_s: float, *, min_sample_s: float) -> int:
    """Calls per sample so one sample lasts at least min_sample_s (1 for slow calls)."""
    if call_s <= 0.0:
        return 1000
    return max(1, min(1000, int(np.ceil(min_sample_s / call_s - 1e-9))))


def time_callable(fn: Callable[[], object], *, min_time_s: float = 0.2, warmup: int = 3,
                  min_repeats: int = 5, max_repeats: int = 10_000, min_sample_s: float = 2e-5,
                  before_each: Callable[[], object] | None = None,
                  clock: Clock = time.perf_counter) -> TimingStats:
    """Warm up, then take samples until `min_time_s` of timed calls and `min_repeats` samples.

    `before_each` (e.g. a cache flush) runs untimed before every sample and forces inner = 1.
    """
    return time_interleaved({"fn": fn}, min_time_s=min_time_s, warmup=warmup, min_repeats=min_repeats,
                            max_repeats=max_repeats, min_sample_s=min_sample_s, before_each=before_each,
                            clock=clock)["fn"]


def time_interleaved(fns: Mapping[str, Callable[[], object]], *, min_time_s: float = 0.2, warmup: int = 3,
                     min_repeats: int = 5, max_repeats: int = 10_000, min_sample_s: float = 2e-5,
                     before_each: Callable[[], object] | None = None,
                     clock: Clock = time.perf_counter) -> dict[str, TimingStats]:
    """`time_callable` for several functions at once, their samples interleaved (round robin, the
    starting function rotating each round), so a busy spell slows them all alike instead of one."""
    if warmup < 1 or min_repeats < 1 or max_repeats < min_repeats:
        raise MeasurementError("need warmup >= 1 and 1 <= min_repeats <= max_repeats")
    inner = {name: _warm_up(fn, warmup=warmup, min_sample_s=min_sample_s, flush=before_each is not None,
                            clock=clock) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    totals = dict.fromkeys(fns, 0.0)

    def more(name: str) -> bool:
        n = len(samples[name])
        return n < min_repeats or (totals[name] < min_time_s and n < max_repeats)

    names = list(fns)
    for round_i in itertools.count():
        order = [n for n in names[round_i % len(names):] + names[:round_i % len(names)] if more(n)]
        if not order:
            break
        for name in order:
            if before_each is not None:
                before_each()
            fn, reps = fns[name], inner[name]
            t0 = clock()
            for _ in range(reps):
                fn()
            elapsed = clock() - t0
            samples[name].append(elapsed / reps)
            totals[name] += elapsed
    return {name: summarize(samples[name], inner=inner[name], total_s=totals[name]) for name in fns}


def _warm_up(fn: Callable[[], object], *, warmup: int, min_sample_s: float, flush: bool, clock: Clock) -> int:
    """Run `fn` `warmup` times (the last one timed); the calls per sample it needs."""
    for _ in range(warmup - 1):
        fn()
    t0 = clock()
    fn()
    call_s = clock() - t0
    return 1 if flush else choose_inner(call_s, min_sample_s=min_sample_s)


# ----------------------------------------------------------------------------- threads, caches


@contextmanager
def thread_count(threads: int | None) -> Iterator[int]:
    """Set torch and numba thread counts for the block, restore them afterwards."""
    old_torch, old_numba = torch.get_num_threads(), numba.get_num_threads()
    if threads is None:
        yield old_torch
        return
    limit = int(numba.config.NUMBA_NUM_THREADS)
    if not 1 <= threads <= limit:
        raise MeasurementError(f"threads={threads} is outside 1..{limit} (the CPUs numba may use here); "
                               "pass --threads within that range")
    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    try:
        yield threads
    finally:
        torch.set_num_threads(old_torch)
        numba.set_num_threads(old_numba)


def flush_bytes_for(machine: Machine) -> int:
    """Flush buffer size: twice the largest cache, capped at FLUSH_CAP_BYTES (at least 8 MiB)."""
    largest = max(machine.cache_bytes.values(), default=0)
    return int(min(FLUSH_CAP_BYTES, max(8 * 2**20, 2 * largest)))


def make_flusher(nbytes: int) -> Callable[[], None]:
    """A callable that reads and writes `nbytes` of memory, evicting the operands from the caches."""
    buffer = np.zeros(max(1, nbytes // 8), dtype=np.float64)

    def flush() -> None:
        np.add(buffer, 1.0, out=buffer)

    return flush


# ----------------------------------------------------------------------------- machine, versions


_SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
               "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


@lru_cache(maxsize=1)
def machine_info() -> Machine:
    """This machine, from /proc/cpuinfo and sysfs (via simsparse.hostinfo); cached per process."""
    path = Path(hostinfo.PROC_CPUINFO)
    info = hostinfo.parse_cpuinfo(path.read_text() if path.exists() else "")
    caches = {f"L{c.level}{'d' if c.type == 'Data' else ''}": c.size_bytes for c in hostinfo.read_caches()}
    model = info.model_name if info.model_name != "unknown cpu" else (platform.processor() or "unknown cpu")
    return Machine(cpu_model=model, usable_cpus=hostinfo.available_cores(),
                   isa=hostinfo.simd_from_flags(info.flags, info.model_name)["isa"] if info.flags else "other",
                   flags=tuple(f for f in _SIMD_FLAGS if f in info.flags), cache_bytes=caches,
                   clock_hz=info.mhz * 1e6, system=f"{platform.system()} {platform.machine()}")


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "numba": numba.__version__, "scipy": scipy.__version__}
