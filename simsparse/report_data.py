"""Assembling a report: the records of report_records.py built from what `api.report` computed
(the `Report` of every network x arch x batch, each checkpoint's measured mask patterns, kernels
timed on this CPU beside the CPU model, the committed validation summary), and the JSON/CSV
behind report.md. The pure choices `api.report` needs live here too: checkpoint labels, which
layers and patterns to time, the focus network, the what-if patterns.

No number is made up here. A figure the records do not carry stays None ("n/a" in report.md).
The software stack (`Report.software`), the expected error (`Report.total.error_band`) and the
other formats' costs (`Estimate.alternatives`) are read straight from the records; how a network
was shrunk comes from `provenance["shrink"]` (`graph.shrink_works.provenance`: "policy", and
"layers" {name: shape, shrunk_shape}), read by `shrink_of` and `residual_policy_of`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from simsparse.archs import ArchModel
from simsparse.errors import SimSparseError
from simsparse.graph.shrink import POLICIES as SHRINK_POLICIES
from simsparse.masks.patterns import best_nm
from simsparse.records import Estimate, Pattern, Report
from simsparse.report import plain, to_json as json_text
from simsparse.report_records import (ArchInfo, LayerRow, Network, ReportData, Roofline, RooflinePoint, Row,
                                      Structure)
from simsparse.resources import data_dir
from simsparse.validate.records import ValidationReport

GPU_KIND = "gpu_sparse_tensor_core"    # the kind whose spec gives the roofline (peaks, HBM bandwidth)
OFFCHIP_LEVELS = ("hbm", "dram")       # the level the tables call "bytes": off-chip traffic
NM_GROUPS = (4, 8, 16)
# each DST family's structure as a synthetic pattern with a closed form (no mask is drawn, so a
# billion-weight LLM costs milliseconds); RigL's unstructured density=D has none and is left out
FAMILY_PATTERNS = (("SRigL-like", "fanin=0.1"), ("N:M 2:4", "2:4"), ("Chase-like", "channels=0.6"))
VALIDATION_SUMMARY = "validation_summary.json"   # in accelerators/measurements/
VALIDATION_COMMAND = "simsparse validate --device published"


# ----------------------------------------------------------------------------- shrinking


def shrink_of(report: Report, estimate: Estimate) -> str | None:
    """`256x64 -> 171x64`: the layer's weight shape before and after the network was shrunk (None
    where shrinking left it as it was, or the network was not shrunk)."""
    layer = ((report.provenance.get("shrink") or {}).get("layers") or {}).get(estimate.layer)
    if not layer or list(layer["shape"]) == list(layer["shrunk_shape"]):
        return None
    return f"{'x'.join(map(str, layer['shape']))} -> {'x'.join(map(str, layer['shrunk_shape']))}"


def residual_policy_of(report: Report) -> str | None:
    """The residual policy the network was shrunk under (None: not shrunk, or a lone GEMM)."""
    value = (report.provenance.get("shrink") or {}).get("policy")
    return value if value in SHRINK_POLICIES else None


# ----------------------------------------------------------------------------- networks and rows


def structure_of(patterns: Mapping[str, Pattern]) -> Structure:
    sparse = [p for p in patterns.values() if p.density < 1.0]
    nm_layers: Counter[str] = Counter()
    for p in sparse:
        nm = best_nm(p.nm_envelope, NM_GROUPS)
        if nm is not None:
            nm_layers[f"{nm[0]}:{nm[1]}"] += 1
    return Structure(layers=len(patterns), sparse_layers=len(sparse), nm_layers=dict(nm_layers),
                     nm_2to4_layers=sum(p.is_nm(2, 4) for p in sparse),
                     constant_fan_in_layers=sum(p.fan_in.constant for p in sparse),
                     rows_removed=sum(p.rows_removed for p in patterns.values()),
                     cols_removed=sum(p.cols_removed for p in patterns.values()))


def checkpoint_network(*, label: str, path: str, workload: str, patterns: Mapping[str, Pattern],
                       meta: Mapping[str, Any]) -> Network:
    """A trained checkpoint: method, steps and test accuracy from its meta (None where absent)."""
    nnz = sum(p.nnz for p in patterns.values())
    size = sum(p.rows * p.cols for p in patterns.values())
    acc = meta.get("test_accuracy")
    steps = meta.get("steps")
    return Network(label=label, workload=workload, synthetic=False, source=str(path), method=meta.get("method"),
                   accuracy=float(acc) if isinstance(acc, (int, float)) else None,
                   steps=int(steps) if isinstance(steps, int) else None, density=nnz / max(1, size),
                   structure=structure_of(patterns), dense_layers=len(meta.get("dense_layers") or {}))


def what_if_network(*, family: str, pattern: str, workload: str) -> Network:
    return Network(label=f"{workload} {pattern} ({family})", workload=workload, synthetic=True,
                   source=f"synthetic {pattern} on {workload}", pattern=pattern)


def offchip_bytes(e: Estimate) -> float | None:
    levels = [lvl for lvl in OFFCHIP_LEVELS if lvl in e.bytes_by_level]
    return sum(e.bytes_by_level[lvl] for lvl in levels) if levels else None


def formats_text(report: Report) -> str:
    counts = Counter(e.format for e in report.estimates if e.format != "memory")
    return ", ".join(f"{fmt} ×{n}" for fmt, n in counts.most_common())


def overhead_share(report: Report) -> float:
    """Share of the latency spent in layers bound by per-call overhead (launch, host dispatch)."""
    spent = sum(e.latency_s for e in report.estimates if e.bound == "overhead")
    return spent / report.total.latency_s if report.total.latency_s > 0 else 0.0


def row_of(network: Network, report: Report, *, batch: int, kind: str) -> Row:
    t, d = report.total, report.dense_total
    modelled = d.energy_j > 0          # an arch without an energy model reports 0 J for the dense network too
    structure = network.structure.text() if network.structure else f"synthetic {network.pattern}"
    return Row(label=network.label, workload=network.workload, synthetic=network.synthetic, arch=report.arch,
               kind=kind, batch=batch, engine=report.engine, dtype=report.dtype, software=report.software or None,
               accuracy=network.accuracy, density=t.density, structure=structure, flops_dense=t.flops_dense,
               flops_executed=t.flops_executed, offchip_bytes=offchip_bytes(t), latency_s=t.latency_s,
               dense_latency_s=d.latency_s, speedup=report.speedup_vs_dense,
               energy_j=t.energy_j if modelled else None, dense_energy_j=d.energy_j if modelled else None,
               formats=formats_text(report), overhead_share=overhead_share(report), error_band=report.total.error_band)


def layer_rows(report: Report) -> tuple[LayerRow, ...]:
    """The GEMM layers of one report; non-GEMM ops summed into one last row."""
    out = []
    other, other_dense = 0.0, 0.0
    for e, d in zip(report.estimates, report.dense_estimates):
        if e.format == "memory" or not e.m:
            other, other_dense = other + e.latency_s, other_dense + d.latency_s
            continue
        out.append(LayerRow(arch=report.arch, layer=e.layer, gemm=f"{e.m}×{e.n}×{e.k}", format=e.format,
                            density=e.density, latency_s=e.latency_s, dense_latency_s=d.latency_s, bound=e.bound,
                            alternatives=dict(e.alternatives) or None, shrunk=shrink_of(report, e), notes=tuple(e.notes)))
    if other_dense:
        out.append(LayerRow(arch=report.arch, layer="other ops (non-GEMM)", gemm="-", format="memory", density=1.0,
                            latency_s=other, dense_latency_s=other_dense, bound="-", alternatives=None, shrunk=None))
    return tuple(out)


def roofline_of(report: Report, *, label: str, batch: int, spec: Any, spec_source: str) -> Roofline | None:
    """A GPU report's GEMM layers on its spec's roofline; None when the spec has no tensor-core rate
    for the report's dtype. Intensity = executed FLOPs per byte of the roof's memory level, achieved
    = executed FLOPs / latency. The level is HBM, or L2 under a stack that times a warm L2 (the
    `kernel` and `pytorch-eager` stacks repeat one call: operands that fit in L2 move no HBM bytes,
    so the L2 bandwidth is the roof they meet)."""
    fma = getattr(spec, "dense_fma_per_clk_per_sm", {}).get(report.dtype)
    if fma is None:
        return None
    peak = 2.0 * fma * spec.sms * spec.clock_hz
    sparse_peak = peak * spec.sparse_speedup if getattr(spec, "sparse_pattern", None) else None
    warm = spec.profile.warm_l2
    level, bandwidth = ("L2", spec.l2_bytes_per_clk * spec.clock_hz) if warm else ("HBM", spec.hbm_bytes_per_s)
    points = []
    for dense, estimates in ((False, report.estimates), (True, report.dense_estimates)):
        for e in estimates:
            moved = e.bytes_by_level.get(level.lower(), 0.0)
            if e.format == "memory" or not e.m or moved <= 0 or e.latency_s <= 0:
                continue
            points.append(RooflinePoint(layer=e.layer, format=e.format, dense=dense,
                                        intensity_flop_per_byte=e.flops_executed / moved,
                                        achieved_flops_per_s=e.flops_executed / e.latency_s))
    return Roofline(arch=report.arch, label=label, batch=batch, dtype=report.dtype, peak_flops_per_s=peak,
                    sparse_peak_flops_per_s=sparse_peak, bandwidth_bytes_per_s=bandwidth,
                    spec_source=spec_source, points=tuple(points), memory_level=level)


# ----------------------------------------------------------------------------- kernels to time here


def measure_pattern(p: Pattern) -> str | None:
    """The synthetic pattern that describes a trained layer, to time real kernels on its shape
    (None for a dense layer): an exact N:M, constant fan-in, removed channels, else its density."""
    if p.density >= 1.0 or p.nnz == 0:
        return None
    nm = best_nm(p.nm_envelope, NM_GROUPS)
    if nm is not None and not p.rows_removed and abs(p.density - nm[0] / nm[1]) < 1e-9:
        return f"{nm[0]}:{nm[1]}"
    if p.fan_in.constant and p.fan_in.max > 0 and not p.rows_removed:
        return f"fanin={p.fan_in.max}"
    if p.rows_removed:
        return f"channels={(p.rows - p.rows_removed) / p.rows:.4g}"
    return f"density={p.density:.4g}"


def natural_kernel(pattern: str) -> str:
    """The CPU kernel built for a pattern's structure (simsparse/kernels)."""
    if pattern.startswith("fanin="):
        return "condensed"
    if pattern.startswith("channels="):
        return "shrunk"
    return "nm" if ":" in pattern else "csr"


