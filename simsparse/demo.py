"""`simsparse demo`: the main job end to end on built-in defaults, a scripted tour of `api` (it
sits beside the CLI, above api, and calls nothing else but report, plots and fileio).

1. Train one run of each structured-DST family on the built-in synthetic task (`cnn` of width 32, 90 %
   sparse where the method allows): SRigL (constant fan-in + ablation), N:M 2:4 reached by
   sparse-structure decay, Chase (channel removal), and RigL as the unstructured reference.
2. Inspect each checkpoint's masks (what structure did training really produce?).
3. Compare every checkpoint on the GPU 2:4 model, an N:M accelerator and this CPU.
4. A what-if on ResNet-50 at batch 64 with synthetic masks of each family's pattern, and the
   batch-1 linear layer where SRigL's condensed CPU kernel shines.
Checkpoints, reports (JSON/CSV) and a plot land in `out`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from simsparse import api, plots, report
from simsparse.fileio import write_atomic

RUNS = (
    ("rigl", {"method": "rigl", "sparsity": 0.9}),
    ("srigl", {"method": "srigl", "sparsity": 0.9}),
    ("nm-structure-decay-2to4", {"method": "nm-structure-decay", "sparsity": 0.5, "nm": "2:4"}),
    ("chase", {"method": "chase", "sparsity": 0.9}),
)
ARCHS = ("a100_2to4", "vegeta_like", "cpu_host")
WHAT_IF = (("dense", "dense"), ("SRigL-like fan-in 10 %", "fanin=0.1"), ("N:M 2:4", "2:4"), ("Chase-like channels", "channels=0.6"))


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def train_runs(*, out: Path, steps: int, progress: bool) -> list[Path]:
    paths = []
    for name, kw in RUNS:
        path = out / f"{name}.pt"
        res = api.train(model="cnn", model_options={"width": 32}, data="synthetic", steps=steps, batch_size=64,
                        out=path, seed=0, progress=progress, **kw)
        _say(f"  {name:26s} test accuracy {res.test_accuracy:.3f}  density {res.density:.3f}  "
             f"train FLOPs {res.train_flops_relative:.2f}x dense  -> {path}")
        paths.append(path)
    return paths


def run(*, out: Path, steps: int = 150, batch: int = 64, progress: bool | None = None) -> None:
    progress = sys.stderr.isatty() if progress is None else progress
    out.mkdir(parents=True, exist_ok=True)
    _say(f"[1/4] training {len(RUNS)} DST runs (cnn on synthetic data, {steps} steps each)")
    paths = train_runs(out=out, steps=steps, progress=progress)
    _say("\n[2/4] what structure did training produce?")
    for p in paths:
        s = api.inspect(path=p).summary
        _say(f"  {p.name:30s} density {s['density']:.3f}; 2:4-compliant layers {len(s['nm_2to4_layers'])}/{s['layers']}; "
             f"constant fan-in layers {len(s['constant_fan_in_layers'])}; channels removed {s['rows_removed']}")
    _say(f"\n[3/4] trained masks on {', '.join(ARCHS)} (batch {batch}; speedup vs dense on the same arch)")
    reports = api.compare(masks=[str(p) for p in paths], archs=ARCHS, batch=batch)
    _say(report.compare_table(reports))
    write_atomic(out / "compare.json", report.render_reports(reports, "json"), what="demo report")
    write_atomic(out / "compare.csv", report.render_reports(reports, "csv"), what="demo report")
    plots.speedup_plot(reports, out / "speedup.png")
    _say(f"\n[4/4] what-if: ResNet-50, batch {batch}, synthetic masks of each family's pattern (90 % / 2:4 / 40 % channels)")
    rows = []
    for label, pattern in WHAT_IF:
        for arch in ("a100_2to4", "h100_2to4", "systolic_128x128"):
            r = api.evaluate(arch=arch, workload="resnet50", pattern=pattern, batch=batch)
            rows.append([label, arch, f"{r.total.density:.3f}", f"{r.total.latency_s * 1e3:.3f} ms",
                         f"{r.dense_total.latency_s * 1e3:.3f} ms", f"{r.speedup_vs_dense:.2f}x"])
    _say(report.table(rows, ["pattern", "arch", "density", "latency", "dense", "speedup"]))
    _say("\nand the case SRigL's condensed layout was built for: one token through a 768->3072 layer, 90 % sparse, on this CPU")
    for pattern in ("fanin=0.1", "density=0.1", "2:4"):
        r = api.evaluate(arch="cpu_host", gemm="1,3072,768", pattern=pattern)
        e = r.estimates[0]
        _say(f"  {pattern:12s} kernel {e.format:9s} {e.latency_s * 1e6:8.1f} us vs dense {r.dense_total.latency_s * 1e6:8.1f} us "
             f"-> {r.speedup_vs_dense:.2f}x (model; `simsparse measure --device cpu --gemm 1,3072,768 --pattern {pattern}` times it)")
    _say(f"\nreports: {out / 'compare.json'}, {out / 'compare.csv'}, {out / 'speedup.png'}")
