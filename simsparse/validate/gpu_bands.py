"""Writing the GPU error-band table (`accelerators/measurements/gpu_error_bands.json`) from the
validation residuals, and checking that the committed table is current.

    python -m simsparse.validate.gpu_bands --regenerate     # after a model or spec change
    python -m simsparse.validate.gpu_bands --check          # exit 1 if the table is stale (a test runs it)

Residuals (measured / predicted - 1) come from every published row a shipped spec predicts:
kernel-corpus rows from the leave-one-shape-set-out fits stored in gpu_fits.json (each row
predicted by the spec refit without its shape set: the honest error on unseen shapes), torch-level
and held-out rows from the shipped specs. Each (spec, software stack, dtype, regime) group of at
least MIN_ROWS rows gets its 10th-90th percentile band of dense time, sparse time and speedup.
Every other combination of a shipped GPU spec (its dtypes, the three stacks, the three regimes)
borrows, and says so (prior): first from the dev GPU it borrows its fitted values from (its
`borrowed:` block), then from the nearest dtype, the kernel stack, and the nearest regime. A
memory-bound kernel's band is the skinny dense band (memory-bound GEMMs), marked as a prior.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from simsparse.archs import arch_data, load_arch, shipped_arch_names
from simsparse.engines.gpu_error_bands import MEMORY, REGIMES, bands_path, regime
from simsparse.fileio import write_atomic
from simsparse.validate import gpu_fit, published
from simsparse.validate.corpus import MODEL_DTYPES
from simsparse.validate.records import MeasuredPoint

MIN_ROWS = 3
PERCENTILES = (10.0, 90.0)
STACKS = ("kernel", "pytorch-eager", "pytorch-graph")
DTYPE_NEIGHBOURS = {"fp16": ("bf16",), "bf16": ("fp16",), "tf32": ("fp16", "bf16"), "fp8": ("int8", "bf16"),
                    "int8": ("fp8", "bf16")}
STACK_NEIGHBOURS = {"kernel": (), "pytorch-eager": ("kernel",), "pytorch-graph": ("kernel",)}
REGIME_NEIGHBOURS = {"skinny": ("square", "large"), "square": ("large", "skinny"), "large": ("square", "skinny")}
KERNEL_CORPUS = "gpu_kernel_dev"


def residual_points() -> list[MeasuredPoint]:
    """Every published row's prediction the bands are built from (see the module docstring)."""
    folds = gpu_fit.read_fold_fits()
    points = [p for arch, arch_folds in sorted(folds.items()) for p in gpu_fit.loo_points(arch, arch_folds)]
    others = [name for name in published.CORPORA if name != KERNEL_CORPUS]
    points += published.run(corpora=others).points
    if not folds:                     # no stored fold fits: the kernel corpus' dev residuals instead
        points += published.run(corpora=[KERNEL_CORPUS]).points
    return points


def _quantiles(values: Sequence[float]) -> list[float]:
    lo, hi = np.percentile(np.asarray(values, dtype=float), PERCENTILES)
    return [round(float(lo), 4), round(float(hi), 4)]


def measured_bands(points: Iterable[MeasuredPoint]) -> dict[tuple[str, str, str, str], dict]:
    groups: dict[tuple[str, str, str, str], list[MeasuredPoint]] = {}
    for p in points:
        if p.measured_s and p.measured_dense_s and p.predicted_s and p.predicted_dense_s:
            key = (p.arch, p.software, MODEL_DTYPES[p.dtype], regime(p.m))
            groups.setdefault(key, []).append(p)
    out = {}
    for (arch, software, dtype, reg), ps in groups.items():
        if len(ps) < MIN_ROWS:
            continue
        gpus = ", ".join(sorted({p.device for p in ps}))
        loo = any(p.source == KERNEL_CORPUS for p in ps)
        out[(arch, software, dtype, reg)] = {
            "dense": _quantiles([p.measured_dense_s / p.predicted_dense_s - 1 for p in ps]),
            "sparse": _quantiles([p.measured_s / p.predicted_s - 1 for p in ps]),
            "speedup": _quantiles([p.measured_speedup / p.predicted_speedup - 1 for p in ps]),
            "n": len(ps), "prior": False,
            "basis": (f"{'leave-one-shape-set-out ' if loo else ''}residuals of {len(ps)} {gpus} {dtype} "
                      f"{reg} rows ({software})")}
    return out


