"""Rendering: tables for people, JSON/CSV for programs (stable keys: README "Using it"). Writing
the text to files is fileio's (atomic: never a half-written file).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from simsparse.records import Estimate, Pattern, Report

NUMERIC_KEYS = ("flops_dense", "flops_effective", "flops_executed", "cycles", "latency_s", "energy_j")


def plain(obj: Any) -> Any:
    """Records, numpy scalars and tuples -> JSON-able plain data (masks and arrays summarised)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"shape": list(obj.shape), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def to_json(data: Any) -> str:
    return json.dumps(plain(data), indent=2, sort_keys=False)


# ----------------------------------------------------------------------------- estimates


def estimate_row(e: Estimate) -> dict[str, Any]:
    row = {"name": e.layer, "m": e.m, "n": e.n, "k": e.k, "format": e.format, "density": e.density,
           "flops_dense": e.flops_dense, "flops_effective": e.flops_effective,
           "flops_executed": e.flops_executed, "bytes": dict(e.bytes_by_level), "cycles": e.cycles,
           "latency_s": e.latency_s, "bound": e.bound, "energy_j": e.energy_j, "software": e.software,
           "error_band": plain(e.error_band), "notes": list(e.notes)}
    if e.alternatives:          # the formats the arch ranked for this layer: {format: latency_s}
        row["alternatives"] = dict(e.alternatives)
    return row


def report_dict(r: Report) -> dict[str, Any]:
    total = estimate_row(r.total)
    dense_total = estimate_row(r.dense_total)
    for row in (total, dense_total):
        row.pop("notes")
    provenance = plain(r.provenance)
    shrunk = (provenance.get("shrink") or {}).pop("layers", {})   # per layer: shape, shrunk_shape, groups, notes
    layers = [estimate_row(e) for e in r.estimates]
    for row in layers:
        if row["name"] in shrunk:
            row["shrink"] = shrunk[row["name"]]
    return {"arch": r.arch, "engine": r.engine, "dtype": r.dtype, "software": r.software,
            "error_band": plain(r.total.error_band), "layers": layers, "total": total,
            "dense_total": dense_total, "speedup_vs_dense": r.speedup_vs_dense, "provenance": provenance}


def shrink_line(r: Report) -> str:
    """One line on how the network was shrunk before the arch ran it ("" when it was not asked)."""
    s = r.provenance.get("shrink") or {}
    if s.get("policy") in (None, "lone GEMM"):
        return ""
    if s["policy"] == "off":
        return "not shrunk" + (f": {s['reason']}" if s.get("reason") else " (--no-shrink)")
    if not (s["channels_removed"] or s["heads_removed"] or s.get("kept")):
        return ""
    line = (f"shrunk under {s['policy']}: {s['groups_shrunk']} of {s['groups']} channel groups, "
            f"{s['channels_removed']} channels and {s['heads_removed']} attention heads removed; "
            f"weights {_si(s['weights_before'])} -> {_si(s['weights_after'])}, dense MACs per sample "
            f"{_si(s['macs_per_sample_before'])} -> {_si(s['macs_per_sample_after'])}")
    return line + (f"; kept: {len(s['kept'])} groups (see notes)" if s.get("kept") else "")


def _si(x: float, unit: str = "") -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{prefix}{unit}"
    return f"{x:.3g}{unit}"


def _time(s: float) -> str:
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.2f} us"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _band_cell(low: float | None, high: float | None, prior: bool = False) -> str:
    """An error band as `-8%..+12%` (`*`: a prior, borrowed)."""
    if low is None or high is None:
        return "-"
    return f"{low:+.0%}..{high:+.0%}" + ("*" if prior else "")


def band_line(r: Report) -> str | None:
    """The report's expected error (GPU archs): the total's latency and speedup bands and their basis."""
    b = r.total.error_band
    if b is None:
        return None
    speed = f", speedup {_band_cell(b.speedup_low, b.speedup_high)}" if b.speedup_low is not None else ""
    return (f"expected error (measured / predicted - 1, 10th..90th percentile of validation residuals): latency "
            f"{_band_cell(b.latency_low, b.latency_high)}{speed}; {b.basis}" + (" (* prior: borrowed)" if b.prior else ""))


