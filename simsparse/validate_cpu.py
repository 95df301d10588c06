"""`simsparse validate --device cpu`: the CPU model against kernels measured here, on points that
calibration never saw.

The validation suite (`cpu_validation`) uses other shapes, sparsities and batches than
`cpu_calibration`: the two ViT-B MLP GEMMs (768->3072, 3072->768) at 80/90/99 % constant fan-in,
batches 1, 4, 16, 64, 256, for dense, csr and condensed, plus nm (2:4, 1:8) on 1536x1536 and
shrunk on channel-removed masks. Reported: predicted vs measured per point, MAPE and Spearman
rank correlation (scipy.stats.spearmanr), and per shape the batch at which `condensed` stops
beating `dense`, predicted and measured. The model is `cpu_host` (with this machine's calibration
when `simsparse calibrate --device cpu` has run; the documented defaults otherwise).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
from scipy.stats import spearmanr

from simsparse.calibrate import Point, Predictor, mape, measure_points, thread_counts
from simsparse.kernels.suites import SUITES, Case, fan_in_for

VAL_SHAPES = ((3072, 768), (768, 3072))
VAL_SPARSITIES = (0.80, 0.90, 0.99)
VAL_BATCHES = (1, 4, 16, 64, 256)
CROSSOVER_SPARSITY = 0.90
CROSSOVER_SEARCH = tuple(range(1, 17)) + tuple(int(round(2 ** (e / 4))) for e in range(17, 37))


@SUITES.register("cpu_validation")
def validation_suite() -> tuple[Case, ...]:
    """Held-out points (see module doc); dense is timed once per shape (its time ignores the mask)."""
    cases = []
    for n, k in VAL_SHAPES:
        for s in VAL_SPARSITIES:
            kernels = ("dense", "csr", "condensed") if s == CROSSOVER_SPARSITY else ("csr", "condensed")
            cases += [Case(m=b, n=n, k=k, pattern=f"fanin={fan_in_for(k, s)}", kernels=kernels)
                      for b in VAL_BATCHES]
    cases += [Case(m=b, n=1536, k=1536, pattern=p, kernels=("nm",)) for p in ("2:4", "1:8") for b in (1, 16, 256)]
    cases += [Case(m=b, n=3072, k=768, pattern=p, kernels=("shrunk",))
              for p in ("channels=0.5", "channels=0.25") for b in (1, 16, 256)]
    return tuple(cases)


@dataclass(frozen=True)
class Crossover:
    n: int
    k: int
    threads: int
    predicted_batch: float       # inf: condensed never loses in the search range
    measured_batch: float        # interpolated between measured batches; inf: never lost
    within_2x: bool


@dataclass(frozen=True)
class ValidationResult:
    machine: str
    calibration: str                 # the calibration file used ("" = documented defaults)
    points: tuple[Point, ...]
    summary: dict                    # mape, spearman, n (+ per kernel / thread count)
    crossovers: tuple[Crossover, ...]
    elapsed_s: float
    notes: tuple[str, ...] = field(default_factory=tuple)


# ----------------------------------------------------------------------------- statistics


def summarize(points: Sequence[Point]) -> dict:
    pred = np.array([p.predicted_s for p in points])
    meas = np.array([p.measured_s for p in points])
    varied = len(points) > 2 and np.ptp(pred) > 0 and np.ptp(meas) > 0
    rho = float(spearmanr(pred, meas).statistic) if varied else float("nan")
    out = {"mape": mape(points), "spearman": rho, "n": len(points),
           "median_ape": float(np.median(np.abs(pred - meas) / meas)) if len(points) else float("nan")}
    out["by_kernel"] = {k: {"mape": mape([p for p in points if p.kernel == k]),
                            "n": sum(p.kernel == k for p in points)}
                        for k in sorted({p.kernel for p in points})}
    out["by_threads"] = {str(t): {"mape": mape([p for p in points if p.threads == t]),
                                  "n": sum(p.threads == t for p in points)}
                         for t in sorted({p.threads for p in points})}
    return out


def measured_crossover(batches: Sequence[int], cond_s: Sequence[float], dense_s: Sequence[float]) -> float:
    """First batch where condensed is no faster than dense, log-interpolated between batches."""
    ratio = np.log(np.asarray(cond_s) / np.asarray(dense_s))
    if ratio[0] >= 0:
        return float(batches[0])
    for i in range(1, len(batches)):
        if ratio[i] >= 0:
            lo, hi = math.log(batches[i - 1]), math.log(batches[i])
            frac = -ratio[i - 1] / (ratio[i] - ratio[i - 1])
            return float(math.exp(lo + frac * (hi - lo)))
    return float("inf")


def predicted_crossover(predictor: Predictor, *, n: int, k: int, pattern: str, threads: int) -> float:
    def ratio(b: int) -> float:
        mk = dict(m=b, n=n, k=k, pattern=pattern, threads=threads, measured_s=1.0, iqr_s=0.0)
        return math.log(predictor.predict_s(Point(kernel="condensed", **mk))
                        / predictor.predict_s(Point(kernel="dense", **mk)))

    prev_b, prev_r = None, None
    for b in CROSSOVER_SEARCH:
        r = ratio(b)
        if r >= 0:
            if prev_b is None:
                return float(b)
            frac = -prev_r / (r - prev_r)
            return float(math.exp(math.log(prev_b) + frac * (math.log(b) - math.log(prev_b))))
        prev_b, prev_r = b, r
    return float("inf")


def _within_2x(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return math.isinf(a) and math.isinf(b)
    return max(a, b) / min(a, b) <= 2.0


def crossovers(points: Sequence[Point], predictor: Predictor) -> list[Crossover]:
    out = []
    for n, k in VAL_SHAPES:
        pattern = f"fanin={fan_in_for(k, CROSSOVER_SPARSITY)}"
        for t in sorted({p.threads for p in points}):
            rows = {(p.kernel, p.m): p.measured_s for p in points
                    if (p.n, p.k, p.pattern, p.threads) == (n, k, pattern, t)}
            batches = [b for b in VAL_BATCHES if ("condensed", b) in rows and ("dense", b) in rows]
            if len(batches) < 2:
                continue
            meas = measured_crossover(batches, [rows[("condensed", b)] for b in batches],
                                      [rows[("dense", b)] for b in batches])
            pred = predicted_crossover(predictor, n=n, k=k, pattern=pattern, threads=t)
            out.append(Crossover(n=n, k=k, threads=t, predicted_batch=pred, measured_batch=meas,
                                 within_2x=_within_2x(pred, meas)))
    return out


# ----------------------------------------------------------------------------- running


def evaluate(points: Sequence[Point], model) -> tuple[list[Point], dict, list[Crossover]]:
    """Predict `points` with `model`, summarise, find the crossovers (no measuring)."""
    predictor = Predictor(model)
    pts = [replace(p, predicted_s=predictor.predict_s(p)) for p in points]
    return pts, summarize(pts), crossovers(pts, predictor)


def run(*, progress: bool = False, threads: Sequence[int] | None = None, min_time_s: float = 0.1,
        suite: str = "cpu_validation", arch: str = "cpu_host") -> ValidationResult:
    """Measure the validation suite here and compare with the model's predictions."""
    from simsparse import hostinfo
    from simsparse.archs.cpu_simd import cpu_model
    from simsparse.kernels.suites import suite_cases

    t0 = time.perf_counter()
    model = cpu_model(arch)
    threads = tuple(threads) if threads else thread_counts()
    points = measure_points(suite_cases(suite), threads=threads, min_time_s=min_time_s, progress=progress)
    pts, summary, cross = evaluate(points, model)
    notes = () if model.spec.calibration else (
        "no calibration for this machine: documented default kernel parameters "
        "(run `simsparse calibrate --device cpu` first)",)
    return ValidationResult(machine=hostinfo.detect().key, calibration=model.spec.calibration, points=tuple(pts),
                            summary=summary, crossovers=tuple(cross), elapsed_s=time.perf_counter() - t0,
                            notes=notes)


def to_dict(result: ValidationResult) -> dict:
    """JSON per DESIGN.md §4: `points` (predicted and measured) and `summary` {mape, spearman, n}."""
    def num(x: float):
        return None if isinstance(x, float) and (math.isinf(x) or math.isnan(x)) else x

    return {"device": "cpu", "machine": result.machine, "calibration": result.calibration,
            "points": [{**p.__dict__, "error": (p.predicted_s - p.measured_s) / p.measured_s}
                       for p in result.points],
            "summary": result.summary,
            "crossover": [{**c.__dict__, "predicted_batch": num(c.predicted_batch),
                           "measured_batch": num(c.measured_batch)} for c in result.crossovers],
            "elapsed_s": result.elapsed_s, "notes": list(result.notes)}