def dev_source(arch: str) -> str:
    """The spec a spec borrows most of its fitted values from (itself when it borrows none)."""
    sources = Counter(v.partition(":")[0] for v in gpu_fit.borrowed_block(arch).values())
    sources.pop(arch, None)
    return sources.most_common(1)[0][0] if sources else arch


def _candidates(arch: str, source: str, software: str, dtype: str, reg: str):
    """Where a band may come from, nearest first (the first is the entry itself)."""
    archs = (arch,) + ((source,) if source != arch else ())
    for s in (software,) + STACK_NEIGHBOURS[software]:
        for g in (reg,) + REGIME_NEIGHBOURS[reg]:
            for d in (dtype,) + DTYPE_NEIGHBOURS.get(dtype, ()):
                for a in archs:
                    yield a, s, d, g


def resolve(arch: str, source: str, software: str, dtype: str, reg: str, measured: dict) -> dict | None:
    """The band of one combination: measured, or borrowed from `source` (the spec's dev GPU) or a
    neighbouring dtype, stack or regime (marked as a prior)."""
    for key in _candidates(arch, source, software, dtype, reg):
        if key in measured:
            entry = dict(measured[key])
            if key != (arch, software, dtype, reg):
                entry["prior"] = True
                entry["basis"] = f"prior, borrowed from {' '.join(key)}: " + entry["basis"]
            return entry
    return None


def generate() -> dict:
    """The whole table as plain data (deterministic: sorted, rounded)."""
    measured = measured_bands(residual_points())
    rows = []
    for arch in shipped_arch_names():
        data, _ = arch_data(arch)
        if data.get("kind") != "gpu_sparse_tensor_core":
            continue
        dtypes = load_arch(arch).spec.tensor_dtypes
        source = dev_source(arch)
        for software in STACKS:
            for dtype in dtypes:
                for reg in REGIMES:
                    entry = resolve(arch, source, software, dtype, reg, measured)
                    if entry is not None:
                        rows.append({"arch": arch, "software": software, "dtype": dtype, "regime": reg, **entry})
            skinny = resolve(arch, source, software, "fp16", "skinny", measured)
            if skinny is not None:
                rows.append({"arch": arch, "software": software, "dtype": "", "regime": MEMORY,
                             "dense": skinny["dense"], "sparse": skinny["dense"], "speedup": None,
                             "n": skinny["n"], "prior": True,
                             "basis": "prior: memory-bound kernels take the fp16 skinny dense band (" + skinny["basis"] + ")"})
    return {"generated_by": "python -m simsparse.validate.gpu_bands --regenerate",
            "what": "validation residuals measured / predicted - 1, 10th and 90th percentile, per GPU spec, "
                    "software stack, dtype and regime (skinny m <= 256, square, large m >= 8192)",
            "bands": rows}


def render(table: dict) -> str:
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


def is_current() -> bool:
    path = bands_path()
    return path.is_file() and path.read_text(encoding="utf-8") == render(generate())


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="regenerate or check the GPU error-band table")
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--regenerate", action="store_true")
    group.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    if args.regenerate:
        write_atomic(bands_path(), render(generate()))
        print(f"wrote {bands_path()}")
        return 0
    if is_current():
        print(f"{bands_path()} is current")
        return 0
    print(f"{bands_path()} is stale: run python -m simsparse.validate.gpu_bands --regenerate", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