def largest_gemm_layers(report: Report, count: int) -> list[Estimate]:
    """The `count` GEMM layers of most dense FLOPs, as the network has them before any shrinking
    (the dense baseline's estimates): the shape a layer's mask, and so its measured pattern, describes."""
    gemms = [e for e in report.dense_estimates if e.format != "memory" and e.m]
    return sorted(gemms, key=lambda e: e.flops_dense, reverse=True)[:count]


# ----------------------------------------------------------------------------- validation summary


def _sig(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(f"{x:.6g}")


def validation_summary(vr: ValidationReport) -> dict[str, Any]:
    """The published-validation figures per arch x software stack x corpus, as plain data (what
    report.md cites; `accelerators/measurements/validation_summary.json` holds this, committed)."""
    from simsparse.validate import stats  # scipy (Spearman): only regenerating the summary pays for it

    roles = {c.name: c.role for c in vr.corpora}
    groups = []
    for g in stats.grouped(vr.points, ("arch", "software", "source"), metric="speedup"):
        arch, software, source = g.key
        s = g.summary
        groups.append({"arch": arch, "software": software, "source": source, "role": roles.get(source, "user"),
                       "n": s.n, "mape_speedup": _sig(s.mape_speedup), "mape_time": _sig(s.mape_time),
                       "sign_agreement": _sig(s.sign_agreement), "spearman": _sig(s.spearman)})
    skipped = Counter((n.source, n.reason) for n in vr.not_evaluated)
    groups.sort(key=lambda g: (g["arch"], g["software"], g["role"], g["source"]))
    return {"command": VALIDATION_COMMAND, "engine": vr.engine, "groups": groups,
            "not_evaluated": [{"source": s, "reason": r, "n": n} for (s, r), n in sorted(skipped.items())],
            "regenerate": "PYTHONPATH=. python benchmarks/bench_report_validation.py --write"}


def validation_summary_path() -> Path:
    return data_dir("accelerators") / "measurements" / VALIDATION_SUMMARY


def load_validation_summary() -> dict[str, Any]:
    """The committed summary, or {} when it does not ship (report.md then says so)."""
    path = validation_summary_path()
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {**data, "path": str(path)}


# ----------------------------------------------------------------------------- JSON and CSV


def to_json(data: ReportData) -> str:
    return json_text(data) + "\n"


def _structured(value: Any) -> bool:
    """A CSV cell that holds more than one value (a mapping, a sequence, a record): written as JSON."""
    return isinstance(value, (dict, list, tuple, Mapping)) or (is_dataclass(value) and not isinstance(value, type))


def records_csv(records: Sequence[Any], extra: Mapping[str, Any] | None = None) -> str:
    """One CSV line per record (its fields, plus `extra` {column: function of the record})."""
    buf = io.StringIO()
    if records:
        cols = [f.name for f in fields(records[0])] + list(extra or {})
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in records:
            vals = [getattr(r, f.name) for f in fields(r)] + [fn(r) for fn in (extra or {}).values()]
            w.writerow(["" if v is None else json.dumps(plain(v)) if _structured(v) else v for v in vals])
    return buf.getvalue()


def data_files(data: ReportData) -> dict[str, str]:
    """The files behind report.md: name -> text."""
    return {"report.json": to_json(data), "summary.csv": records_csv(data.rows),
            "layers.csv": records_csv(data.layers),
            "measured.csv": records_csv(data.measured, {"error": lambda r: r.error})}


# ----------------------------------------------------------------------------- per-arch and focus records


def what_if_notes(what_if: Sequence[str]) -> tuple[str, ...]:
    if not what_if:
        return ()
    return ("RigL-like unstructured masks (density=D) are left out here: they have no closed form and are drawn "
            "weight by weight; the trained RigL network above covers that family.",)


def arch_info(model: ArchModel, reports: Mapping[tuple, Report], *, engine: str) -> ArchInfo:
    """How one arch's numbers were obtained (`reports` keyed by (label, arch, batch))."""
    first = next(r for (_, a, _), r in reports.items() if a == model.name)
    return ArchInfo(name=model.name, kind=model.kind, source=model.source,
                    description=getattr(model.spec, "description", ""), engine=engine, software=first.software or None,
                    calibration=getattr(model.spec, "calibration", None), residual_policy=residual_policy_of(first))


def focus_data(focus: str | None, reports: Mapping[tuple, Report], models: Mapping[str, ArchModel], *,
               batch: int) -> dict[str, Any]:
    """ReportData fields of the focus network: its per-layer rows on every arch at `batch` and its
    roofline on the first GPU arch (`reports` keyed by (label, arch, batch))."""
    if focus is None:
        return {}
    mine = {a: r for (label, a, b), r in reports.items() if label == focus and b == batch}
    gpu = next((a for a in mine if models[a].kind == GPU_KIND), None)
    roof = (roofline_of(mine[gpu], label=focus, batch=batch, spec=models[gpu].spec, spec_source=models[gpu].source)
            if gpu else None)
    return {"focus": focus, "focus_batch": batch, "roofline": roof,
            "layers": tuple(row for r in mine.values() for row in layer_rows(r))}


def default_focus(rows: Sequence[Row], *, batch: int) -> str | None:
    """The trained sparse network with the highest mean speedup at `batch` (the one whose layers are
    shown), or None when there is none."""
    speedups: dict[str, list[float]] = {}
    for r in rows:
        if not r.synthetic and r.density < 1.0 and r.batch == batch:
            speedups.setdefault(r.label, []).append(r.speedup)
    return max(speedups, key=lambda k: sum(speedups[k]) / len(speedups[k]), default=None)


def checkpoint_labels(checkpoints: Sequence[str | Path], *, focus: str | None, out: str | Path | None) -> list[str]:
    """Each checkpoint's label (its file name without suffix), checked before any work: labels are
    unique, `focus` names one of them, `out` is not a file."""
    if not checkpoints:
        raise SimSparseError("report needs at least one checkpoint")
    labels = [Path(p).stem for p in checkpoints]
    twice = sorted({lab for lab in labels if labels.count(lab) > 1})
    if twice:
        raise SimSparseError(f"checkpoints share the name {twice[0]!r}; rename one (reports label them by file name)")
    if focus is not None and focus not in labels:
        raise SimSparseError(f"--focus {focus!r}: not one of the checkpoints ({', '.join(labels)})")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise SimSparseError(f"--out {out}: is a file; give a folder for report.md and its figures")
    return labels