def report_table(r: Report, *, max_rows: int = 60) -> str:
    rows = []
    pairs = list(zip(r.estimates, r.dense_estimates))
    shown = pairs if len(pairs) <= max_rows else pairs[:max_rows]
    shrunk = any((e.n, e.k) != (d.n, d.k) for e, d in pairs)     # a shrunk network: show the original n x k too
    bands = any(e.error_band for e, _ in pairs)
    for e, d in shown:
        sp = d.latency_s / e.latency_s if e.latency_s > 0 else float("inf")
        was = [f"{d.n}x{d.k}" if (e.n, e.k) != (d.n, d.k) else ""] if shrunk else []
        b = e.error_band
        rows.append([e.layer, f"{e.m}x{e.n}x{e.k}" if e.m else "-", *was, e.format, f"{e.density:.3f}",
                     _si(e.flops_executed), _time(e.latency_s), _time(d.latency_s), f"{sp:.2f}x", e.bound]
                    + ([_band_cell(b.latency_low, b.latency_high, b.prior) if b else "-"] if bands else []))
    head = ["layer", "m x n x k", *(["was n x k"] if shrunk else []), "format", "density", "flops exec", "latency",
            "dense", "speedup", "bound"] + (["exp. error"] if bands else [])
    out = [f"arch {r.arch}  engine {r.engine}  dtype {r.dtype}" + (f"  software {r.software}" if r.software else ""),
           table(rows, head)]
    if len(pairs) > max_rows:
        out.append(f"... {len(pairs) - max_rows} more layers (use --format json or csv for all)")
    t, d = r.total, r.dense_total
    out.append(f"total: {_time(t.latency_s)} vs dense {_time(d.latency_s)} -> speedup {r.speedup_vs_dense:.3f}x; "
               f"FLOPs dense {_si(t.flops_dense)}, effective {_si(t.flops_effective)}, executed {_si(t.flops_executed)}"
               + (f"; energy {t.energy_j * 1e3:.3f} mJ vs {d.energy_j * 1e3:.3f} mJ" if t.energy_j else ""))
    if band_line(r):
        out.append(band_line(r))
    if r.provenance.get("coverage"):
        out.append(str(r.provenance["coverage"]))
    if shrink_line(r):
        out.append(shrink_line(r))
    llm = r.provenance.get("llm") or {}
    if llm.get("tokens_per_s"):
        out.append(f"{llm['phase']} (batch {llm['batch']}): {llm['tokens_per_s']:,.0f} tokens/s vs dense "
                   f"{llm['dense_tokens_per_s']:,.0f}" + (f"; time per output token {_time(llm['time_per_output_token_s'])}"
                   f" vs dense {_time(llm['dense_time_per_output_token_s'])}" if llm["phase"] == "decode" else ""))
    notes = sorted({n for e in r.estimates for n in e.notes})
    if notes:
        out.append("notes:\n" + "\n".join(f"  - {n}" for n in notes[:12])
                   + (f"\n  ... {len(notes) - 12} more" if len(notes) > 12 else ""))
    return "\n".join(out)


def report_csv(reports: Iterable[Report]) -> str:
    buf = io.StringIO()
    cols = ["arch", "engine", "dtype", "name", "m", "n", "k", "format", "density", *NUMERIC_KEYS,
            "dense_latency_s", "speedup", "bound", "bytes_total", "notes", "software", "error_low", "error_high",
            "source"]                      # added last: the columns before it keep their places
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in reports:
        pairs = list(zip(r.estimates, r.dense_estimates)) + [(r.total, r.dense_total)]
        for e, d in pairs:
            row = {k: v for k, v in estimate_row(e).items() if k in cols}
            row.update(source=source_of(r), arch=r.arch, engine=r.engine, dtype=r.dtype, software=r.software,
                       dense_latency_s=d.latency_s,
                       speedup=(d.latency_s / e.latency_s) if e.latency_s > 0 else "",
                       bytes_total=sum(e.bytes_by_level.values()), notes="; ".join(e.notes),
                       error_low=e.error_band.latency_low if e.error_band else "",
                       error_high=e.error_band.latency_high if e.error_band else "")
            w.writerow(row)
    return buf.getvalue()


def render_reports(reports: Sequence[Report], fmt: str) -> str:
    if fmt == "json":
        return to_json(report_dict(reports[0]) if len(reports) == 1 else {"reports": [report_dict(r) for r in reports]})
    if fmt == "csv":
        return report_csv(reports)
    if len(reports) == 1:
        return report_table(reports[0])
    return compare_table(reports)


