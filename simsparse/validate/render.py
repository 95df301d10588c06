"""A ValidationReport for people (table) and programs (JSON, CSV).

JSON keys (README "validate JSON"): device, engine, summary, groups, not_evaluated, corpora,
points, crossovers, machine, calibration, calibration_points, elapsed_s, notes (and the
`calibrate` result's own). Every MAPE is a fraction; times are seconds. Tables show percentages
and microseconds.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, fields
from typing import Any, Sequence

from simsparse.report import plain, table, to_json
from simsparse.validate import stats
from simsparse.validate.calibrate import CalibrationResult
from simsparse.validate.records import Group, MeasuredPoint, Summary, ValidationReport


def point_dict(p: MeasuredPoint) -> dict[str, Any]:
    """A point as JSON data, with `error`: the signed relative error of its kernel time."""
    error = None if p.measured_s is None or p.predicted_s is None else (p.predicted_s - p.measured_s) / p.measured_s
    return {**plain(p), "error": error}


def not_evaluated_dicts(report: ValidationReport) -> list[dict[str, Any]]:
    """Rows not evaluated, one entry per (corpus, GPU, dtype, reason) with its count and ids."""
    out: dict[tuple, dict[str, Any]] = {}
    for r in report.not_evaluated:
        entry = out.setdefault((r.source, r.device, r.dtype, r.reason),
                               {"source": r.source, "device": r.device, "dtype": r.dtype, "reason": r.reason,
                                "n": 0, "ids": []})
        entry["n"] += 1
        entry["ids"].append(r.id)
    return list(out.values())


def to_dict(report: ValidationReport) -> dict[str, Any]:
    return {"device": report.device, "engine": report.engine, "summary": plain(report.summary),
            "groups": [{"by": dict(zip(g.by, g.key)), **plain(g.summary)} for g in report.groups],
            "not_evaluated": not_evaluated_dicts(report), "corpora": plain(report.corpora),
            "points": [point_dict(p) for p in report.points], "crossovers": plain(report.crossovers),
            "machine": report.machine, "calibration": report.calibration,
            "calibration_points": [point_dict(p) for p in report.calibration_points],
            "elapsed_s": report.elapsed_s, "notes": list(report.notes)}


def to_csv(report: ValidationReport) -> str:
    """One line per point (times in seconds)."""
    names = [f.name for f in fields(MeasuredPoint)]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for p in report.points:
        row = asdict(p)
        writer.writerow([";".join(f"{v:.6g}" for v in row[n]) if n == "pass_mins_s" else
                         "" if row[n] is None else row[n] for n in names])
    return buf.getvalue()


# ----------------------------------------------------------------------------- tables


def pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def _num(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _us(x: float | None) -> str:
    return "-" if x is None else f"{1e6 * x:.1f}"


def noise_text(s: Summary) -> str:
    n = s.noise
    if n is None:
        return "-"
    text = f"spread {pct(n.spread_median)} (p90 {pct(n.spread_p90)}), 1-pass APE {pct(n.single_pass_ape)}"
    if n.cpu_share_min is not None:
        text += (f", samples IQR/median {pct(n.sample_noise_median)}, CPU share >= {pct(n.cpu_share_min)}, "
                 f"steal <= {pct(n.steal_fraction_max)}, noisy points {n.noisy_points}")
    return text


def _sign(s: Summary) -> str:
    return "-" if s.sign_errors is None else f"{s.n - s.sign_errors}/{s.n}"


def group_label(g: Group) -> str:
    """"corpus / GPU / dtype / arch" for published groups, "kernel csr" and the like otherwise."""
    if "source" in g.by:
        return " / ".join(g.key)
    return ", ".join(f"{b} {k}" for b, k in zip(g.by, g.key))


def groups_table(groups: Sequence[Group]) -> str:
    """One line per group; the columns follow the groups' metric."""
    if not groups:
        return ""
    if groups[0].summary.metric == "speedup":
        header = ["group", "n", "speedup MAPE", "sign right", "dense time MAPE", "sparse time MAPE", "spearman"]
        rows = [[group_label(g), g.summary.n, pct(g.summary.mape_speedup), _sign(g.summary),
                 pct(g.summary.mape_dense_time), pct(g.summary.mape_sparse_time), _num(g.summary.spearman)]
                for g in groups]
    else:
        header = ["group", "n", "time MAPE", "median APE", "spearman", "measurement noise"]
        rows = [[group_label(g), g.summary.n, pct(g.summary.mape), pct(g.summary.median_ape),
                 _num(g.summary.spearman, ".3f"), noise_text(g.summary)] for g in groups]
    return table(rows, header)


