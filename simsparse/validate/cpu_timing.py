"""Timing CPU kernels for calibration and validation: interleaved, shuffled passes.

What "measured" means for a point: the fastest sample of a kernel (each sample is a few calls).
On a machine shared with other processes the median carries their interference (whole scheduler
time slices on a busy core); the minimum is the kernel's own time, which is what the model
predicts. The median, the IQR and each pass's minimum stay in every point, so the report can
show how noisy the measurement itself was (stats.repeatability).
"""

from __future__ import annotations

import os
import sys
from typing import Iterable, Sequence

import numpy as np

from simsparse.hostinfo import available_cores
from simsparse.kernels.measure import measure_cases
from simsparse.kernels.suites import Case
from simsparse.validate.records import MeasuredPoint

STATISTICS = ("min", "median")


def cpu_point(*, kernel: str, m: int, n: int, k: int, pattern: str, threads: int, measured_s: float | None = None,
              machine: str = "", arch: str = "cpu_host", median_s: float | None = None, min_s: float | None = None,
              iqr_s: float | None = None, pass_mins_s: tuple[float, ...] = ()) -> MeasuredPoint:
    """One fp32 CPU kernel point (id "kernel MxNxK pattern tT"), not yet predicted."""
    return MeasuredPoint(id=f"{kernel} {m}x{n}x{k} {pattern} t{threads}", source="cpu", device=machine, arch=arch,
                         dtype="fp32", kernel=kernel, m=m, n=n, k=k, pattern=pattern, threads=threads,
                         software="kernel", measured_s=measured_s, median_s=median_s, min_s=min_s, iqr_s=iqr_s,
                         pass_mins_s=pass_mins_s)


def measure_points(cases: Sequence[Case], *, threads: Iterable[int], min_time_s: float, progress: bool,
                   machine: str, arch: str = "cpu_host", statistic: str = "min", repeats: int = 3,
                   seed: int = 0) -> list[MeasuredPoint]:
    """Time every (case, kernel, thread count) in `repeats` interleaved passes, each pass in its
    own shuffled order (the machine's speed drifts over minutes: a slow spell then spreads over
    all kernels and batches instead of biasing a contiguous block of the suite). A point's
    measured time is the minimum over passes of each pass's minimum (or the median of the pass
    medians); its `pass_mins_s` keep each pass's minimum. Predictions are left empty."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    items = [(Case(m=c.m, n=c.n, k=c.k, pattern=c.pattern, kernels=(kname,)), int(t))
             for c in cases for kname in c.kernels for t in threads]
    rng = np.random.default_rng(seed)
    store: dict = {}
    runs: dict[tuple, list] = {}
    for pass_i in range(max(1, repeats)):
        order = rng.permutation(len(items))
        i = 0
        while i < len(order):            # consecutive items at one thread count share one harness call
            t = items[order[i]][1]
            j = i
            while j < len(order) and items[order[j]][1] == t:
                j += 1
            results, _ = measure_cases([items[o][0] for o in order[i:j]], threads=t, cache="warm",
                                       min_time_s=min_time_s, progress=False, skip_unsuited=True, store=store)
            for r in results:
                runs.setdefault((r.kernel, r.m, r.n, r.k, r.pattern, r.threads), []).append(r)
            i = j
        if progress:
            print(f"  pass {pass_i + 1}/{max(1, repeats)}: {len(items)} timings", file=sys.stderr, flush=True)
    return [_point(key, rs, statistic=statistic, machine=machine, arch=arch) for key, rs in runs.items()]


def _point(key: tuple, rs: list, *, statistic: str, machine: str, arch: str) -> MeasuredPoint:
    kernel, m, n, k, pattern, t = key
    mins, medians = [r.min_s for r in rs], [r.median_s for r in rs]
    median = float(np.median(medians))
    return cpu_point(kernel=kernel, m=m, n=n, k=k, pattern=pattern, threads=t, machine=machine, arch=arch,
                     measured_s=min(mins) if statistic == "min" else median, median_s=median, min_s=min(mins),
                     iqr_s=float(np.median([r.iqr_s for r in rs])), pass_mins_s=tuple(float(v) for v in mins))


def thread_counts() -> tuple[int, ...]:
    """1 and all usable cores (what calibration and validation measure by default)."""
    cores = available_cores()
    return (1,) if cores <= 1 else (1, cores)


def load_note(threads: Sequence[int]) -> tuple[str, ...]:
    """A warning when other processes keep the cores busy (multi-thread timings then include
    their time slices; single-thread minima are much less affected)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return ()
    cores = available_cores()
    if load > 0.75 * cores and max(threads) > 1:
        return (f"machine busy: load average {load:.1f} on {cores} cores; timings at {max(threads)} threads "
                "include other processes' time slices",)
    return ()
