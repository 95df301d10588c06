"""Plots (matplotlib, headless), each with a title and units on its axes: speedup bars (`compare
--plot`), and the figures of report.md: accuracy vs speedup per arch, a speedup heatmap, per-layer
latency bars, a GPU roofline, and the CPU model beside measured kernels. Each writes one PNG
atomically (temp file + rename) and returns its path; the captions are report_md's.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from simsparse.fileio import atomic_writer
from simsparse.records import Report
from simsparse.report_records import LayerRow, MeasuredRow, Roofline, Row

DPI = 110


def _pyplot() -> Any:
    import matplotlib  # heavy (~0.5 s) and sets a backend: only when a plot is asked for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg"): headless

    return plt


def _save(fig: Any, path: Path) -> Path:
    """Write the figure to `path` atomically (fileio: never a half-written PNG, never through a link)."""
    plt = _pyplot()
    try:
        with atomic_writer(path, what="plot", make_parents=True) as fh:
            fig.savefig(fh, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _short(layer: str) -> str:
    return layer.removesuffix(".weight")


def speedup_plot(reports: Sequence[Report], path: Path) -> Path:
    """Grouped bars: one group per checkpoint/workload, one bar per arch; 1.0 = dense on that arch."""
    plt = _pyplot()
    sources = [Path(str(r.provenance.get("checkpoint") or r.provenance.get("workload") or "?")).stem for r in reports]
    labels, archs = list(dict.fromkeys(sources)), list(dict.fromkeys(r.arch for r in reports))
    width = 0.8 / max(1, len(archs))
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(labels) * max(1, len(archs))), 3.6), layout="constrained")
    for j, arch in enumerate(archs):
        xs, ys = [], []
        for r, src in zip(reports, sources):
            if r.arch == arch:
                xs.append(labels.index(src) + j * width)
                ys.append(r.speedup_vs_dense)
        ax.bar(xs, ys, width=width, label=arch)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks([i + width * (len(archs) - 1) / 2 for i in range(len(labels))], labels, rotation=15)
    ax.set_ylabel("speedup vs dense on the same arch (×)")
    ax.set_title("Speedup of each mask on each architecture")
    ax.legend(fontsize=8)
    return _save(fig, path)


def _grid(plt: Any, n: int, *, width: float = 4.6, height: float = 3.6) -> tuple[Any, list]:
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    flat = [ax for line in axes for ax in line]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def pareto_plot(rows: Sequence[Row], path: Path) -> Path | None:
    """Accuracy vs speedup per arch (trained networks; filled = largest batch, hollow = smallest),
    with the Pareto front of the largest batch. None when no row carries an accuracy."""
    rows = [r for r in rows if r.accuracy is not None]
    if not rows:
        return None
    plt = _pyplot()
    archs = list(dict.fromkeys(r.arch for r in rows))
    batches = sorted({r.batch for r in rows})
    fig, axes = _grid(plt, len(archs))
    for ax, arch in zip(axes, archs):
        for b in batches:
            pick = [r for r in rows if r.arch == arch and r.batch == b]
            filled = b == batches[-1]
            ax.scatter([r.speedup for r in pick], [r.accuracy for r in pick], s=36, label=f"batch {b}",
                       facecolors=None if filled else "none", edgecolors="C0" if filled else "C1")
            if filled:
                for r in pick:
                    ax.annotate(r.label, (r.speedup, r.accuracy), fontsize=7, xytext=(3, 3), textcoords="offset points")
                front, best = [], -1.0
                for r in sorted(pick, key=lambda r: (-round(r.speedup, 6), -r.accuracy)):
                    if r.accuracy > best:
                        front.append(r)
                        best = r.accuracy
                ax.plot([r.speedup for r in front], [r.accuracy for r in front], color="C0", lw=0.8, ls=":")
        ax.axvline(1.0, color="k", lw=0.6, ls="--")
        ax.set_title(arch, fontsize=10)
        ax.set_xlabel("speedup vs dense (×)")
        ax.set_ylabel("test accuracy (fraction)")
        ax.legend(fontsize=7)
    fig.suptitle("Accuracy vs speedup per arch (dotted: Pareto front at the largest batch)")
    return _save(fig, path)


def heatmap_plot(rows: Sequence[Row], path: Path) -> Path | None:
    """Speedup (×) network × arch, one panel per batch; colour on a log scale centred at 1×."""
    if not rows:
        return None
    plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm  # matplotlib: only when a plot is drawn

    labels = list(dict.fromkeys(r.label for r in rows))
    archs = list(dict.fromkeys(r.arch for r in rows))
    batches = sorted({r.batch for r in rows})
    fig, axes = plt.subplots(1, len(batches), figsize=(1.2 * len(archs) * len(batches) + 3, 0.45 * len(labels) + 2),
                             squeeze=False, layout="constrained")
    value = {(r.label, r.arch, r.batch): r.speedup for r in rows}
    span = max(abs(math.log2(v)) for v in value.values() if v > 0) or 1.0
    for ax, b in zip(axes[0], batches):
        grid = [[math.log2(value[(lab, a, b)]) if value.get((lab, a, b), 0) > 0 else float("nan") for a in archs]
                for lab in labels]
        im = ax.imshow(grid, cmap="RdBu", norm=TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span), aspect="auto")
        for i, lab in enumerate(labels):
            for j, a in enumerate(archs):
                if (lab, a, b) in value:
                    ax.text(j, i, f"{value[(lab, a, b)]:.2f}×", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(archs)), archs, rotation=20, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(f"batch {b}", fontsize=10)
    fig.colorbar(im, ax=list(axes[0]), label="log2(speedup vs dense)", shrink=0.8)
    fig.suptitle("Speedup vs dense on the same arch (×), network × arch")
    return _save(fig, path)


def layer_bars_plot(layers: Sequence[LayerRow], *, label: str, batch: int, path: Path) -> Path | None:
    """Per-layer latency (µs) of one network, sparse beside dense, one panel per arch."""
    if not layers:
        return None
    plt = _pyplot()
    archs = list(dict.fromkeys(r.arch for r in layers))
    fig, axes = _grid(plt, len(archs), width=4.6)
    for ax, arch in zip(axes, archs):
        pick = [r for r in layers if r.arch == arch]
        xs = range(len(pick))
        ax.bar([x - 0.2 for x in xs], [r.dense_latency_s * 1e6 for r in pick], width=0.4, label="dense", color="0.7")
        ax.bar([x + 0.2 for x in xs], [r.latency_s * 1e6 for r in pick], width=0.4, label=label, color="C0")
        ax.set_xticks(list(xs), [_short(r.layer) for r in pick], rotation=60, fontsize=7, ha="right")
        ax.set_ylabel("latency (µs)")
        ax.set_title(arch, fontsize=10)
        ax.legend(fontsize=7)
    fig.suptitle(f"Per-layer latency of {label} at batch {batch}, beside the dense baseline")
    return _save(fig, path)


def roofline_plot(roof: Roofline, path: Path) -> Path:
    """Log-log roofline: ceilings from the spec, each GEMM layer at its intensity and achieved rate."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    xs = [p.intensity_flop_per_byte for p in roof.points] or [1.0]
    lo, hi = min(xs) / 4, max(max(xs) * 4, 4 * roof.peak_flops_per_s / roof.bandwidth_bytes_per_s)
    grid = [lo * (hi / lo) ** (i / 200) for i in range(201)]
    tera = 1e12
    ax.plot(grid, [min(roof.peak_flops_per_s, roof.bandwidth_bytes_per_s * x) / tera for x in grid], color="k",
            lw=1.2, label=f"dense peak {roof.peak_flops_per_s / tera:.0f} TFLOP/s, "
                          f"{roof.memory_level} {roof.bandwidth_bytes_per_s / 1e12:.2f} TB/s")
    if roof.sparse_peak_flops_per_s:
        ax.plot(grid, [min(roof.sparse_peak_flops_per_s, roof.bandwidth_bytes_per_s * x) / tera for x in grid],
                color="k", lw=0.8, ls="--", label=f"2:4 sparse peak {roof.sparse_peak_flops_per_s / tera:.0f} TFLOP/s")
    formats = list(dict.fromkeys(p.format for p in roof.points if not p.dense))
    for i, fmt in enumerate(formats):
        pts = [p for p in roof.points if not p.dense and p.format == fmt]
        ax.scatter([p.intensity_flop_per_byte for p in pts], [p.achieved_flops_per_s / tera for p in pts],
                   color=f"C{i}", s=30, label=f"{roof.label} layers run {fmt}", zorder=3)
    dense = [p for p in roof.points if p.dense]
    ax.scatter([p.intensity_flop_per_byte for p in dense], [p.achieved_flops_per_s / tera for p in dense],
               facecolors="none", edgecolors="0.4", s=30, label="dense baseline layers", zorder=2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"arithmetic intensity (executed FLOP per {roof.memory_level} byte)")
    ax.set_ylabel("achieved TFLOP/s (executed FLOPs / latency)")
    ax.set_title(f"Roofline of {roof.arch} ({roof.dtype}): {roof.label} at batch {roof.batch}", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def measured_plot(measured: Sequence[MeasuredRow], path: Path) -> Path | None:
    """Modelled vs measured kernel time (µs, log-log) with the y = x line and a ±50 % band."""
    if not measured:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.4), layout="constrained")
    kernels = list(dict.fromkeys(m.kernel for m in measured))
    for i, kern in enumerate(kernels):
        pick = [m for m in measured if m.kernel == kern]
        ax.scatter([m.measured_s * 1e6 for m in pick], [m.modelled_s * 1e6 for m in pick], color=f"C{i}", s=30,
                   label=kern, zorder=3)
    vals = [m.measured_s * 1e6 for m in measured] + [m.modelled_s * 1e6 for m in measured]
    lo, hi = min(vals) / 2, max(vals) * 2
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8, label="model = measurement")
    ax.fill_between([lo, hi], [lo * 0.5, hi * 0.5], [lo * 1.5, hi * 1.5], color="0.85", label="±50 %", zorder=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured median time on this CPU (µs)")
    ax.set_ylabel("CPU model's estimate (µs)")
    ax.set_title("CPU model beside kernels measured here", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, path)
