"""`simsparse validate --device cpu`: the CPU model against kernels measured here, on points that
calibration never saw.

The validation suite (`cpu_validation`) uses other shapes, sparsities and batches than
`cpu_calibration`: the two ViT-B MLP GEMMs (768->3072, 3072->768) at 80/90/99 % constant fan-in,
batches 1, 4, 16, 64, 256, for dense, csr and condensed, plus nm (2:4, 1:8) on 1536x1536 and
shrunk on channel-removed masks. Reported: predicted vs measured per point, MAPE and Spearman,
per kernel and per thread count, the measurement's own noise beside them (stats.repeatability:
pass-to-pass spread, the samples' IQR/median, the CPU share and steal the harness recorded),
and per shape the batch at which `condensed` stops beating `dense`, predicted and measured. The
model is `cpu_host`, by default calibrated in the same run on the `cpu_calibration` suite
(measured interleaved with the validation points, fitted on its own points only);
`calibration="stored"` uses what `simsparse calibrate --device cpu` stored.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Sequence

from simsparse import hostinfo
from simsparse.archs.cpu_simd import CpuSimdModel, cpu_model
from simsparse.errors import SimSparseError
from simsparse.hostinfo import available_cores
from simsparse.kernels.contention import DEFAULT_MAX_NOISE, DEFAULT_MAX_WAIT_S, SYSTEM, Probe, wait_note
from simsparse.kernels.suites import SUITES, Case, fan_in_for, suite_cases
from simsparse.validate import stats
from simsparse.validate.calibrate import Predictor, fit, predicted, uncalibrated_host_model
from simsparse.validate.cpu_timing import load_note, measure_points, noise_verdict, thread_counts
from simsparse.validate.records import Crossover, MeasuredPoint, ValidationReport

VAL_SHAPES = ((3072, 768), (768, 3072))
VAL_SPARSITIES = (0.80, 0.90, 0.99)
VAL_BATCHES = (1, 4, 16, 64, 256)
CROSSOVER_SPARSITY = 0.90
CROSSOVER_BATCHES = (1, 2, 4, 16, 64, 128, 256, 512)   # dense and condensed at 90 %: where condensed loses
                                                       # (512: so that "never up to 256" is not a censored answer)
CALIBRATIONS = ("fresh", "stored")
GROUP_BY = (("kernel",), ("threads",))


@SUITES.register("cpu_validation")
def validation_suite() -> tuple[Case, ...]:
    """Held-out points (see module doc); dense is timed once per shape (its time ignores the mask)."""
    cases = []
    for n, k in VAL_SHAPES:
        for s in VAL_SPARSITIES:
            pattern = f"fanin={fan_in_for(k, s)}"
            cases += [Case(m=b, n=n, k=k, pattern=pattern, kernels=("csr",)) for b in VAL_BATCHES]
            batches = CROSSOVER_BATCHES if s == CROSSOVER_SPARSITY else VAL_BATCHES
            kernels = ("dense", "condensed") if s == CROSSOVER_SPARSITY else ("condensed",)
            cases += [Case(m=b, n=n, k=k, pattern=pattern, kernels=kernels) for b in batches]
    cases += [Case(m=b, n=1536, k=1536, pattern=p, kernels=("nm",)) for p in ("2:4", "1:8") for b in (1, 16, 256)]
    cases += [Case(m=b, n=3072, k=768, pattern=p, kernels=("shrunk",))
              for p in ("channels=0.5", "channels=0.25") for b in (1, 16, 256)]
    return tuple(cases)


# ----------------------------------------------------------------------------- crossovers


def _crossing(b0: int, b1: int, r0: float, r1: float) -> float:
    frac = -r0 / (r1 - r0) if r1 != r0 else 0.0
    return float(math.exp(math.log(b0) + frac * (math.log(b1) - math.log(b0))))


def crossover_batches(batches: Sequence[int], cond_s: Sequence[float], dense_s: Sequence[float]) -> tuple[float, float]:
    """(first, final) batch where condensed is no faster than dense, log-interpolated (inf: never)."""
    ratio = [math.log(c / d) for c, d in zip(cond_s, dense_s)]
    first = final = float("inf")
    for i, r in enumerate(ratio):
        if r >= 0:
            first = float(batches[0]) if i == 0 else _crossing(batches[i - 1], batches[i], ratio[i - 1], r)
            break
    if ratio[-1] >= 0:
        i = len(ratio) - 1
        while i > 0 and ratio[i - 1] >= 0:
            i -= 1
        final = float(batches[0]) if i == 0 else _crossing(batches[i - 1], batches[i], ratio[i - 1], ratio[i])
    return first, final


def _within_2x(a: float, b: float) -> bool:
    if math.isinf(a) or math.isinf(b):
        return math.isinf(a) and math.isinf(b)
    return max(a, b) / min(a, b) <= 2.0


def crossovers(points: Sequence[MeasuredPoint]) -> list[Crossover]:
    """Per validation shape and thread count, where condensed stops beating dense (predicted points)."""
    out = []
    for n, k in VAL_SHAPES:
        pattern = f"fanin={fan_in_for(k, CROSSOVER_SPARSITY)}"
        for t in sorted({p.threads for p in points}):
            rows = {(p.kernel, p.m): p for p in points if (p.n, p.k, p.pattern, p.threads) == (n, k, pattern, t)}
            batches = [b for b in CROSSOVER_BATCHES if ("condensed", b) in rows and ("dense", b) in rows]
            if len(batches) < 2:
                continue
            mf, ml = crossover_batches(batches, [rows[("condensed", b)].measured_s for b in batches],
                                       [rows[("dense", b)].measured_s for b in batches])
            pf, pl = crossover_batches(batches, [rows[("condensed", b)].predicted_s for b in batches],
                                       [rows[("dense", b)].predicted_s for b in batches])
            out.append(Crossover(n=n, k=k, threads=t, predicted_first=pf, measured_first=mf, predicted_final=pl,
                                 measured_final=ml, within_2x=_within_2x(pf, mf) and _within_2x(pl, ml)))
    return out


# ----------------------------------------------------------------------------- running


def build_report(points: Sequence[MeasuredPoint], model: CpuSimdModel, *, machine: str = "",
                 calibration: str = "", notes: Sequence[str] = (),
                 calibration_points: Sequence[MeasuredPoint] = (), elapsed_s: float = 0.0) -> ValidationReport:
    """Predict `points` with `model` (no measuring) into a report with groups and crossovers."""
    pts = predicted(points, Predictor(model))
    groups = sum((stats.grouped(pts, by, metric="time") for by in GROUP_BY), ())
    return ValidationReport(device="cpu", engine="analytic", points=tuple(pts),
                            summary=stats.summarize(pts, metric="time"), groups=groups,
                            crossovers=tuple(crossovers(pts)), machine=machine, calibration=calibration,
                            calibration_points=tuple(calibration_points), elapsed_s=elapsed_s,
                            notes=tuple(notes))


def fresh_model(cal_points: Sequence[MeasuredPoint]) -> tuple[CpuSimdModel, list[MeasuredPoint]]:
    """cpu_host with kernel parameters fitted on `cal_points`, and those points with their
    in-sample predictions."""
    base = uncalibrated_host_model()
    fitted, fitted_points = fit(cal_points, base)
    spec = replace(base.spec, kernels={**base.spec.kernels, **fitted}, calibration="fresh (this run)")
    return CpuSimdModel(name=base.name, spec=spec, source=base.source), fitted_points


def run(*, progress: bool = False, threads: Sequence[int] | None = None, min_time_s: float = 0.08,
        suite: str = "cpu_validation", arch: str = "cpu_host", repeats: int = 5,
        calibration: str = "fresh", allow_noisy: bool = False, max_noise: float | None = None,
        max_wait_s: float | None = None, probe: Probe = SYSTEM) -> ValidationReport:
    """Measure the validation suite here and compare with the model's predictions.

    calibration="fresh" (default): the calibration suite is measured in the same shuffled passes
    as the validation suite, the kernel parameters are fitted on the calibration points only, and
    the validation points are predicted with them. Both suites then see the same machine: on a
    shared VM the speed drifts by ~20 % over tens of minutes (measured here: the same suite ran
    0.79x the time 20 minutes later), which a calibration stored earlier cannot know about.
    calibration="stored": the calibration `simsparse calibrate` stored for this machine (as
    `evaluate` uses it), or the documented defaults if there is none.

    Load-aware like `measure`: on a busy machine it first waits (at most `max_wait_s`) for idle
    CPUs; every point carries the noise of its passes, the summary how noisy the measurements
    were, and a run whose points were too often noisy in every pass (IQR/median above
    `max_noise`, too little CPU time, steal) is refused unless `allow_noisy` (cpu_timing.noise_verdict).
    None: the harness's defaults (kernels/contention.py)."""
    if calibration not in CALIBRATIONS:
        raise SimSparseError(f"--calibration {calibration!r}: use one of {', '.join(CALIBRATIONS)}")
    t0 = time.perf_counter()
    machine = hostinfo.detect().key
    threads = tuple(threads) if threads else thread_counts()
    max_noise = DEFAULT_MAX_NOISE if max_noise is None else max_noise
    notes = load_note(threads) + wait_note(max(threads), available_cores(), probe=probe, say=progress,
                                           max_wait_s=DEFAULT_MAX_WAIT_S if max_wait_s is None else max_wait_s)
    val_cases = suite_cases(suite)
    cal_cases = suite_cases("cpu_calibration") if calibration == "fresh" and arch == "cpu_host" else ()
    points = measure_points(tuple(val_cases) + tuple(cal_cases), threads=threads, min_time_s=min_time_s,
                            progress=progress, repeats=repeats, machine=machine, arch=arch, max_noise=max_noise)
    val_keys = {(kern, c.m, c.n, c.k, c.pattern) for c in val_cases for kern in c.kernels}
    val_points = [p for p in points if (p.kernel, p.m, p.n, p.k, p.pattern) in val_keys]
    cal_points: list[MeasuredPoint] = [p for p in points if (p.kernel, p.m, p.n, p.k, p.pattern) not in val_keys]
    notes += noise_verdict(val_points, allow_noisy=allow_noisy)
    if cal_cases:
        model, cal_points = fresh_model(cal_points)
        source = "fresh: fitted in this run"
        notes += (f"calibration fitted in this run on {len(cal_points)} cpu_calibration points measured in the "
                  f"same passes (in-sample MAPE {stats.summarize(cal_points, metric='time').mape:.1%}); "
                  "the validation points were not used",)
    else:
        model = cpu_model(arch)
        source = model.spec.calibration
        if not source:
            notes += ("no calibration for this machine: documented default kernel parameters "
                      "(run `simsparse calibrate --device cpu` first)",)
    return build_report(val_points, model, machine=machine, calibration=source, notes=notes,
                        calibration_points=tuple(cal_points), elapsed_s=time.perf_counter() - t0)
