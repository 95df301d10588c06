"""`simsparse calibrate --device cpu`: fit the CPU model's few per-kernel parameters on this machine.

The calibration suite (`cpu_calibration`, registered in simsparse.kernels.suites.SUITES) is timed
with the kernels' own harness at 1 and all usable threads; then, kernel by kernel,
scipy.optimize.least_squares fits overhead_s, parallel_overhead_s, compute_eff and bw_eff
(archs/cpu_spec.py) on log(predicted / measured) with a soft-L1 loss (a few points disturbed by
other processes do not drag the fit). The result is stored per machine as JSON in
`${XDG_CACHE_HOME:-~/.cache}/simsparse/cpu_calibration_<machine>.json`; `cpu_host` uses it from
then on. The shapes, sparsities and batches differ from the validation suite (validate_cpu.py).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import least_squares

from simsparse.archs.cpu_spec import KERNEL_NAMES, PARAM_RANGES, KernelParams
from simsparse.errors import MeasurementError
from simsparse.fileio import check_writable_folder
from simsparse.kernels.suites import SUITES, Case, fan_in_for
from simsparse.records import Gemm, LayerWork

PARAMS = ("overhead_s", "parallel_overhead_s", "compute_eff", "bw_eff", "batched_eff", "parallel_eff")
# shrunk's GEMM runs on dense's parameters; only its own call overhead (index ops) is fitted
FITTED = {"shrunk": ("overhead_s", "parallel_overhead_s")}
FIT_MIN = {"parallel_eff": 0.25}     # 2 threads never run slower than 1 by the model
CAL_SHAPES = ((2048, 1024), (1024, 2048))
CAL_SPARSITIES = (0.85, 0.95, 0.70)   # 0.70: stored values outgrow L2 (the LLC regime)
CAL_BATCHES = (1, 2, 8, 32, 128)
# What "measured" means: the fastest sample of a kernel (each sample is a few calls). On a machine
# shared with other processes the median carries their interference (whole scheduler time slices
# on a busy core); the minimum is the kernel's own time, which is what the model predicts.
# The median is kept beside it in every point.
STATISTIC = "min"


@SUITES.register("cpu_calibration")
def calibration_suite() -> tuple[Case, ...]:
    """Fitting points: 2 shapes x 3 fan-in sparsities x 5 batches (dense, csr, condensed), plus
    nm on 1:4 (1024x1024, in L2) and 2:8 (2048x2048, values in LLC: two slot counts, so the call
    overhead and the per-slot cost separate) and shrunk on channel-removed masks (disjoint from
    `cpu_validation`)."""
    cases = []
    for n, k in CAL_SHAPES:
        for s in CAL_SPARSITIES:
            kernels = ("dense", "csr", "condensed") if s == CAL_SPARSITIES[0] else ("csr", "condensed")
            cases += [Case(m=b, n=n, k=k, pattern=f"fanin={fan_in_for(k, s)}", kernels=kernels)
                      for b in CAL_BATCHES]
    cases += [Case(m=b, n=s, k=s, pattern=p, kernels=("nm",)) for s, p in ((2048, "2:8"), (1024, "1:4"))
              for b in (1, 8, 128)]
    cases += [Case(m=b, n=2048, k=1024, pattern="channels=0.4", kernels=("shrunk",)) for b in (1, 8, 128)]
    return tuple(cases)


@dataclass(frozen=True)
class Point:
    """One measured kernel call and the model's prediction for it."""

    kernel: str
    m: int
    n: int
    k: int
    pattern: str
    threads: int
    measured_s: float                 # the statistic compared (see STATISTIC)
    iqr_s: float
    predicted_s: float = 0.0
    median_s: float = 0.0
    min_s: float = 0.0
    spread: float = 0.0               # slowest / fastest pass minimum - 1 (the measurement's repeatability)
    pass_mins_s: tuple[float, ...] = ()


@dataclass(frozen=True)
class CalibrationResult:
    machine: str
    kernels: dict                     # kernel -> {param: value}
    points: tuple[Point, ...]         # in-sample points, predicted with the fitted parameters
    fit_mape: float
    path: str = ""
    threads: tuple[int, ...] = ()
    elapsed_s: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)


# ----------------------------------------------------------------------------- measuring


def measure_points(cases: Sequence[Case], *, threads: Iterable[int], min_time_s: float,
                   progress: bool, statistic: str = STATISTIC, repeats: int = 3, seed: int = 0) -> list[Point]:
    """Time every (case, kernel, thread count) in `repeats` interleaved passes, each pass in its
    own shuffled order (the machine's speed drifts over minutes: a slow spell then spreads over
    all kernels and batches instead of biasing a contiguous block of the suite). A point's
    measured time is the minimum over passes of each pass's minimum (or the median of the pass
    medians); `spread` = slowest / fastest pass minimum - 1 is the measurement's own repeatability."""
    from simsparse.kernels.measure import measure_cases

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
    return [_point(key, rs, statistic) for key, rs in runs.items()]


