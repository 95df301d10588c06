"""Speed of the GPU model: all ResNet-50 layers at batch 256 on a100_2to4, both engines.

    python benchmarks/bench_eval_speed.py [--batch 256] [--repeats 5]

Targets (issue 4): analytic <= 50 ms, cycle <= 2 s for the whole network (every layer, 2:4 masks,
beside the dense baseline). Layer works (masks, patterns) are built once beforehand; the timed
part is what `evaluate` does per layer: plan (format choice, padding, tile choice) + engine.
Each repeat loads the arch afresh, so no memo from an earlier repeat is reused.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from simsparse.archs import load_arch
from simsparse.engines import estimate
from simsparse.masks.patterns import analyze, as_matrix
from simsparse.masks.synthetic import make_mask
from simsparse.records import Gemm, LayerWork
from simsparse.resources import data_dir
from simsparse.specs import load_yaml
from simsparse.units import dtype_bytes


def resnet50_works(batch: int, dtype: str = "fp16") -> list[LayerWork]:
    """GEMM works for every conv/linear (2:4 masks) and memory works for the other ops."""
    data = load_yaml(data_dir("workloads") / "models" / "resnet50.yaml")
    works = []
    b = dtype_bytes(dtype)
    for op in data["ops"]:
        if op["kind"] in ("conv", "linear"):
            w = tuple(op["weight_shape"])
            out = op["output_shape"]
            m = batch * (int(np.prod(out[1:])) if len(out) > 1 else 1)
            mat = as_matrix(make_mask(w, "2:4", seed=0))
            works.append(LayerWork(name=op["name"], kind="gemm", op_kind=op["kind"],
                                   gemm=Gemm(m=m, n=mat.shape[0], k=mat.shape[1], dtype=dtype),
                                   mask=mat, pattern=analyze(mat, name=op["name"]), dtype=dtype))
        else:
            moved = batch * (op.get("elements_in", 0) + op.get("elements_out", 0)) * b
            works.append(LayerWork(name=op["name"], kind="memory", op_kind=op["kind"], bytes_moved=moved,
                                   elements=batch * op.get("elements_out", 0), dtype=dtype))
    return works


def time_engine(works: list[LayerWork], engine: str, repeats: int) -> tuple[float, float]:
    times, speedup = [], 0.0
    for _ in range(repeats):
        model = load_arch("a100_2to4")
        t0 = time.perf_counter()
        sparse = sum(estimate(model.plan(w), model, engine).latency_s for w in works)
        dense = sum(estimate(model.plan(w, dense=True), model, engine).latency_s for w in works)
        times.append(time.perf_counter() - t0)
        speedup = dense / sparse
    return statistics.median(times), speedup


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    works = resnet50_works(args.batch)
    gemms = sum(w.kind == "gemm" for w in works)
    print(f"ResNet-50, batch {args.batch}: {gemms} GEMM layers + {len(works) - gemms} memory-bound ops")
    for engine, target in (("analytic", 0.050), ("cycle", 2.0)):
        t, sp = time_engine(works, engine, args.repeats)
        print(f"  {engine:8}: {t * 1e3:8.1f} ms per network (median of {args.repeats}; target <= "
              f"{target * 1e3:.0f} ms) -> {'ok' if t <= target else 'SLOW'}; 2:4 speedup vs dense {sp:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
