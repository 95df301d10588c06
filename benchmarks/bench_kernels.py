"""CPU kernel speed, side by side in one run (fp32, this machine's thread count).

    python benchmarks/bench_kernels.py [--runs 3] [--min-time 0.3] [--threads N]

1. SRigL headline: constant fan-in at 90 % sparsity, batch 1, 768->3072 and 3072->768:
   condensed vs torch dense and vs csr (target: >= 3.4x dense, >= 2.5x csr; aim 5x).
   Also shown: csr through torch.sparse.mm (the batched CSR path) at batch 1, and scipy's CSR
   matvec (single-threaded): the "csr" of the issue may be either; the `csr` kernel is MKL's mv.
2. How the csr/dense, condensed/dense and dense_bf16/dense ratios evolve over batch 1..256, and
   where condensed stops beating dense (fp32, and the bf16 dense baseline: oneDNN, AMX here).
Each figure is the median over --runs full passes of the per-pass medians (the cores are shared).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict

import numpy as np
import scipy.sparse
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from simsparse.kernels import KERNELS  # noqa: E402
from simsparse.kernels.harness import machine_info, thread_count, time_callable  # noqa: E402
from simsparse.kernels.measure import measure_cases  # noqa: E402
from simsparse.kernels.suites import BATCHES, SRIGL_SHAPES, Case, fan_in_for  # noqa: E402
from simsparse.masks.synthetic import make_matrix  # noqa: E402

KERNEL_ORDER = ("dense", "csr", "condensed", "dense_bf16")
STAT = "median_s"   # --stat min: the fastest sample, robust when other processes share the cores


def one_pass(threads: int, min_time_s: float, sparsity: float, batches: tuple[int, ...]) -> dict:
    cases = [Case(m=b, n=n, k=k, pattern=f"fanin={fan_in_for(k, sparsity)}", kernels=KERNEL_ORDER)
             for (n, k) in SRIGL_SHAPES for b in batches]
    results, _ = measure_cases(cases, threads=threads, min_time_s=min_time_s)
    times = {(r.n, r.k, r.m, r.kernel): getattr(r, STAT) for r in results}
    with thread_count(threads):                      # CSR through sparse.mm at batch 1, for reference
        for (n, k) in SRIGL_SHAPES:
            mask = make_matrix(n, k, f"fanin={fan_in_for(k, sparsity)}", seed=0)
            prep = KERNELS.get("csr").prepare(torch.randn(n, k), mask)
            x_t = torch.randn(k, 1)
            stats = time_callable(lambda: torch.sparse.mm(prep.weight, x_t), min_time_s=min_time_s)
            times[(n, k, 1, "csr_spmm")] = getattr(stats, STAT)
            sp = scipy.sparse.csr_matrix((prep.weight.values().numpy(), prep.weight.col_indices().numpy(),
                                          prep.weight.crow_indices().numpy()), shape=(n, k))
            x1 = np.asarray(x_t[:, 0].numpy())
            stats = time_callable(lambda: sp @ x1, min_time_s=min_time_s)   # scipy's csr_matvec (1 thread)
            times[(n, k, 1, "csr_scipy")] = getattr(stats, STAT)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--sparsity", type=float, default=0.90)
    ap.add_argument("--stat", choices=("median", "min"), default="median")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)), help="comma list; 1 must be in it")
    args = ap.parse_args()
    global STAT
    STAT = f"{args.stat}_s"
    m = machine_info()
    print(f"# {m.cpu_model}, {m.usable_cpus} CPUs, {m.isa}, threads={args.threads}, fp32, "
          f"torch {torch.__version__}, runs={args.runs}, stat={args.stat}, min_time={args.min_time}s, load={os.getloadavg()[0]:.1f}")
    batches = tuple(int(b) for b in args.batches.split(","))
    passes = [one_pass(args.threads, args.min_time, args.sparsity, batches) for _ in range(args.runs)]
    runs: dict[tuple, list[float]] = defaultdict(list)
    for p in passes:
        for key, t in p.items():
            runs[key].append(t)
    med = {key: float(np.median(v)) for key, v in runs.items()}

    print(f"\n## {args.sparsity:.0%} constant fan-in, batch 1 ({args.stat} us, median over runs; ratio = other / condensed)")
    print(f"{'gemm':>12} {'dense':>9} {'csr(mv)':>9} {'csr(mm)':>9} {'scipy':>9} {'condensed':>9} {'vs dense':>9} "
          f"{'vs csr':>7} {'vs mm':>7} {'vs scipy':>8}")
    for (n, k) in SRIGL_SHAPES:
        d, c, s, cm, cs = (med[(n, k, 1, x)] for x in ("dense", "csr", "condensed", "csr_spmm", "csr_scipy"))
        print(f"{k:>5}->{n:<6} {d*1e6:9.1f} {c*1e6:9.1f} {cm*1e6:9.1f} {cs*1e6:9.1f} {s*1e6:9.1f} {d/s:8.2f}x "
              f"{c/s:6.2f}x {cm/s:6.2f}x {cs/s:7.2f}x")
        spread = [p[(n, k, 1, "dense")] / p[(n, k, 1, "condensed")] for p in passes]
        print(f"{'':>12} per-run condensed speedup vs dense: {', '.join(f'{r:.2f}' for r in spread)}")

    print("\n## speedup vs dense over batch (dense time / kernel time)")
    for (n, k) in SRIGL_SHAPES:
        print(f"{k}->{n}: {'batch':>6} {'dense us':>10} {'csr':>7} {'condensed':>9} {'dense_bf16':>10}")
        crossover = crossover_bf16 = None
        for b in batches:
            d = med[(n, k, b, "dense")]
            rc, rs = d / med[(n, k, b, "csr")], d / med[(n, k, b, "condensed")]
            rb = d / med[(n, k, b, "dense_bf16")]
            if rs < 1.0 and crossover is None:
                crossover = b
            if rs < rb and crossover_bf16 is None:
                crossover_bf16 = b
            print(f"{'':>{len(str(k)) + len(str(n)) + 4}}{b:>6} {d*1e6:10.1f} {rc:6.2f}x {rs:8.2f}x {rb:9.2f}x")
        print(f"    condensed (fp32) stops beating dense fp32 at batch: {crossover or f'never (up to {batches[-1]})'}; "
              f"dense bf16 at batch: {crossover_bf16 or f'never (up to {batches[-1]})'}")


if __name__ == "__main__":
    main()