def worst_lines(report: ValidationReport, ids: Sequence[str], metric: str) -> list[str]:
    by_id = {p.id: p for p in report.points}
    lines = []
    for pid in ids:
        p = by_id[pid]
        what = (f"speedup {_num(p.measured_speedup)} measured, {_num(p.predicted_speedup)} predicted; "
                f"dense {_us(p.measured_dense_s)} / {_us(p.predicted_dense_s)} us, "
                f"sparse {_us(p.measured_s)} / {_us(p.predicted_s)} us"
                if metric == "speedup" else f"{_us(p.measured_s)} us measured, {_us(p.predicted_s)} us predicted")
        case = "" if p.source == "cpu" else f" ({p.device} {p.dtype} {p.kernel} {p.m}x{p.n}x{p.k})"
        lines.append(f"  {p.id}{case}: {what} (APE {pct(stats.point_error(p, metric))})")
    return lines


def summary_line(s: Summary) -> str:
    parts = [f"n {s.n}", f"{s.metric} MAPE {pct(s.mape)}", f"spearman {_num(s.spearman, '.3f')}",
             f"median APE {pct(s.median_ape)}"]
    if s.sign_errors is not None:
        parts.append(f"sign of (speedup - 1) right {_sign(s)}")
    if s.mape_dense_time is not None:
        parts.append(f"time MAPE dense {pct(s.mape_dense_time)} / sparse {pct(s.mape_sparse_time)}")
    if s.noise is not None:
        parts.append(f"measurement noise ({s.noise.passes} passes): {noise_text(s)}")
    return "summary: " + ", ".join(parts)


def to_table(report: ValidationReport) -> str:
    out = [f"validate --device {report.device} ({report.engine} engine): {len(report.points)} points evaluated"
           + (f", {len(report.not_evaluated)} not evaluated" if report.not_evaluated else "")]
    for c in report.corpora:
        out.append(f"  corpus {c.name} ({c.role}, {c.schema} rows): {c.rows} rows from {c.path}")
    if report.machine:
        out.append(f"  machine {report.machine}; calibration: {report.calibration or 'documented defaults'}")
    out.append(groups_table(report.groups))
    per_source = [(f" of {g.key[0]}", g.summary.worst) for g in report.groups if g.by == ("source",)]
    for label, ids in per_source or [("", report.summary.worst)]:
        if ids:
            out.append(f"worst rows{label}:")
            out += worst_lines(report, ids, report.summary.metric)
    for c in report.crossovers:
        out.append(f"crossover {c.k}->{c.n} t{c.threads}: condensed stops beating dense at batch "
                   f"{c.predicted_first:.1f} predicted / {c.measured_first:.1f} measured (for good from "
                   f"{c.predicted_final:.1f} / {c.measured_final:.1f}); within 2x: {c.within_2x}")
    for entry in not_evaluated_dicts(report):
        out.append(f"not evaluated: {entry['n']} rows of {entry['source']} ({entry['device']} {entry['dtype']}): "
                   f"{entry['reason']}")
    out += [f"note: {n}" for n in report.notes]
    out.append(summary_line(report.summary))
    return "\n".join(line for line in out if line)


def render(report: ValidationReport, fmt: str) -> str:
    if fmt == "json":
        return to_json(to_dict(report))
    if fmt == "csv":
        return to_csv(report)
    return to_table(report)


# ----------------------------------------------------------------------------- calibrate


def calibration_dict(result: CalibrationResult) -> dict[str, Any]:
    """`calibrate` JSON: machine, path, threads, kernels {kernel: {param: value}}, summary (the
    in-sample fit: mape a fraction, noise the measurement's own), elapsed_s, notes, points."""
    return {"machine": result.machine, "path": result.path, "threads": list(result.threads),
            "kernels": result.kernels, "summary": plain(result.summary), "elapsed_s": result.elapsed_s,
            "notes": list(result.notes), "points": [point_dict(p) for p in result.points]}


def calibration_table(result: CalibrationResult) -> str:
    rows = [[k] + [f"{v:.3g}" for v in params.values()] for k, params in result.kernels.items()]
    header = ["kernel"] + list(next(iter(result.kernels.values()), {}))
    out = [f"calibrate --device cpu on {result.machine}: {len(result.points)} points at threads "
           f"{', '.join(map(str, result.threads))}, {result.elapsed_s:.0f} s -> {result.path or '(not stored)'}",
           table(rows, header) if rows else "no kernel fitted"]
    out += [f"note: {n}" for n in result.notes]
    out.append(summary_line(result.summary).replace("summary:", "in-sample fit:", 1))
    return "\n".join(out)


def render_calibration(result: CalibrationResult, fmt: str) -> str:
    return to_json(calibration_dict(result)) if fmt == "json" else calibration_table(result)
