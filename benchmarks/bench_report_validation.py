"""The validation figures report.md cites, per arch x software stack x corpus (never part of the test run).

    PYTHONPATH=. python benchmarks/bench_report_validation.py           # print them
    PYTHONPATH=. python benchmarks/bench_report_validation.py --write   # and regenerate the committed summary

`simsparse report` (and so `simsparse demo`) does not rerun the published validation: it reads
accelerators/measurements/validation_summary.json, which this script writes from
`simsparse validate --device published` (analytic engine). tests/test_report_checks.py reruns
the validation and fails when the committed file no longer matches the model: rerun this script
with --write after any change that moves a GPU estimate.
"""

from __future__ import annotations

import argparse
import json
import time

from simsparse import api, report_data
from simsparse.fileio import write_atomic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the committed validation_summary.json")
    args = parser.parse_args()
    t0 = time.perf_counter()
    summary = report_data.validation_summary(api.validate(device="published"))
    elapsed = time.perf_counter() - t0
    print(f"{'arch':12s} {'software':8s} {'corpus':18s} {'role':9s} {'rows':>4s} {'speedup MAPE':>12s} "
          f"{'time MAPE':>9s} {'sign right':>10s}")
    for g in summary["groups"]:
        def pct(x):
            return "n/a" if x is None else f"{100 * x:.1f} %"
        print(f"{g['arch']:12s} {g['software']:8s} {g['source']:18s} {g['role']:9s} {g['n']:4d} "
              f"{pct(g['mape_speedup']):>12s} {pct(g['mape_time']):>9s} {pct(g['sign_agreement']):>10s}")
    for s in summary["not_evaluated"]:
        print(f"not evaluated: {s['n']} rows of {s['source']}: {s['reason']}")
    print(f"validation took {elapsed:.1f} s")
    if args.write:
        path = write_atomic(report_data.validation_summary_path(), json.dumps(summary, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