def _point(key: tuple, rs: list, statistic: str) -> Point:
    kernel, m, n, k, pattern, t = key
    mins, medians = [r.min_s for r in rs], [r.median_s for r in rs]
    median = float(np.median(medians))
    return Point(kernel=kernel, m=m, n=n, k=k, pattern=pattern, threads=t,
                 measured_s=min(mins) if statistic == "min" else median,
                 iqr_s=float(np.median([r.iqr_s for r in rs])), median_s=median, min_s=min(mins),
                 spread=max(mins) / min(mins) - 1.0 if min(mins) > 0 else 0.0,
                 pass_mins_s=tuple(float(v) for v in mins))


def repeatability(points: Sequence[Point]) -> dict:
    """The measurement's own noise: pass-to-pass spread of the minima (median, p90) and the mean
    |error| a perfect model would show against a single pass (pass minimum vs the point's minimum)."""
    spreads = [p.spread for p in points if p.pass_mins_s]
    single = [v / p.measured_s - 1.0 for p in points if p.measured_s > 0 for v in p.pass_mins_s]
    if not spreads:
        return {"passes": 0}
    return {"passes": max(len(p.pass_mins_s) for p in points), "spread_median": float(np.median(spreads)),
            "spread_p90": float(np.percentile(spreads, 90)), "single_pass_ape": float(np.mean(single))}


def thread_counts() -> tuple[int, ...]:
    """1 and all usable cores (what calibration and validation measure by default)."""
    from simsparse.hostinfo import available_cores

    cores = available_cores()
    return (1,) if cores <= 1 else (1, cores)


def load_note(threads: Sequence[int]) -> tuple[str, ...]:
    """A warning when other processes keep the cores busy (multi-thread timings then include
    their time slices; single-thread minima are much less affected)."""
    import os

    from simsparse.hostinfo import available_cores

    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover
        return ()
    cores = available_cores()
    if load > 0.75 * cores and max(threads) > 1:
        return (f"machine busy: load average {load:.1f} on {cores} cores; timings at {max(threads)} threads "
                "include other processes' time slices",)
    return ()


# ----------------------------------------------------------------------------- predicting


class Predictor:
    """Plans each point once (per thread count), then re-times the plan for any kernel parameters."""

    def __init__(self, model) -> None:
        self.model = model
        self._plans: dict = {}
        self._masks: dict = {}

    def plan(self, p: Point):
        from simsparse.archs.cpu_spec import with_threads
        from simsparse.masks.patterns import analyze
        from simsparse.masks.synthetic import make_matrix

        key = (p.kernel, p.m, p.n, p.k, p.pattern, p.threads)
        if key not in self._plans:
            mkey = (p.n, p.k, p.pattern)
            if mkey not in self._masks:
                mask = make_matrix(p.n, p.k, p.pattern, seed=0)
                self._masks[mkey] = (mask, analyze(mask))
            mask, pattern = self._masks[mkey]
            work = LayerWork(name=f"{p.n}x{p.k}", kind="gemm", op_kind="linear",
                             gemm=Gemm(m=p.m, n=p.n, k=p.k, dtype="fp32"), mask=mask, pattern=pattern,
                             dtype="fp32")
            model = type(self.model)(name=self.model.name, spec=with_threads(self.model.spec, p.threads),
                                     source=self.model.source)
            self._plans[key] = (model.plan(work, kernel=p.kernel), model.spec)
        return self._plans[key]

    def predict_s(self, p: Point, params: dict | None = None) -> float:
        from simsparse.engines.cpu_analytic import latency_breakdown

        plan, spec = self.plan(p)
        if params is not None:
            spec = replace(spec, kernels={**spec.kernels, **params})
        return latency_breakdown(plan, spec).latency_s


# ----------------------------------------------------------------------------- fitting


def _to_params(theta: np.ndarray) -> KernelParams:
    return KernelParams(**{name: float(np.exp(v)) for name, v in zip(PARAMS, theta)})


