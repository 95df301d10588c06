"""Accuracy of the GPU 2:4 model against published timings (never part of the test run).

    python benchmarks/bench_gpu_validation.py            # dev rows + held-out rows, both engines
    python benchmarks/bench_gpu_validation.py --fit      # refit the few global parameters on the dev rows

The dev rows (accelerators/measurements/a100_2to4_dev.csv) are the only ones any parameter is
fitted on (--fit: scipy least squares on log dense and sparse times; paste the printed values
into accelerators/a100_2to4.yaml). The held-out rows (gpu_2to4_heldout.csv, A100 and H100
rows from public issue threads) are only reported.

Before -> after the physics follow-up (analytic engine; cycle in brackets):
  dev A100 (9 rows)       speedup MAPE 5.1 -> 1.8 % [6.0 -> 2.5], time MAPE 3.3 -> 1.8 % [3.4 -> 1.8], sign 9/9
  held-out A100 (10 rows) speedup MAPE 87.9 -> 48.8 % [93.3 -> 52.9], time MAPE 21.2 -> 16.5 % [21.9 -> 18.1]
  held-out H100 (3 rows)  speedup MAPE 42.0 -> 12.8 % [42.8 -> 11.7], time MAPE 25.0 -> 7.7 % [31.5 -> 11.0],
                          sign 3/3 (cycle 2/3 -> 3/3)
What changed (all from library source / issue threads, none fitted on held-out rows): PyTorch's
CUTLASS back end has one 128x128x64 tile and no split-K; `_cslt_sparse_mm` passes split_k=1 and
re-creates its cuSPARSELt plan every call (~50 us host, pytorch#179642); Hopper cuBLAS uses
stream-K and 2-CTA TMA multicast. The largest remaining error is H5 (PyTorch 2.1, one token,
CUTLASS: 196 us measured, 53 us predicted), which no device-side term explains.

Second follow-up (per-tile physics; analytic [cycle]; nothing fitted on held-out rows, the three
efficiencies refit on the dev rows): register-file cap on CTAs per SM, a prologue of stages-1
in-flight stages, C tiles stored through the SM port into the write-back L2 (their L2 and HBM
traffic a main-loop bandwidth term instead of an exposed HBM burst per wave), cycle engine with
the same store traffic and a ramped K-chunking (its coarse second chunk stalled the tensor cores).
  dev A100 (9 rows)       speedup MAPE 1.8 -> 1.7 % [2.5 -> 2.1], time MAPE 1.8 -> 1.3 % [1.8 -> 1.4], sign 9/9
  held-out A100 (10 rows) speedup MAPE 48.8 -> 50.0 % [52.9 -> 52.0], time MAPE 16.5 -> 16.0 % [18.1 -> 16.3]
  held-out H100 (3 rows)  speedup MAPE 12.8 -> 12.3 % [11.7 -> 10.3], time MAPE 7.7 -> 8.7 % [11.0 -> 11.2]
The short-K dense rows H1/H3 are now right (272/1049 us vs 274/1020 measured; were 292/1130), and
the engines agree on them (were 1.48 vs 1.64); their cuSPARSELt sparse times stay ~19 % low
(174 vs 215 us): the missing sparse-only short-K cost is not identified.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from simsparse.resources import data_dir
from simsparse.validate_published import read_rows, run

FIT_FIELDS = (
    ("software.dense.mainloop_efficiency", 0.5, 0.95),
    ("software.backends.cusparselt.mainloop_efficiency", 0.4, 0.95),
    ("software.backends.cutlass.mainloop_efficiency", 0.4, 0.95),
    ("software.launch_gap_s", 1e-6, 5e-6)         # physical range of a launch gap,
)


def measurements(name: str) -> Path:
    return data_dir("accelerators") / "measurements" / name


def fit_dev(arch: str = "a100_2to4") -> dict[str, float]:
    from scipy.optimize import least_squares

    def residuals(x: np.ndarray) -> np.ndarray:
        sets = tuple(f"{f}={v:.6g}" for (f, _, _), v in zip(FIT_FIELDS, x))
        res = run(arch=arch, engine="analytic", overrides=sets)
        out = []
        for p in res.points:
            out.append(math.log(p.predicted_dense_us / p.measured_dense_us))
            out.append(math.log(p.predicted_sparse_us / p.measured_sparse_us))
        return np.array(out)

    x0 = np.array([0.8, 0.66, 0.62, 2e-6])
    lo = np.array([f[1] for f in FIT_FIELDS])
    hi = np.array([f[2] for f in FIT_FIELDS])
    sol = least_squares(residuals, x0, bounds=(lo, hi), x_scale=np.array([0.1, 0.1, 0.1, 1e-6]),
                        diff_step=1e-3)
    return {f: float(v) for (f, _, _), v in zip(FIT_FIELDS, sol.x)}


def _print_points(res) -> None:
    print(f"  {'id':5} {'gpu':15} {'m':>7} {'n':>6} {'k':>6} {'backend':10} {'dense us meas/pred':>20} "
          f"{'sparse us meas/pred':>21} {'speedup meas/pred':>18}")
    for p in res.points:
        md = f"{p.measured_dense_us:.1f}" if p.measured_dense_us else "-"
        ms = f"{p.measured_sparse_us:.1f}" if p.measured_sparse_us else "-"
        print(f"  {p.id:5} {p.gpu[:15]:15} {p.m:7d} {p.n:6d} {p.k:6d} {p.backend:10} {md:>9}/{p.predicted_dense_us:<9.1f} "
              f"{ms:>9}/{p.predicted_sparse_us:<10.1f} {p.measured_speedup:8.2f}/{p.predicted_speedup:<8.2f}")


def _fmt_summary(s: dict) -> str:
    return (f"speedup MAPE {s['mape_speedup']:.1f} %, time MAPE {s['mape_time']:.1f} %, "
            f"sign right {s['sign_correct']}/{s['n']}, spearman {s['spearman']:.2f}")


def heldout_split(path: Path, tmp: Path) -> dict[str, Path]:
    """Held-out rows split per arch (H100 rows -> h100_2to4, the rest -> a100_2to4)."""
    text = path.read_text(encoding="utf-8").splitlines()
    header, body = text[0], text[1:]
    rows = read_rows(path)
    out = {}
    for arch, pick in (("a100_2to4", lambda g: "H100" not in g), ("h100_2to4", lambda g: "H100" in g)):
        lines = [line for line, r in zip(body, rows) if pick(r.get("gpu", ""))]
        if lines:
            p = tmp / f"heldout_{arch}.csv"
            p.write_text("\n".join([header] + lines) + "\n", encoding="utf-8")
            out[arch] = p
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="refit the global parameters on the dev rows")
    ap.add_argument("--engines", default="analytic,cycle")
    args = ap.parse_args(argv)
    if args.fit:
        for field, value in fit_dev().items():
            print(f"{field} = {value:.4g}")
        return 0
    for engine in args.engines.split(","):
        res = run(engine=engine)
        print(f"[{engine}] dev rows ({res.csv_path}):")
        _print_points(res)
        print(f"  -> {_fmt_summary(res.summary)}")
        with tempfile.TemporaryDirectory() as d:
            for arch, path in heldout_split(measurements("gpu_2to4_heldout.csv"), Path(d)).items():
                res = run(path, arch=arch, engine=engine)
                print(f"[{engine}] held-out rows on {arch} (never fitted):")
                _print_points(res)
                print(f"  -> {_fmt_summary(res.summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
