"""Plots (matplotlib, headless): speedup of each checkpoint on each architecture."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from simsparse.fileio import atomic_writer
from simsparse.records import Report


def speedup_plot(reports: Sequence[Report], path: Path) -> Path:
    """Grouped bars: one group per checkpoint/workload, one bar per arch; 1.0 = dense on that arch."""
    import matplotlib  # heavy (~0.5 s) and sets a backend: only when a plot is asked for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg"): headless

    labels = []
    archs = []
    for r in reports:
        src = Path(str(r.provenance.get("checkpoint") or r.provenance.get("workload") or "?")).stem
        if src not in labels:
            labels.append(src)
        if r.arch not in archs:
            archs.append(r.arch)
    width = 0.8 / max(1, len(archs))
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(labels) * max(1, len(archs)) / 2), 3.5))
    for j, arch in enumerate(archs):
        xs, ys = [], []
        for r in reports:
            if r.arch != arch:
                continue
            src = Path(str(r.provenance.get("checkpoint") or r.provenance.get("workload") or "?")).stem
            xs.append(labels.index(src) + j * width)
            ys.append(r.speedup_vs_dense)
        ax.bar(xs, ys, width=width, label=arch)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xticks([i + width * (len(archs) - 1) / 2 for i in range(len(labels))], labels, rotation=15)
    ax.set_ylabel("speedup vs dense (same arch)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        with atomic_writer(path, what="--plot", make_parents=True) as fh:
            fig.savefig(fh, format="png", dpi=120)
    finally:
        plt.close(fig)
    return path
