"""report.md: the records of a report (report_records.py) as Markdown, with the five findings
computed from them, its figures (plots.py) with data-driven captions, and the JSON/CSV behind it
(report_data.data_files), written so that a failure never leaves a half-written report: an old
report.md is removed first, the figures and data files are written atomically, and report.md is
written last (fileio.write_atomic).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from simsparse import plots
from simsparse.errors import SimSparseError
from simsparse.records import ErrorBand
from simsparse.fileio import write_atomic
from simsparse.report_data import data_files
from simsparse.report_records import ArchInfo, ReportData, Row

NA = "n/a"


# ----------------------------------------------------------------------------- numbers as text (one place)


def time_text(seconds: float | None) -> str:
    if seconds is None:
        return NA
    if seconds >= 1:
        return f"{seconds:.4g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.4g} ms"
    return f"{seconds * 1e6:.4g} µs"


def si_text(value: float | None, unit: str = "") -> str:
    if value is None:
        return NA
    if value == 0:
        return f"0 {unit}".rstrip()
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"),
                          (1e-6, "µ"), (1e-9, "n")):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}".rstrip()
    return f"{value:.4g} {unit}".rstrip()


def pct(x: float | None) -> str:
    return NA if x is None else f"{100 * x:.1f} %"


def pct0(x: float) -> str:
    return f"{100 * x:.0f} %"


def band_text(band: ErrorBand | None) -> str:
    """The latency band, 10th..90th percentile of validation residuals ("(prior)": borrowed)."""
    if band is None:
        return NA
    return f"{100 * band.latency_low:+.0f} % … {100 * band.latency_high:+.0f} %" + (" (prior)" if band.prior else "")


def alternatives_text(alts: Mapping[str, float] | None) -> str:
    """The other formats the arch ranked, each with its latency."""
    if not alts:
        return NA
    return ", ".join(f"{name} {time_text(seconds)}" for name, seconds in alts.items())


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- findings


def _training_line(data: ReportData) -> str:
    trained = [n for n in data.networks if not n.synthetic]
    known = [n for n in trained if n.accuracy is not None]
    if not known:
        return "Training: no test accuracy in the checkpoints' meta (not trained by simsparse?)."
    sparse = [n for n in known if n.density is not None and n.density < 1.0]
    dense = [n for n in known if n not in sparse]
    parts = [f"Training: {len(trained)} networks ({', '.join(sorted({n.workload for n in trained}))})"]
    if dense:
        parts.append("dense accuracy " + ", ".join(f"{n.accuracy:.3f}" for n in dense))
    if sparse:
        best = max(sparse, key=lambda n: n.accuracy)
        parts.append(f"sparse {min(n.accuracy for n in sparse):.3f}–{best.accuracy:.3f} at density "
                     f"{min(n.density for n in sparse):.2f}–{max(n.density for n in sparse):.2f}; "
                     f"most accurate sparse: {best.label} ({best.accuracy:.3f}, density {best.density:.3f})")
    return "; ".join(parts) + "."


def _structure_line(data: ReportData) -> str:
    parts = [f"{n.label} {n.structure.text()}" for n in data.networks
             if not n.synthetic and n.structure is not None and n.structure.sparse_layers]
    return "Structure found in the masks: " + ("; ".join(parts) if parts else "no sparse layers") + "."


def _best(rows: Sequence[Row], batch: int, arch: str) -> Row | None:
    pick = [r for r in rows if r.batch == batch and r.arch == arch and r.density < 1.0]
    return max(pick, key=lambda r: r.speedup) if pick else None


def _best_line(data: ReportData) -> str:
    rows = data.trained_rows()
    archs = list(dict.fromkeys(r.arch for r in rows))
    parts = []
    for arch in archs:
        picks = [_best(rows, b, arch) for b in data.batches]
        parts.append(f"{arch} " + " / ".join(
            NA if p is None else f"{p.label} {p.speedup:.2f}×" if p.speedup >= 1.005 else "none faster" for p in picks))
    batches = " / ".join(str(b) for b in data.batches)
    return f"Fastest sparse network vs dense on the same arch, batch {batches}: " + ("; ".join(parts) or "n/a") + "."


def _what_if_line(data: ReportData) -> str:
    rows = data.what_if_rows()
    if not rows:
        return "What-if: none asked for."
    batch = max(data.batches)
    parts = []
    for wl in dict.fromkeys(r.workload for r in rows):
        pick = [r for r in rows if r.workload == wl and r.batch == batch]
        if pick:
            hi, lo = max(pick, key=lambda r: r.speedup), min(pick, key=lambda r: r.speedup)
            parts.append(f"{wl} best {hi.label.removeprefix(wl + ' ')} on {hi.arch} {hi.speedup:.2f}×, worst "
                         f"{lo.label.removeprefix(wl + ' ')} on {lo.arch} {lo.speedup:.2f}×")
    return f"What-if (synthetic masks), batch {batch}: " + "; ".join(parts) + "."


def _evidence_line(data: ReportData) -> str:
    rows = data.trained_rows()
    sparse = [r for r in rows if r.density < 1.0]
    slower = [r for r in sparse if r.speedup < 1.0]
    parts = [f"{len(slower)} of {len(sparse)} sparse (network, arch, batch) cases run slower than dense"]
    if slower:
        parts[-1] += f" (median {pct0(sorted(r.overhead_share for r in slower)[len(slower) // 2])} of their time " \
                     "overhead-bound)"
    if data.measured:
        errs = sorted(abs(m.error) for m in data.measured)
        parts.append(f"CPU model vs {len(errs)} kernels timed here: MAPE {pct0(sum(errs) / len(errs))}, "
                     f"median {pct0(errs[len(errs) // 2])}")
    heldout = [g for g in data.validation.get("groups", ()) if g["role"] == "held-out"
               and g["arch"] in {a.name for a in data.archs} and g.get("mape_speedup") is not None]
    if heldout:
        n = sum(g["n"] for g in heldout)
        mape = sum(g["mape_speedup"] * g["n"] for g in heldout) / n
        parts.append(f"GPU model on {n} held-out published rows: speedup MAPE {pct0(mape)}")
    return "Evidence: " + "; ".join(parts) + "."


def findings(data: ReportData) -> tuple[str, ...]:
    """Five lines computed from the results: training, structure, best per arch, what-if, evidence."""
    return (_training_line(data), _structure_line(data), _best_line(data), _what_if_line(data),
            _evidence_line(data))


# ----------------------------------------------------------------------------- sections


SUMMARY_HEADER = ("network", "arch", "batch", "accuracy", "density (FLOP-weighted)", "structure", "FLOPs executed",
                  "off-chip bytes", "latency", "dense latency", "speedup", "energy", "formats",
                  "overhead-bound", "error band", "software")


def summary_cells(r: Row) -> list[str]:
    energy = "not modelled" if r.energy_j is None else f"{si_text(r.energy_j, 'J')} (dense {si_text(r.dense_energy_j, 'J')})"
    return [r.label, r.arch, str(r.batch), NA if r.accuracy is None else f"{r.accuracy:.3f}", f"{r.density:.3f}",
            r.structure, si_text(r.flops_executed), si_text(r.offchip_bytes, "B"), time_text(r.latency_s),
            time_text(r.dense_latency_s), f"{r.speedup:.3f}×", energy, r.formats, pct(r.overhead_share),
            band_text(r.error_band), r.software or "spec's own (not named)"]


def _networks(data: ReportData) -> str:
    rows = []
    for n in data.networks:
        if n.synthetic:
            continue
        s = n.structure
        nm = ", ".join(f"{k} ×{v}" for k, v in sorted(s.nm_layers.items())) if s and s.nm_layers else "none"
        rows.append([n.label, n.method or NA, n.workload, NA if n.steps is None else n.steps,
                     NA if n.accuracy is None else f"{n.accuracy:.3f}", NA if n.density is None else f"{n.density:.3f}",
                     f"{s.sparse_layers}/{s.layers}" if s else NA, nm,
                     f"{s.constant_fan_in_layers}/{s.sparse_layers}" if s else NA,
                     f"{s.rows_removed} / {s.cols_removed}" if s else NA, n.dense_layers, Path(n.source).name])
    return table(("network", "method", "workload", "steps", "test accuracy", "density", "sparse layers",
                  "tightest N:M per layer", "constant fan-in", "channels removed (out / in)", "kept dense",
                  "checkpoint"), rows)


def _layers(data: ReportData) -> str:
    rows = [[r.arch, r.layer, r.gemm, r.format, f"{r.density:.3f}", time_text(r.latency_s), time_text(r.dense_latency_s),
             f"{r.dense_latency_s / r.latency_s:.3f}×" if r.latency_s > 0 else NA, r.bound,
             alternatives_text(r.alternatives), r.shrunk or NA, "; ".join(r.notes) or "-"] for r in data.layers]
    return table(("arch", "layer", "m×n×k", "format", "density", "latency", "dense", "speedup", "bound",
                  "other formats", "shrunk shape", "model's notes"), rows)


def _measured(data: ReportData) -> str:
    if not data.measured:
        return data.measure_note or "No kernels were timed (no `cpu_host` in the archs, or `--no-measure`)."
    rows = [[m.network, m.layer, m.kernel, f"{m.m}×{m.n}×{m.k}", m.pattern, time_text(m.measured_s),
             time_text(m.iqr_s), time_text(m.modelled_s), f"{100 * m.error:+.1f} %", m.threads,
             f"{m.load_avg_1min:.2f}", f"{100 * m.noise:.0f} %" + (f" (noisy: {m.noisy})" if m.noisy else "")]
            for m in data.measured]
    errs = [abs(m.error) for m in data.measured]
    threads = sorted({m.threads for m in data.measured})
    head = (f"{len(errs)} kernels timed on this CPU (`simsparse measure`: median of repeated runs, warm cache, "
            f"{'/'.join(map(str, threads))} thread(s)), each beside the CPU model's estimate of the same GEMM with the "
            f"same kernel and thread count (`simsparse evaluate --arch cpu_host --gemm M,N,K --pattern P --kernel K "
            f"--set software.threads=T`); one thread, because on a shared machine two-thread timings of "
            f"microsecond kernels mostly measure the scheduler. The masks are "
            f"**synthetic**, drawn with the pattern that describes the trained layer (constant fan-in, N:M, "
            f"kept channels or density). Mean absolute error {pct(sum(errs) / len(errs))}. "
            f"A 1-minute load average above the CPU count means other processes shared the cores; "
            f"noise is the samples' IQR/median; a timing marked noisy was kept (`--allow-noisy`; `demo` keeps them).")
    return "\n\n".join(filter(None, [head, data.measure_note, table(
        ("network", "layer", "kernel", "m×n×k", "pattern (synthetic)", "measured", "IQR", "modelled", "error",
         "threads", "load (1 min)", "noise"), rows)]))


def _validation_text(arch: ArchInfo, validation: Mapping[str, Any]) -> str:
    groups = [g for g in validation.get("groups", ()) if g["arch"] == arch.name]
    if groups:
        return "; ".join(f"{g['role']} {g['source']} ({g['software']} stack, {g['n']} rows): speedup MAPE "
                         f"{pct(g['mape_speedup'])}, time MAPE {pct(g['mape_time'])}, sign right "
                         f"{pct(g['sign_agreement'])}" for g in groups)
    if arch.kind == "cpu_simd":
        return ("scored against the kernels timed on this machine (section 'Measured beside modelled'); "
                "`simsparse validate --device cpu` runs the full suite")
    if arch.kind == "nm_systolic":
        return ("no measured corpus ships for this kind: checked against SCALE-Sim's equations on hand cases "
                "(`benchmarks/bench_systolic.py`), not against silicon; energy tables are literature estimates")
    return "no published measurements for this spec in the shipped corpora"


def _provenance(data: ReportData) -> str:
    rows = []
    for a in data.archs:
        calib = NA if a.calibration is None else (a.calibration or "documented defaults (uncalibrated)")
        rows.append([a.name, a.kind, a.description or NA, a.engine, a.software or "spec's own (not named)",
                     f"`{a.source}`", calib, a.residual_policy or NA, _validation_text(a, data.validation)])
    out = [table(("arch", "kind", "what it models", "engine", "software stack", "spec", "calibration",
                  "residual policy", "validation"), rows)]
    v = data.validation
    if v:
        out.append(f"Validation figures: `{v.get('command')}` (engine {v.get('engine')}), committed in "
                   f"`{v.get('path')}`; regenerate with `{v.get('regenerate')}`. MAPE is over published rows; "
                   "dev rows may have been fitted on, held-out rows never.")
        skipped = [f"{s['n']} rows of {s['source']} ({s['reason']})" for s in v.get("not_evaluated", ())]
        if skipped:
            out.append("Not evaluated: " + "; ".join(skipped) + ".")
    else:
        out.append("No validation summary ships with this installation: validation figures are n/a.")
    return "\n\n".join(out)


# ----------------------------------------------------------------------------- figures and captions


def _pareto_caption(data: ReportData) -> str:
    rows = [r for r in data.trained_rows() if r.accuracy is not None and r.batch == max(data.batches)]
    best = max(rows, key=lambda r: r.speedup)
    return (f"Each panel is one arch: further right runs faster than the dense network on that arch, higher is more "
            f"accurate, and the dotted line joins the networks nothing beats on both at batch {best.batch} (the "
            f"fastest there is {best.label} on {best.arch}, {best.speedup:.2f}× at accuracy {best.accuracy:.3f}).")


def _heatmap_caption(data: ReportData) -> str:
    rows = data.trained_rows()
    hi, lo = max(rows, key=lambda r: r.speedup), min(rows, key=lambda r: r.speedup)
    return (f"Blue cells run faster than the dense network on the same arch and red cells slower: the best cell is "
            f"{hi.label} on {hi.arch} at batch {hi.batch} ({hi.speedup:.2f}×), the worst {lo.label} on {lo.arch} at "
            f"batch {lo.batch} ({lo.speedup:.2f}×).")


def _layers_caption(data: ReportData) -> str:
    gemm = [r for r in data.layers if r.gemm != "-"]
    best = max(gemm, key=lambda r: r.dense_latency_s - r.latency_s, default=None)
    worst = min(gemm, key=lambda r: r.dense_latency_s - r.latency_s, default=None)
    if best is None or best.latency_s == best.dense_latency_s == worst.latency_s == worst.dense_latency_s:
        return f"Compare each blue bar with the grey dense bar beside it: no GEMM layer of {data.focus} changes here."
    return (f"Compare each blue bar with the grey dense bar beside it: the largest saving is {best.layer} on "
            f"{best.arch} ({time_text(best.dense_latency_s)} → {time_text(best.latency_s)}, {best.format}), the "
            f"largest loss {worst.layer} on {worst.arch} ({time_text(worst.dense_latency_s)} → "
            f"{time_text(worst.latency_s)}, {worst.format}).")


def _roofline_caption(data: ReportData) -> str:
    roof = data.roofline
    sparse = [p for p in roof.points if not p.dense]
    low = sum(p.achieved_flops_per_s < 0.1 * roof.peak_flops_per_s for p in sparse)
    ridge = roof.peak_flops_per_s / roof.bandwidth_bytes_per_s
    return (f"Layers left of the ridge ({ridge:.0f} FLOP per {roof.memory_level} byte) are bandwidth-bound and those near the flat lines "
            f"compute-bound; points far below both lose to overheads, padding or tiling: {low} of {len(sparse)} "
            f"layers of {roof.label} reach under 10 % of the dense peak (peaks and bandwidth from `{roof.spec_source}`).")


def _measured_caption(data: ReportData) -> str:
    inside = sum(abs(m.error) <= 0.5 for m in data.measured)
    return (f"Points on the diagonal are modelled exactly and the grey band is ±50 %: {inside} of "
            f"{len(data.measured)} kernels timed here fall inside it.")


def draw_figures(data: ReportData, out: Path) -> list[tuple[str, str, str]]:
    """Draw every figure the data allows: (file name, title, caption) per figure drawn."""
    trained = data.trained_rows()
    figs: list[tuple[str, Callable[[Path], Path | None], str, Callable[[ReportData], str]]] = [
        ("pareto.png", lambda p: plots.pareto_plot(trained, p), "Accuracy vs speedup, per arch", _pareto_caption),
        ("heatmap.png", lambda p: plots.heatmap_plot(trained, p), "Speedup, network × arch, per batch",
         _heatmap_caption),
        ("layers.png", lambda p: plots.layer_bars_plot(data.layers, label=data.focus or "", batch=data.focus_batch or 0,
                                                        path=p),
         f"Per-layer latency of {data.focus} at batch {data.focus_batch}", _layers_caption),
        ("roofline.png", lambda p: plots.roofline_plot(data.roofline, p) if data.roofline else None,
         f"Roofline of {data.roofline.arch if data.roofline else 'a GPU'}", _roofline_caption),
        ("measured.png", lambda p: plots.measured_plot(data.measured, p), "CPU model beside measured kernels",
         _measured_caption),
    ]
    drawn = []
    for name, draw, title, caption in figs:
        if draw(out / name) is not None:
            drawn.append((name, title, caption(data)))
    return drawn


# ----------------------------------------------------------------------------- the document


def render(data: ReportData, figures: Sequence[tuple[str, str, str]]) -> str:
    trained, what_if = data.trained_rows(), data.what_if_rows()
    parts = [f"# {data.title}",
             "What these masks do on this hardware: every number is an estimate of the named arch model "
             f"(engine {', '.join(sorted({a.engine for a in data.archs}))}) beside the dense network on the "
             "same arch, except the section 'Measured beside modelled', which times real kernels here. "
             "\"n/a\" means the build does not model that figure; nothing is filled in by hand.",
             "## Findings", "\n".join(f"{i}. {line}" for i, line in enumerate(findings(data), 1))]
    if trained:
        parts += ["## Summary: trained networks × arch × batch", table(SUMMARY_HEADER, [summary_cells(r) for r in trained]),
                  "## Networks and the structure training produced", _networks(data)]
    if what_if:
        parts += ["## What-if: shipped workloads with each family's pattern (synthetic masks)",
                  "These masks are **synthetic** (closed-form patterns, no training): what each family's structure "
                  "would buy on a full-size network. " + " ".join(data.notes),
                  table(SUMMARY_HEADER, [summary_cells(r) for r in what_if])]
    parts.append("## Figures")
    for name, title, caption in figures:
        parts += [f"### {title}", f"![{title}]({name})", f"*{caption}*"]
    if data.layers:
        parts += [f"## Per-layer: {data.focus} at batch {data.focus_batch}", _layers(data)]
    parts += ["## Measured beside modelled (this CPU)", _measured(data),
              "## How each number was obtained", _provenance(data),
              "Files behind this report: " + ", ".join(f"`{n}`" for n in data_files(data)) + "."]
    return "\n\n".join(parts) + "\n"


def write_report(data: ReportData, out: str | Path) -> Path:
    """Write DIR/report.md with its figures and data files; report.md last, so a failure never
    leaves a report.md that does not match the files beside it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SimSparseError(f"--out {out}: is a file; give a folder for report.md and its figures")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").unlink(missing_ok=True)
    for name, text in data_files(data).items():
        write_atomic(out / name, text, what="report data")
    figures = draw_figures(data, out)
    return write_atomic(out / "report.md", render(data, figures), what="report")


def closing_lines(data: ReportData, out: Path) -> str:
    """What `simsparse report` and the demo print at the end: where the report is, and the findings."""
    return "\n".join([f"report: {out / 'report.md'}"] + [f"  {line}" for line in findings(data)])
