"""CPU model accuracy on this machine: validate on held-out points.

    python benchmarks/bench_cpu_model.py [--stored [--calibrate]] [--threads 1,2] [--repeats 3] [--json OUT]

Default: the calibration suite is measured in the same shuffled passes as the validation suite and
the model is fitted on the calibration points only (the VM's speed drifts ~20 % over tens of
minutes). --stored validates the calibration stored by `simsparse calibrate` (--calibrate: re-run
it first, then validate: the two measured minutes apart).

Prints MAPE, Spearman and n (overall, per kernel, per thread count) beside the measurement's own
noise (simsparse.validate.stats.repeatability), the condensed-vs-dense crossover batches
(predicted vs measured) and the validation wall time. Targets (issue 6):
MAPE <= 15 %, Spearman >= 0.95, crossover within 2x, validation <= 5 min on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", action="store_true", help="with --stored: re-run the calibration suite first")
    ap.add_argument("--stored", action="store_true", help="validate the stored calibration, not a fresh one")
    ap.add_argument("--threads", default="", help="comma list (default: 1 and all usable cores)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.08, help="seconds of timing per point and pass")
    ap.add_argument("--json", default="", help="write the validation JSON here")
    args = ap.parse_args()
    threads = tuple(int(t) for t in args.threads.split(",") if t) or None

    from simsparse.validate import calibrate, cpu, render

    if args.calibrate and args.stored:
        t0 = time.perf_counter()
        cal = calibrate.run(threads=threads, repeats=args.repeats, progress=True)
        print(f"calibration: {len(cal.points)} points, in-sample MAPE {cal.summary.mape:.1%}, "
              f"{time.perf_counter() - t0:.0f} s -> {cal.path}")
        print("  noise: " + render.noise_text(cal.summary))
        for k, v in cal.kernels.items():
            print(f"  {k:9s} " + "  ".join(f"{n}={x:.3g}" for n, x in v.items()))
        for note in cal.notes:
            print(f"  note: {note}")
    res = cpu.run(threads=threads, repeats=args.repeats, progress=True, min_time_s=args.min_time,
                  calibration="stored" if args.stored else "fresh")
    s = res.summary
    print(f"validation: n={s.n}  MAPE={s.mape:.1%}  Spearman={s.spearman:.3f}  median APE={s.median_ape:.1%}  "
          f"wall={res.elapsed_s:.0f} s  (calibration: {res.calibration or 'none'})")
    print("  noise: " + render.noise_text(s))
    for g in res.groups:
        print(f"  {g.by[0]} {g.key[0]:9s} n={g.summary.n:3d}  MAPE={g.summary.mape:.1%}  "
              f"Spearman={g.summary.spearman:.3f}  noise: {render.noise_text(g.summary)}")
    for c in res.crossovers:
        print(f"  crossover {c.k}->{c.n} t={c.threads}: first loss predicted {c.predicted_first:.1f} vs measured "
              f"{c.measured_first:.1f}; final loss predicted {c.predicted_final:.1f} vs measured "
              f"{c.measured_final:.1f}; within 2x: {c.within_2x}")
    for note in res.notes:
        print(f"  note: {note}")
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(render.render(res, "json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
