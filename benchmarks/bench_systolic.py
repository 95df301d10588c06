"""Speed and self-consistency of the nm_systolic engines on ResNet-50 at batch 1.

    python benchmarks/bench_systolic.py [--arch systolic_32x32] [--repeats 3]

Prints, for a dense and a synthetic sparse ResNet-50 (every conv/linear masked N:M or constant
fan-in), the wall time of planning + the cycle engine (target <= 2 s on the 32x32 array), the
totals of both engines and their largest per-layer disagreement. Layers come from the catalog
via simsparse.graph.lower.layer_works; without it, from the hard-coded conv GEMM list below.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from simsparse.archs import load_arch
from simsparse.engines import estimate
from simsparse.graph.lower import gemm_work
from simsparse.records import Gemm, LayerWork, sum_estimates

# ResNet-50 (torchvision v1.5, 224x224) conv GEMMs at batch 1: (m = Ho*Wo, n = Cout, k = Cin*kh*kw, repeats)
RESNET50_GEMMS = [
    (12544, 64, 147, 1),
    (3136, 64, 64, 1), (3136, 64, 576, 3), (3136, 256, 64, 4), (3136, 64, 256, 2),
    (3136, 128, 256, 1), (784, 128, 1152, 4), (784, 512, 128, 4), (784, 512, 256, 1), (784, 128, 512, 3),
    (784, 256, 512, 1), (196, 256, 2304, 6), (196, 1024, 256, 6), (196, 1024, 512, 1), (196, 256, 1024, 5),
    (196, 512, 1024, 1), (49, 512, 4608, 3), (49, 2048, 512, 3), (49, 2048, 1024, 1), (49, 512, 2048, 2),
    (1, 1000, 2048, 1),
]


def fallback_works(dtype: str) -> list[LayerWork]:
    out = []
    for i, (m, n, k, reps) in enumerate(RESNET50_GEMMS):
        for r in range(reps):
            out.append(LayerWork(name=f"gemm{i}.{r}", kind="gemm", op_kind="conv", gemm=Gemm(m, n, k, dtype)))
    return out


def resnet50_works(dtype: str, pattern: str | None) -> list[LayerWork]:
    try:
        from simsparse.graph.catalog import load_workload
        from simsparse.graph.lower import layer_works
        from simsparse.masks.synthetic import make_mask
    except ImportError:
        works = fallback_works(dtype)
        return works if pattern is None else [_masked(w, pattern) for w in works]
    wl = load_workload("resnet50")
    masks = {} if pattern is None else {op.name: make_mask(op.weight_shape, pattern, seed=i)
                                        for i, op in enumerate(wl.gemm_ops) if op.weight_shape}
    return layer_works(wl, batch=1, dtype=dtype, masks=masks)


def _masked(work: LayerWork, pattern: str) -> LayerWork:
    n, m = (int(x) for x in pattern.split(":"))
    g = work.gemm
    rng = np.random.default_rng(0)
    keep = np.argsort(rng.random((g.n, -(-g.k // m), m)), axis=2)[:, :, :n]
    mask = np.zeros((g.n, -(-g.k // m), m), bool)
    np.put_along_axis(mask, keep, True, axis=2)
    return gemm_work(name=work.name, gemm=g, mask=mask.reshape(g.n, -1)[:, :g.k].copy(), op_kind=work.op_kind)


def run(arch_name: str, works: list[LayerWork], engine: str) -> tuple[float, list]:
    arch = load_arch(arch_name)
    t0 = time.perf_counter()
    ests = [estimate(arch.plan(w), arch, engine) for w in works]
    return time.perf_counter() - t0, ests


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="systolic_32x32")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    dtype = load_arch(args.arch).default_dtype()
    for label, pattern in (("dense", None), ("2:8", "2:8"), ("fanin", "fanin=40")):
        t0 = time.perf_counter()
        try:
            works = resnet50_works(dtype, pattern)
        except Exception as exc:  # a pattern the mask builder does not know
            print(f"{label}: skipped ({exc})")
            continue
        build_s = time.perf_counter() - t0
        times, ests = [], []
        for _ in range(args.repeats):
            t, ests = run(args.arch, works, "cycle")
            times.append(t)
        _, closed = run(args.arch, works, "analytic")
        tot, tot_a = sum_estimates(ests), sum_estimates(closed)
        worst = max(abs(a.cycles - c.cycles) / c.cycles for a, c in zip(closed, ests) if c.cycles > 0)
        formats = sorted({e.format for e in ests if e.format != "memory"})
        print(f"{args.arch} resnet50 b1 {label:6s}: cycle engine {statistics.median(times):.3f} s "
              f"(median of {args.repeats}; masks+lowering {build_s:.2f} s), {len(works)} layers, "
              f"cycles {tot.cycles:.4g} (analytic {tot_a.cycles:.4g}, worst layer diff {100 * worst:.2f} %), "
              f"latency {tot.latency_s * 1e3:.3f} ms, energy {tot.energy_j * 1e3:.3f} mJ, formats {formats}")


if __name__ == "__main__":
    main()
