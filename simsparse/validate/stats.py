"""The statistics of validation, one home for all sources.

APE and MAPE are fractions (0.12 = 12 %). A measured value must be positive and finite (the
readers refuse anything else, so no MAPE can come out negative). Spearman's rank correlation is
NaN where it is undefined: fewer than three pairs, or a constant input. Sign agreement asks
whether the model puts (speedup - 1) on the right side of zero: faster or slower than dense.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy.stats import spearmanr

from simsparse.validate.records import Group, MeasuredPoint, Noise, Summary

METRICS = ("speedup", "time")
WORST_N = 5


def ape(predicted: float, measured: float) -> float:
    """|predicted - measured| / measured (a fraction)."""
    if not (measured > 0 and math.isfinite(measured)):
        raise ValueError(f"a measured value must be positive and finite, got {measured!r}")
    return abs(predicted - measured) / measured


def mape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Mean absolute percentage error as a fraction; NaN when there is no pair."""
    if len(predicted) != len(measured):
        raise ValueError(f"mape needs pairs: {len(predicted)} predicted vs {len(measured)} measured")
    errors = [ape(p, m) for p, m in zip(predicted, measured)]
    return float(np.mean(errors)) if errors else math.nan


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation; NaN for fewer than 3 pairs or a constant input."""
    if len(a) != len(b):
        raise ValueError(f"spearman needs pairs: {len(a)} vs {len(b)}")
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def sign_errors(predicted_speedups: Sequence[float], measured_speedups: Sequence[float]) -> int:
    """How many pairs put (speedup - 1) on opposite sides: one faster than dense, one not."""
    return sum((p > 1.0) != (m > 1.0) for p, m in zip(predicted_speedups, measured_speedups))


# ----------------------------------------------------------------------------- over points


def time_pairs(points: Sequence[MeasuredPoint], side: str) -> tuple[list[float], list[float]]:
    """(predicted, measured) times: side "kernel" = every point's own kernel; "sparse" / "dense" =
    the two halves of the points that carry a dense baseline pair."""
    if side == "dense":
        pairs = [(p.predicted_dense_s, p.measured_dense_s) for p in points]
    elif side == "sparse":
        pairs = [(p.predicted_s, p.measured_s) for p in points if p.measured_dense_s is not None]
    elif side == "kernel":
        pairs = [(p.predicted_s, p.measured_s) for p in points]
    else:
        raise ValueError(f"side must be kernel, sparse or dense, got {side!r}")
    kept = [(a, b) for a, b in pairs if a is not None and b is not None]
    return [a for a, _ in kept], [b for _, b in kept]


def speedup_pairs(points: Sequence[MeasuredPoint]) -> tuple[list[float], list[float]]:
    kept = [(p.predicted_speedup, p.measured_speedup) for p in points
            if p.predicted_speedup is not None and p.measured_speedup is not None]
    return [a for a, _ in kept], [b for _, b in kept]


def point_error(p: MeasuredPoint, metric: str) -> float | None:
    """The APE of one point in `metric` (time: the worse of its kernel and dense times)."""
    if metric == "speedup":
        if p.predicted_speedup is None or p.measured_speedup is None:
            return None
        return ape(p.predicted_speedup, p.measured_speedup)
    errs = [ape(pred, meas) for pred, meas in ((p.predicted_s, p.measured_s),
                                               (p.predicted_dense_s, p.measured_dense_s))
            if pred is not None and meas is not None]
    return max(errs) if errs else None


def worst(points: Sequence[MeasuredPoint], metric: str, count: int = WORST_N) -> tuple[str, ...]:
    """Ids of the `count` points with the largest error of `metric` (ties by id)."""
    scored = [(err, p.id) for p in points if (err := point_error(p, metric)) is not None]
    return tuple(pid for _, pid in sorted(scored, key=lambda e: (-e[0], e[1]))[:count])


def repeatability(points: Sequence[MeasuredPoint]) -> Noise | None:
    """The measurement's own noise (see Noise); None where no point was timed in passes here."""
    timed = [p for p in points if len(p.pass_mins_s) > 0 and p.measured_s]
    if not timed:
        return None
    spreads = [max(p.pass_mins_s) / min(p.pass_mins_s) - 1.0 for p in timed if min(p.pass_mins_s) > 0]
    single = [v / p.measured_s - 1.0 for p in timed for v in p.pass_mins_s]
    if not spreads:
        return None
    loaded = [p for p in timed if p.cpu_share is not None]
    return Noise(passes=max(len(p.pass_mins_s) for p in timed), spread_median=float(np.median(spreads)),
                 spread_p90=float(np.percentile(spreads, 90)), single_pass_ape=float(np.mean(single)),
                 sample_noise_median=float(np.median([p.noise for p in loaded])) if loaded else None,
                 cpu_share_min=min(p.cpu_share for p in loaded) if loaded else None,
                 steal_fraction_max=max(p.steal_fraction for p in loaded) if loaded else None,
                 noisy_points=sum(1 for p in timed if p.noisy))


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value


def summarize(points: Sequence[MeasuredPoint], *, metric: str) -> Summary:
    """Every statistic of `points`; `mape` is the MAPE of `metric` ("speedup" or "time")."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    sp_pred, sp_meas = speedup_pairs(points)
    kernel = time_pairs(points, "kernel")
    dense, sparse = time_pairs(points, "dense"), time_pairs(points, "sparse")
    every_time = (kernel[0] + dense[0], kernel[1] + dense[1])
    mape_speedup, mape_time = mape(*(sp_pred, sp_meas)), mape(*every_time)
    errors = [e for p in points if (e := point_error(p, metric)) is not None]
    ranked = (sp_pred, sp_meas) if metric == "speedup" else kernel
    return Summary(
        n=len(points), metric=metric, mape=mape_speedup if metric == "speedup" else mape_time,
        spearman=spearman(*ranked), median_ape=float(np.median(errors)) if errors else math.nan,
        mape_speedup=_optional(mape_speedup), mape_time=_optional(mape_time),
        mape_dense_time=_optional(mape(*dense)), mape_sparse_time=_optional(mape(*sparse)),
        sign_agreement=1.0 - sign_errors(sp_pred, sp_meas) / len(sp_pred) if sp_pred else None,
        sign_errors=sign_errors(sp_pred, sp_meas) if sp_pred else None,
        worst=worst(points, metric), noise=repeatability(points))


def group_points(points: Sequence[MeasuredPoint], by: Sequence[str]) -> dict[tuple, list[MeasuredPoint]]:
    """Points keyed by the values of the MeasuredPoint fields `by`, in order of first appearance."""
    out: dict[tuple, list[MeasuredPoint]] = {}
    for p in points:
        out.setdefault(tuple(getattr(p, f) for f in by), []).append(p)
    return out


def grouped(points: Sequence[MeasuredPoint], by: Sequence[str], *, metric: str) -> tuple[Group, ...]:
    """One `Group` summary per distinct value of the fields `by` (e.g. ("device", "dtype"))."""
    return tuple(Group(by=tuple(by), key=tuple(str(v) for v in key), summary=summarize(pts, metric=metric))
                 for key, pts in group_points(points, by).items())
