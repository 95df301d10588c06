"""Channel sparsity end to end (issue 13), measured and printed side by side in one run:

1. FLOPs cross-check: the physically shrunk PyTorch model (simsparse's model definitions fitted to
   the shrunk state_dict: graph.shrink_state + models.resize, on the meta device) counted by
   torch.utils.flop_counter.FlopCounterMode, beside simsparse's flops_executed of the shrunk
   network before padding (the cpu_simd kind, which pads nothing). ResNet-50 (224x224) with
   channels=0.6 under prune-skip, and BERT-base (128 tokens) with channels=0.6 (its MLP and pooler
   groups) plus 4 of the 12 heads of every layer removed. Target: within 0.5 %.
2. ResNet-50 channels=0.6 under prune-skip on a100_2to4, h100_2to4, rtx2080ti, systolic_128x128 and
   cpu_host, at batch 2 (Chase's latency setting, 2080 Ti) and 64: the FLOPs ratio, the executed
   ratio (padding included), the speedup, and where the time goes (GEMM vs memory-bound ops, layers
   bound by launch/host overhead). The GPUs run under `--software pytorch-eager` (Chase timed eager
   PyTorch), each beside the `kernel` stack (the libraries alone, no host time).
   The Chase-like network (residual groups kept: channels=0.6,skip=keep) on rtx2080ti beside it.
3. A Chase checkpoint trained by `simsparse train --method chase` on the cnn (width 32, synthetic
   data, 150 steps; or --chase CKPT): per arch, speedup with the coupled shrink vs without
   (--no-shrink), and the parameters/FLOPs `simsparse shrink` reports.

Run: PYTHONPATH=. python benchmarks/bench_channels.py [--chase CKPT] [--steps N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # this checkout's simsparse, not an installed one

from simsparse import api  # noqa: E402
from simsparse.archs import load_arch  # noqa: E402
from simsparse.graph.lower import layer_works  # noqa: E402
from simsparse.graph.shrink import plan, removal_of_pattern, Removal  # noqa: E402
from simsparse.graph.shrink_heads import find_blocks  # noqa: E402
from simsparse.graph.shrink_state import shrink_state  # noqa: E402
from simsparse.graph.synthetic import channel_network  # noqa: E402
from simsparse.graph.tracing import trace  # noqa: E402
from simsparse.masks.synthetic import parse_pattern  # noqa: E402
from simsparse.models import build_model, example_inputs  # noqa: E402
from simsparse.models.resize import fit_to_state  # noqa: E402
from simsparse.report import table  # noqa: E402

ARCHS = ("a100_2to4", "h100_2to4", "rtx2080ti", "systolic_128x128", "cpu_host")
GPUS = ("a100_2to4", "h100_2to4", "rtx2080ti")


# ----------------------------------------------------------------------------- 1. FLOPs cross-check


def counted_flops(model, inputs) -> int:
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    return counter.get_total_flops()


def _heads_removed(wl, per_block: int) -> dict[str, Removal]:
    """The value rows of the first `per_block` heads of every attention block (whole heads)."""
    out = {}
    for b in find_blocks(wl):
        v = wl.op(b.value)
        out[b.value] = Removal(rows=frozenset(b.rows_of_units(v, set(range(per_block)))
                                              & set(range(v.weight_shape[0]))))
    return out


def cross_check(name, num_classes, shape, pattern, *, heads: int = 0, batch: int = 2) -> list:
    rebuild = lambda: build_model(name, num_classes=num_classes, input_shape=shape)  # noqa: E731
    with torch.device("meta"):
        model = rebuild().eval()
        inputs = example_inputs(name, shape, batch=batch, device="meta")
    wl = trace(model, inputs, name=name)
    removals = {n: removal_of_pattern(p) for n, p in channel_network(wl, parse_pattern(pattern), seed=0).items()}
    removals.update(_heads_removed(wl, heads) if heads else {})
    ns = plan(wl, removals, policy="prune-skip")
    with torch.device("meta"):
        small = fit_to_state(rebuild(), shrink_state(model.state_dict(), ns)).eval()
    cpu = load_arch("spr_socket")
    rows = []
    for label, geometry, net in (("dense", wl, model), ("shrunk", ns.workload, small)):
        works = layer_works(geometry, batch=batch, dtype="fp32", masks={})
        ours = api.run_model(model=cpu, works=works, engine="analytic", dtype="fp32").total.flops_executed
        torch_flops = counted_flops(net, inputs)
        rows.append([name, f"{pattern}" + (f" + {heads} heads/layer" if heads else ""), label, f"{ours / 1e9:.3f}",
                     f"{torch_flops / 1e9:.3f}", f"{(ours - torch_flops) / torch_flops:+.3%}"])
    return rows


# ----------------------------------------------------------------------------- 2. ResNet-50 per arch


def _share(report, kind: str, which: str) -> float:
    ests = report.estimates if which == "model" else report.dense_estimates
    total = sum(e.latency_s for e in ests)
    return sum(e.latency_s for e in ests if (e.format == "memory") == (kind == "memory")) / total


def _why(r, r_kernel) -> str:
    t, d = r.total, r.dense_total
    flops = t.flops_effective / d.flops_dense
    executed = t.flops_executed / d.flops_executed
    over = sum(e.bound == "overhead" for e in r.estimates)
    mem_s, mem_d = (sum(e.latency_s for e in ests if e.format == "memory") for ests in (r.estimates, r.dense_estimates))
    parts = []
    if executed > flops * 1.05:
        parts.append(f"padding: executes {executed / flops:.2f}x the shrunk FLOPs")
    parts.append(f"memory ops {mem_d / d.latency_s:.0%} of dense time, shrink {mem_d / max(mem_s, 1e-12):.2f}x")
    if over:
        parts.append(f"{over}/{len(r.estimates)} layers overhead-bound")
    if r_kernel is not None:
        parts.append(f"kernel stack {r_kernel.speedup_vs_dense:.2f}x")
    return "; ".join(parts)


def per_arch(pattern: str, archs, batches) -> list:
    rows = []
    for arch in archs:
        for batch in batches:
            gpu = arch in GPUS
            r = api.evaluate(arch=arch, workload="resnet50", pattern=pattern, batch=batch,
                             software="pytorch-eager" if gpu else None)
            k = (api.evaluate(arch=arch, workload="resnet50", pattern=pattern, batch=batch, software="kernel")
                 if gpu else None)
            t, d = r.total, r.dense_total
            rows.append([arch, batch, f"{t.flops_effective / d.flops_dense:.3f}", f"{t.flops_executed / d.flops_executed:.3f}",
                         f"{d.latency_s * 1e3:.3f}", f"{t.latency_s * 1e3:.3f}", f"{r.speedup_vs_dense:.2f}x",
                         f"{d.flops_dense / t.flops_effective:.2f}x", _why(r, k)])
    return rows


# ----------------------------------------------------------------------------- 3. a trained Chase checkpoint


def chase_rows(ckpt: Path, batch: int) -> tuple[list, dict]:
    rows = []
    for arch in ARCHS:
        shrunk = api.evaluate(arch=arch, mask=str(ckpt), batch=batch)
        plain = api.evaluate(arch=arch, mask=str(ckpt), batch=batch, shrink=False)
        rows.append([arch, batch, f"{shrunk.total.flops_executed / shrunk.dense_total.flops_executed:.3f}",
                     f"{plain.speedup_vs_dense:.2f}x", f"{shrunk.speedup_vs_dense:.2f}x"])
    with tempfile.TemporaryDirectory() as tmp:
        summary = api.shrink(path=ckpt, out=Path(tmp) / "small.pt")
    return rows, summary


def train_chase(out: Path, steps: int) -> Path:
    res = api.train(method="chase", model="cnn", model_options={"width": 32}, data="synthetic", sparsity=0.9,
                    steps=steps, batch_size=64, out=out, seed=0, progress=False)
    print(f"trained {out}: test accuracy {res.test_accuracy:.3f}, density {res.density:.3f}, "
          f"{sum(len(v) for v in res.removed_channels.values())} channels removed")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chase", help="a Chase checkpoint (default: train one)")
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args()
    t0 = time.time()
    print("1. FLOPs: simsparse flops_executed before padding (cpu kind) vs FlopCounterMode on the physically "
          "shrunk model (GFLOPs, batch 2)")
    rows = cross_check("resnet50", 1000, (3, 224, 224), "channels=0.6")
    rows += cross_check("bert_base", 2, (128,), "channels=0.6", heads=4)
    print(table(rows, ["model", "pattern", "network", "simsparse", "FlopCounterMode", "error"]))

    print("\n2. ResNet-50, channels=0.6 under prune-skip (speedup vs the original dense network on the same arch)")
    head = ["arch", "batch", "FLOPs ratio", "executed ratio", "dense ms", "shrunk ms", "speedup", "1/FLOPs", "why"]
    print(table(per_arch("channels=0.6", ARCHS, (2, 64)), head))
    print("\n   Chase-like (residual groups kept: channels=0.6,skip=keep)")
    print(table(per_arch("channels=0.6,skip=keep", ("rtx2080ti", "a100_2to4"), (2, 64)), head))

    print("\n3. A Chase checkpoint (cnn, synthetic data): speedup per arch without and with the coupled shrink")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(args.chase) if args.chase else train_chase(Path(tmp) / "chase.pt", args.steps)
        rows, summary = chase_rows(ckpt, 64)
        rows += chase_rows(ckpt, 2)[0]
    print(table(rows, ["arch", "batch", "executed ratio", "unshrunk (--no-shrink)", "shrunk (default)"]))
    print(f"simsparse shrink: parameters {summary['parameters_before']:,} -> {summary['parameters_after']:,}, "
          f"FLOPs per sample {summary['flops_per_sample_before']:,} -> {summary['flops_per_sample_after']:,} "
          f"({summary['channels_removed']} channels removed in {summary['groups_shrunk']} groups)")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