def source_of(r: Report) -> str:
    """What a report estimated: the checkpoint's path, the workload's name, or `gemm:M,N,K`."""
    if r.provenance.get("checkpoint"):
        return str(r.provenance["checkpoint"])
    if r.provenance.get("workload"):
        return str(r.provenance["workload"])
    gemm = r.provenance.get("gemm")
    return "gemm:" + ",".join(map(str, gemm)) if gemm else "-"


def compare_table(reports: Sequence[Report]) -> str:
    rows = []
    for r in reports:
        t = r.total
        rows.append([Path(source_of(r)).name, r.arch, r.dtype, f"{t.density:.3f}", _si(t.flops_dense),
                     _si(t.flops_executed), _time(t.latency_s), _time(r.dense_total.latency_s),
                     f"{r.speedup_vs_dense:.2f}x"])
    return table(rows, ["checkpoint", "arch", "dtype", "density", "flops dense", "flops exec", "latency", "dense",
                        "speedup"])


# ----------------------------------------------------------------------------- inspect


def pattern_row(fqn: str, p: Pattern) -> dict[str, Any]:
    return {"name": fqn, "shape": list(p.shape), "density": p.density, "nnz": p.nnz,
            "nm_envelope": {str(m): n for m, n in p.nm_envelope.items()},
            "nm_envelope_out": {str(m): n for m, n in p.nm_envelope_out.items()},
            "fan_in": {"min": p.fan_in.min, "max": p.fan_in.max, "constant": p.fan_in.constant},
            "rows_removed": p.rows_removed, "cols_removed": p.cols_removed,
            "row_nnz_histogram": {str(k): v for k, v in p.row_nnz_histogram.items()},
            "block": {str(b): f for b, f in p.block.items()}}


def inspect_dict(result) -> dict[str, Any]:
    prov = {k: v for k, v in result.masks.provenance.items() if k != "meta"}
    return {"path": result.path, "format": result.masks.provenance.get("format"),
            "layers": [pattern_row(f, p) for f, p in result.patterns.items()],
            "summary": plain(result.summary), "meta": plain(result.masks.provenance.get("meta", {})),
            "provenance": plain(prov), "has_geometry": result.masks.geometry is not None}


def inspect_table(result) -> str:
    rows = []
    for fqn, p in result.patterns.items():
        env = " ".join(f"{p.nm_envelope[m]}:{m}" for m in (4, 8, 16))
        fi = f"{p.fan_in.min}" if p.fan_in.constant else f"{p.fan_in.min}-{p.fan_in.max}"
        rows.append([fqn, "x".join(map(str, p.shape)), f"{p.density:.4f}", env, fi + (" const" if p.fan_in.constant else ""),
                     p.rows_removed, p.cols_removed])
    s = result.summary
    head = (f"{result.path}  format {result.masks.provenance.get('format', '?')}  layers {s['layers']}  "
            f"density {s['density']:.4f}  channels removed: {s['rows_removed']} out / {s['cols_removed']} in")
    foot = (f"2:4-compliant layers: {len(s['nm_2to4_layers'])}/{s['layers']}; "
            f"constant fan-in (sparse) layers: {len(s['constant_fan_in_layers'])}/{s['layers']}")
    prov = result.masks.provenance
    extra = [str(prov["coverage"])] if prov.get("coverage") else []
    extra += [f"note: {n}" for n in prov.get("notes", [])[:8]]
    return "\n".join([head, table(rows, ["layer", "shape", "density", "N:M envelope (4,8,16)", "fan-in",
                                          "rows removed", "in-ch removed"]), foot] + extra)


# ----------------------------------------------------------------------------- validation / measurement


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def points_table(d: Mapping[str, Any], *, key: str = "points", skip: Sequence[str] = ("source", "gpu", "csv_path")) -> str:
    """A table of a result's `points` (or `results`) rows, then its `summary` as one line."""
    rows = list(d.get(key) or [])
    out = []
    if rows:
        cols = [c for c in rows[0] if c not in skip and not isinstance(rows[0][c], (dict, list))]
        out.append(table([[_cell(r.get(c)) for c in cols] for r in rows], cols))
    summary = d.get("summary")
    if summary:
        out.append("summary: " + ", ".join(f"{k} {_cell(v)}" for k, v in summary.items()
                                            if not isinstance(v, (dict, list))))
    return "\n".join(out) if out else to_json(d)