def fit_kernel(predictor: Predictor, kernel: str, points: Sequence[Point],
               fixed: dict[str, KernelParams] | None = None) -> KernelParams:
    """least_squares on log(pred/measured) for one kernel's parameters (log-space, bounded);
    `fixed` holds already fitted kernels whose parameters some phases use (shrunk's GEMM = dense)."""
    start = predictor.model.spec.kernels[kernel]
    if start.parallel_eff <= 0:         # fit thread scaling from the spec's value
        start = replace(start, parallel_eff=predictor.model.spec.parallel_eff)
    theta0 = np.log([max(getattr(start, n), PARAM_RANGES[n][0] + 1e-9, 1e-8) for n in PARAMS])
    lo = np.log([max(PARAM_RANGES[n][0], FIT_MIN.get(n, 0.0), 1e-8) for n in PARAMS])
    hi = np.log([PARAM_RANGES[n][1] for n in PARAMS])
    theta0 = np.clip(theta0, lo + 1e-6, hi - 1e-6)
    measured = np.log([p.measured_s for p in points])
    frozen = [n for n in PARAMS if n not in FITTED.get(kernel, PARAMS)]
    if not any(p.threads > 1 for p in points):     # nothing to fit the fork/join cost or scaling on
        frozen += ["parallel_overhead_s", "parallel_eff"]
    frozen.append("batched_eff")       # the loop models carry the batch regimes (cpu_loops.py); no fudge
    for name in frozen:
        i = PARAMS.index(name)
        lo[i], hi[i] = theta0[i] - 1e-9, theta0[i] + 1e-9

    def residuals(theta):
        params = {**(fixed or {}), kernel: _to_params(theta)}
        return np.log([predictor.predict_s(p, params) for p in points]) - measured

    fit = least_squares(residuals, theta0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1, max_nfev=400)
    return _to_params(fit.x)


def fit(points: Sequence[Point], model) -> tuple[dict[str, KernelParams], list[Point]]:
    """Fitted parameters per kernel present in `points`, and the points re-predicted with them."""
    predictor = Predictor(model)
    fitted: dict[str, KernelParams] = {}
    for kernel in KERNEL_NAMES:        # dense comes first: shrunk's GEMM phases use its parameters
        pts = [p for p in points if p.kernel == kernel and p.measured_s > 0]
        if pts:
            fitted[kernel] = fit_kernel(predictor, kernel, pts, fixed=dict(fitted))
    out = [replace(p, predicted_s=predictor.predict_s(p, fitted)) for p in points]
    return fitted, out


def mape(points: Sequence[Point]) -> float:
    errs = [abs(p.predicted_s - p.measured_s) / p.measured_s for p in points if p.measured_s > 0]
    return float(np.mean(errs)) if errs else float("nan")


def store(machine: str, kernels: dict[str, KernelParams], *, points: Sequence[Point], suite: str,
          threads: Sequence[int]) -> str:
    from simsparse.archs.cpu_host import store_calibration

    return store_calibration(machine, {"suite": suite, "threads": list(threads),
                                       "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "n": len(points),
                                       "fit_mape": mape(points),
                                       "kernels": {k: {n: getattr(v, n) for n in PARAMS} for k, v in kernels.items()}})


def uncalibrated_host_model(host=None):
    """cpu_host with the documented default kernel parameters (what a fit starts from, never a
    previous fit)."""
    from simsparse import hostinfo
    from simsparse.archs.cpu_host import host_spec_data
    from simsparse.archs.cpu_simd import CpuSimdModel

    data = host_spec_data(host=host or hostinfo.detect())
    data["software"]["kernels"] = {}
    return CpuSimdModel.from_data(data, source="<detected cpu_host>")


def run(*, device: str = "cpu", suite: str = "cpu_calibration", threads: Sequence[int] | None = None,
        min_time_s: float = 0.08, progress: bool = False, save: bool = True, repeats: int = 5) -> CalibrationResult:
    """Measure `suite` here, fit the per-kernel parameters, store them for `cpu_host`."""
    if device != "cpu":
        raise MeasurementError(f"calibrate supports --device cpu only (got {device!r}); the GPU models "
                               "are checked with `simsparse validate --device published`")
    from simsparse import hostinfo
    from simsparse.kernels.suites import suite_cases

    if save:  # fail now, not after minutes of measuring, when the fit could not be stored
        check_writable_folder(hostinfo.cache_dir(), what="calibration cache")
    t0 = time.perf_counter()
    host = hostinfo.detect()
    model = uncalibrated_host_model(host)
    threads = tuple(threads) if threads else thread_counts()
    notes = load_note(threads)
    points = measure_points(suite_cases(suite), threads=threads, min_time_s=min_time_s, progress=progress,
                            repeats=repeats)
    if notes:   # a busy machine: multi-thread timings measure the other processes, not the kernels
        notes += ("multi-thread points left out of the fit; parallel_overhead_s keeps its default",)
        points = [p for p in points if p.threads == 1]
    fitted, points = fit(points, model)
    path = store(host.key, fitted, points=points, suite=suite, threads=threads) if save else ""
    return CalibrationResult(machine=host.key, kernels={k: {n: getattr(v, n) for n in PARAMS}
                                                        for k, v in fitted.items()},
                             points=tuple(points), fit_mape=mape(points), path=path, threads=threads,
                             elapsed_s=time.perf_counter() - t0, notes=notes)


def to_dict(result: CalibrationResult) -> dict:
    return {"machine": result.machine, "path": result.path, "threads": list(result.threads),
            "kernels": result.kernels, "summary": {"fit_mape": result.fit_mape, "n": len(result.points),
                                                    "elapsed_s": result.elapsed_s},
            "notes": list(result.notes),
            "points": [p.__dict__ for p in result.points]}
