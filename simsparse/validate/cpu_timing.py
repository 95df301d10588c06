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
from typing import Any, Iterable, Sequence

import numpy as np

from simsparse.errors import MeasurementError
from simsparse.hostinfo import available_cores
from simsparse.kernels.contention import DEFAULT_MAX_NOISE
from simsparse.kernels.measure import measure_cases
from simsparse.kernels.suites import Case
from simsparse.validate.records import MeasuredPoint

STATISTICS = ("min", "median")
MAX_NOISY_SHARE = 0.05    # validate refuses when more of its points than this were noisy in every pass


def cpu_point(*, kernel: str, m: int, n: int, k: int, pattern: str, threads: int, measured_s: float | None = None,
              machine: str = "", arch: str = "cpu_host", **measurement: Any) -> MeasuredPoint:
    """One fp32 CPU kernel point (id "kernel MxNxK pattern tT"), not yet predicted;
    `measurement`: the MeasuredPoint fields that describe the timing (median_s, min_s, iqr_s, pass_mins_s, p10_s,
    p90_s, noise, cpu_share, steal_fraction, noisy)."""
    return MeasuredPoint(id=f"{kernel} {m}x{n}x{k} {pattern} t{threads}", source="cpu", device=machine, arch=arch,
                         dtype="fp32", kernel=kernel, m=m, n=n, k=k, pattern=pattern, threads=threads,
                         software="kernel", measured_s=measured_s, **measurement)


def measure_points(cases: Sequence[Case], *, threads: Iterable[int], min_time_s: float, progress: bool,
                   machine: str, arch: str = "cpu_host", statistic: str = "min", repeats: int = 3,
                   seed: int = 0, max_noise: float = DEFAULT_MAX_NOISE) -> list[MeasuredPoint]:
    """Time every (case, kernel, thread count) in `repeats` interleaved passes, each pass in its
    own shuffled order (the machine's speed drifts over minutes: a slow spell then spreads over
    all kernels and batches instead of biasing a contiguous block of the suite). A point's
    measured time is the minimum over passes of each pass's minimum (or the median of the pass
    medians); its `pass_mins_s` keep each pass's minimum, and the load each pass ran under
    (harness `Measurement`) is aggregated as MeasuredPoint documents (`noisy` against `max_noise`).
    Predictions are left empty."""
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
                                       min_time_s=min_time_s, progress=False, skip_unsuited=True, store=store,
                                       max_noise=max_noise)
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
                     iqr_s=float(np.median([r.iqr_s for r in rs])), pass_mins_s=tuple(float(v) for v in mins),
                     p10_s=float(np.median([r.p10_s for r in rs])), p90_s=float(np.median([r.p90_s for r in rs])),
                     noise=float(np.median([r.noise for r in rs])), cpu_share=float(min(r.cpu_share for r in rs)),
                     steal_fraction=float(max(r.steal_fraction for r in rs)),
                     noisy="" if any(not r.noisy for r in rs) else f"every pass: {rs[0].noisy}")


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


def noise_verdict(points: Sequence[MeasuredPoint], *, allow_noisy: bool) -> tuple[str, ...]:
    """Refuse (MeasurementError, one line) when more than MAX_NOISY_SHARE of `points` were noisy in
    every pass, unless `allow_noisy`; otherwise the note that says how many were. A point measured
    cleanly in one pass is not noisy: its fastest sample comes from a quiet moment."""
    noisy = [p for p in points if p.noisy]
    if not noisy:
        return ()
    if len(noisy) > MAX_NOISY_SHARE * len(points) and not allow_noisy:
        raise MeasurementError(f"the machine is too busy to validate on: {len(noisy)} of {len(points)} points were "
                               f"noisy in every pass ({noisy[0].id}: {noisy[0].noisy.removeprefix('every pass: ')}); "
                               "rerun when it is quieter, or pass --allow-noisy to report them with their noise")
    return (f"{len(noisy)} of {len(points)} points were noisy in every pass (see `noisy`): their times include "
            "other processes' time slices",)
