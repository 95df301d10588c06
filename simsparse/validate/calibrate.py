"""`simsparse calibrate --device cpu`: fit the CPU model's few per-kernel parameters on this machine.

A fit, not a validation, but on the same records and statistics: the calibration suite
(`cpu_calibration`, registered in simsparse.kernels.suites.SUITES) is timed with the kernels'
own harness at 1 and all usable threads (cpu_timing); then, kernel by kernel,
scipy.optimize.least_squares fits overhead_s, parallel_overhead_s, compute_eff and bw_eff
(archs/cpu_spec.py) on log(predicted / measured) with a soft-L1 loss (a few points disturbed by
other processes do not drag the fit). The result is stored per machine as JSON in
`${XDG_CACHE_HOME:-~/.cache}/simsparse/cpu_calibration_<machine>.json`; `cpu_host` uses it from
then on. The shapes, sparsities and batches differ from the validation suite (validate/cpu.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
from scipy.optimize import least_squares

from simsparse import hostinfo
from simsparse.archs.cpu_host import host_spec_data, store_calibration
from simsparse.archs.cpu_simd import CpuSimdModel
from simsparse.archs.cpu_cost import latency_breakdown
from simsparse.archs.cpu_spec import PARAM_RANGES, KernelParams, with_threads
from simsparse.errors import MeasurementError
from simsparse.fileio import check_writable_folder
from simsparse.kernels.suites import SUITES, Case, fan_in_for, suite_cases
from simsparse.masks.formats import FORMATS
from simsparse.masks.patterns import analyze
from simsparse.masks.synthetic import make_matrix
from simsparse.records import Gemm, LayerWork
from simsparse.validate import stats
from simsparse.validate.cpu_timing import load_note, measure_points, thread_counts
from simsparse.validate.records import MeasuredPoint, Summary

PARAMS = ("overhead_s", "parallel_overhead_s", "compute_eff", "bw_eff", "batched_eff", "parallel_eff")
# shrunk's GEMM runs on dense's parameters; only its own call overhead (index ops) is fitted
FITTED = {"shrunk": ("overhead_s", "parallel_overhead_s")}
FIT_MIN = {"parallel_eff": 0.25}     # 2 threads never run slower than 1 by the model
CAL_SHAPES = ((2048, 1024), (1024, 2048))
CAL_SPARSITIES = (0.85, 0.95, 0.70)   # 0.70: stored values outgrow L2 (the LLC regime)
CAL_BATCHES = (1, 2, 8, 32, 128)


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
class CalibrationResult:
    machine: str
    kernels: dict                     # kernel -> {param: value}
    points: tuple[MeasuredPoint, ...]  # in-sample points, predicted with the fitted parameters
    summary: Summary                  # in-sample: mape is the fit's MAPE; noise the measurement's own
    path: str = ""
    threads: tuple[int, ...] = ()
    elapsed_s: float = 0.0
    notes: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- predicting


class Predictor:
    """Plans each point once (per thread count), then re-times the plan for any kernel parameters."""

    def __init__(self, model: CpuSimdModel) -> None:
        self.model = model
        self._plans: dict = {}
        self._masks: dict = {}

    def plan(self, p: MeasuredPoint):
        key = (p.kernel, p.m, p.n, p.k, p.pattern, p.threads)
        if key not in self._plans:
            mkey = (p.n, p.k, p.pattern)
            if mkey not in self._masks:
                mask = make_matrix(p.n, p.k, p.pattern, seed=0)      # the harness's mask (same seed)
                self._masks[mkey] = (mask, analyze(mask))
            mask, pattern = self._masks[mkey]
            work = LayerWork(name=f"{p.n}x{p.k}", kind="gemm", op_kind="linear",
                             gemm=Gemm(m=p.m, n=p.n, k=p.k, dtype="fp32"), mask=mask, pattern=pattern,
                             dtype="fp32")
            model = type(self.model)(name=self.model.name, spec=with_threads(self.model.spec, p.threads),
                                     source=self.model.source)
            self._plans[key] = (model.plan(work, kernel=p.kernel), model.spec)
        return self._plans[key]

    def predict_s(self, p: MeasuredPoint, params: dict | None = None) -> float:
        plan, spec = self.plan(p)
        if params is not None:
            spec = replace(spec, kernels={**spec.kernels, **params})
        return latency_breakdown(plan.payload, spec).latency_s


def predicted(points: Sequence[MeasuredPoint], predictor: Predictor, params: dict | None = None) -> list[MeasuredPoint]:
    """The points with `predicted_s` filled in by `predictor` (with `params` if given)."""
    return [replace(p, predicted_s=predictor.predict_s(p, params)) for p in points]


# ----------------------------------------------------------------------------- fitting


def _to_params(theta: np.ndarray) -> KernelParams:
    return KernelParams(**{name: float(np.exp(v)) for name, v in zip(PARAMS, theta)})


def fit_kernel(predictor: Predictor, kernel: str, points: Sequence[MeasuredPoint],
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

    fit_ = least_squares(residuals, theta0, bounds=(lo, hi), loss="soft_l1", f_scale=0.1, max_nfev=400)
    return _to_params(fit_.x)


def fit(points: Sequence[MeasuredPoint], model: CpuSimdModel) -> tuple[dict[str, KernelParams], list[MeasuredPoint]]:
    """Fitted parameters per kernel present in `points`, and the points re-predicted with them."""
    predictor = Predictor(model)
    fitted: dict[str, KernelParams] = {}
    for kernel in FORMATS:             # dense comes first: shrunk's GEMM phases use its parameters
        pts = [p for p in points if p.kernel == kernel and p.measured_s and p.measured_s > 0]
        if pts:
            fitted[kernel] = fit_kernel(predictor, kernel, pts, fixed=dict(fitted))
    return fitted, predicted(points, predictor, fitted)


def params_dict(kernels: dict[str, KernelParams]) -> dict[str, dict[str, float]]:
    return {k: {n: getattr(v, n) for n in PARAMS} for k, v in kernels.items()}


def store(machine: str, kernels: dict[str, KernelParams], *, points: Sequence[MeasuredPoint], suite: str,
          threads: Sequence[int]) -> str:
    fit_mape = stats.summarize(points, metric="time").mape if points else None
    return store_calibration(machine, {"suite": suite, "threads": list(threads),
                                       "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "n": len(points),
                                       "fit_mape": fit_mape, "kernels": params_dict(kernels)})


def uncalibrated_host_model(host: hostinfo.Host | None = None) -> CpuSimdModel:
    """cpu_host with the documented default kernel parameters (what a fit starts from, never a
    previous fit)."""
    data = host_spec_data(host=host or hostinfo.detect())
    data["software"]["kernels"] = {}
    return CpuSimdModel.from_data(data, source="<detected cpu_host>")


def run(*, device: str = "cpu", suite: str = "cpu_calibration", threads: Sequence[int] | None = None,
        min_time_s: float = 0.08, progress: bool = False, save: bool = True, repeats: int = 5) -> CalibrationResult:
    """Measure `suite` here, fit the per-kernel parameters, store them for `cpu_host`."""
    if device != "cpu":
        raise MeasurementError(f"calibrate supports --device cpu only (got {device!r}); the GPU models "
                               "are checked with `simsparse validate --device published`")
    if save:  # fail now, not after minutes of measuring, when the fit could not be stored
        check_writable_folder(hostinfo.cache_dir(), what="calibration cache")
    t0 = time.perf_counter()
    host = hostinfo.detect()
    model = uncalibrated_host_model(host)
    threads = tuple(threads) if threads else thread_counts()
    notes = load_note(threads)
    points = measure_points(suite_cases(suite), threads=threads, min_time_s=min_time_s, progress=progress,
                            repeats=repeats, machine=host.key)
    if notes:   # a busy machine: multi-thread timings measure the other processes, not the kernels
        notes += ("multi-thread points left out of the fit; parallel_overhead_s keeps its default",)
        points = [p for p in points if p.threads == 1]
    fitted, points = fit(points, model)
    path = store(host.key, fitted, points=points, suite=suite, threads=threads) if save else ""
    return CalibrationResult(machine=host.key, kernels=params_dict(fitted), points=tuple(points),
                             summary=stats.summarize(points, metric="time"), path=path, threads=threads,
                             elapsed_s=time.perf_counter() - t0, notes=notes)
