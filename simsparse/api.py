"""The only place that wires steps together: inspect, evaluate, compare, train, measure,
validate, calibrate, archs, workloads, demo. Each function takes explicit keyword arguments
and returns records; rendering is report.py's job, argument parsing cli.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from simsparse import engines
from simsparse.archs import ArchModel, load_arch, shipped_arch_names
from simsparse.errors import GeometryError, SimSparseError
from simsparse.parse import check_pattern_fits, parse_batch, parse_gemm, parse_pattern, parse_seed
from simsparse.records import Estimate, Gemm, LayerWork, MaskSet, Pattern, Report, Workload, sum_estimates
from simsparse.units import DTYPES


MAX_SYNTHETIC_WEIGHTS = 2**25   # N x K of a synthetic --gemm mask built in memory (~1 GB peak for N:M)
CYCLE_MAX_ROWS = 2**18          # GEMM rows the systolic cycle engine simulates (~4 s, ~300 MB for mlp)


@dataclass(frozen=True)
class InspectResult:
    path: str
    masks: MaskSet
    patterns: Mapping[str, Pattern]
    summary: Mapping[str, Any]


def inspect(path: str | Path) -> InspectResult:
    """Load a checkpoint of any supported format and measure the pattern of every mask."""
    from simsparse.masks import io
    from simsparse.masks.patterns import analyze_set, summarize

    masks = io.load(path)
    patterns = analyze_set(masks)
    return InspectResult(path=str(path), masks=masks, patterns=patterns, summary=summarize(patterns))


# ----------------------------------------------------------------------------- evaluate




def gemm_work(*, m: int, n: int, k: int, pattern: str, dtype: str, seed: int = 0) -> LayerWork:
    """One synthetic GEMM layer: a weight [n, k] with a mask of `pattern`, m activation rows."""
    from simsparse.masks.patterns import analyze
    from simsparse.masks.synthetic import make_matrix

    check_pattern_fits(parse_pattern(pattern), reduction=k, what="--pattern")
    if n * k > MAX_SYNTHETIC_WEIGHTS:  # guard rail until synthetic patterns are analysed in closed form
        raise SimSparseError(f"--gemm {m},{n},{k}: a synthetic mask of N x K = {n * k} weights is larger than the "
                             f"{MAX_SYNTHETIC_WEIGHTS} built in memory; use a smaller N or K")
    mat = make_matrix(n, k, pattern, seed=seed)
    pat = analyze(mat, name="gemm")
    shrunk = Gemm(m=m, n=n - pat.rows_removed, k=k - pat.cols_removed, dtype=dtype)
    return LayerWork(name="gemm", kind="gemm", op_kind="linear", gemm=Gemm(m=m, n=n, k=k, dtype=dtype),
                     mask=None if pat.density == 1.0 else mat, pattern=pat, shrunk=shrunk, dtype=dtype)


def workload_works(*, workload: Workload, masks: Mapping[str, np.ndarray], batch: int, dtype: str) -> list[LayerWork]:
    from simsparse.graph.lower import layer_works

    return layer_works(workload, batch=batch, dtype=dtype, masks=masks)


def resolve_workload(name_or_path: str) -> Workload:
    from simsparse.graph.catalog import load_workload

    return load_workload(name_or_path)


def mask_works(*, mask_path: str | Path, workload: str | None, batch: int, dtype: str) -> tuple[list[LayerWork], dict]:
    """Layer works for a checkpoint: its masks bound to its own geometry or to `workload`."""
    from simsparse.graph.bind import bind
    from simsparse.masks import io

    maskset = io.load(mask_path)
    geometry = resolve_workload(workload) if workload else maskset.geometry
    if geometry is None:
        raise GeometryError(f"{mask_path}: the checkpoint carries no layer geometry; pass --workload NAME "
                            "(see `simsparse workloads`) or a workload YAML path")
    bound = bind(maskset, geometry)
    works = workload_works(workload=geometry, masks=bound.masks, batch=batch, dtype=dtype)
    provenance = {"checkpoint": str(mask_path), "workload": geometry.name,
                  "format": maskset.provenance.get("format"), "unmatched_masks": list(bound.unmatched)}
    return works, provenance


def _estimate_all(model: ArchModel, works: Sequence[LayerWork], *, engine: str, dense: bool,
                  kernel: str | None, progress: bool) -> list[Estimate]:
    from tqdm import tqdm

    out = []
    it = tqdm(works, desc="dense" if dense else "layers", disable=not progress, leave=False, file=None)
    for work in it:
        plan = model.plan(work, dense=dense, kernel=kernel) if kernel else model.plan(work, dense=dense)
        out.append(engines.estimate(plan, model, engine))
    return out


def run_model(*, model: ArchModel, works: Sequence[LayerWork], engine: str, dtype: str,
              kernel: str | None = None, provenance: Mapping[str, Any] | None = None,
              progress: bool = False) -> Report:
    """Estimate every layer, beside the dense baseline of the same layers on the same arch."""
    if not works:
        raise GeometryError("nothing to evaluate: the workload has no layers")
    est = _estimate_all(model, works, engine=engine, dense=False, kernel=kernel, progress=progress)
    dense = _estimate_all(model, works, engine=engine, dense=True, kernel="dense" if kernel else None,
                          progress=progress)
    return Report(arch=model.name, engine=engine, dtype=dtype, estimates=tuple(est), total=sum_estimates(est),
                  dense_estimates=tuple(dense), dense_total=sum_estimates(dense), provenance=dict(provenance or {}))


def _check_dtype(model: ArchModel, dtype: str | None) -> str:
    dtype = dtype or model.default_dtype()
    if dtype not in DTYPES:
        raise SimSparseError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if dtype not in model.supported_dtypes():
        raise SimSparseError(f"arch {model.name} does not model dtype {dtype}; it supports "
                             f"{', '.join(model.supported_dtypes())}")
    return dtype


def evaluate(*, arch: str, mask: str | Path | None = None, workload: str | None = None,
             gemm: str | None = None, pattern: str | None = None, batch: int = 1, dtype: str | None = None,
             engine: str = "analytic", overrides: Sequence[str] = (), kernel: str | None = None,
             seed: int = 0, progress: bool = False) -> Report:
    """`simsparse evaluate`: a checkpoint, a workload with a synthetic pattern, or a single GEMM."""
    if engine not in engines.ENGINE_NAMES:
        raise SimSparseError(f"unknown engine {engine!r}; use one of {', '.join(engines.ENGINE_NAMES)}")
    batch, seed = parse_batch(batch), parse_seed(seed)
    sources = sum(x is not None for x in (mask, gemm)) + (workload is not None and mask is None)
    if sources != 1:
        raise SimSparseError("evaluate needs exactly one of --mask CKPT, --workload W --pattern P, --gemm M,N,K --pattern P")
    pattern = "dense" if pattern is None else parse_pattern(pattern).text
    model = load_arch(arch, overrides)
    dtype = _check_dtype(model, dtype)
    if kernel is not None and "kernel" not in __import__("inspect").signature(model.plan).parameters:
        raise SimSparseError(f"--kernel applies to archs that offer several kernels (CPU); {model.name} is "
                             f"a {model.kind} and picks its own format")
    provenance: dict[str, Any] = {"arch_source": model.source}
    if mask is not None:
        works, prov = mask_works(mask_path=mask, workload=workload, batch=batch, dtype=dtype)
        provenance.update(prov)
    elif gemm is not None:
        m, n, k = parse_gemm(gemm)
        works = [gemm_work(m=m, n=n, k=k, pattern=pattern, dtype=dtype, seed=seed)]
        provenance.update({"gemm": [m, n, k], "pattern": pattern})
    else:
        from simsparse.graph.lower import synthetic_masks

        wl = resolve_workload(workload)
        reductions = [int(np.prod(o.weight_shape[1:])) for o in wl.ops if o.weight_shape and o.sparsifiable]
        check_pattern_fits(parse_pattern(pattern), reduction=max(reductions, default=1), what="--pattern")
        masks = synthetic_masks(wl, pattern, seed=seed)
        works = workload_works(workload=wl, masks=masks, batch=batch, dtype=dtype)
        provenance.update({"workload": wl.name, "pattern": pattern, "batch": batch})
    _check_cycle_rows(model, works, engine=engine, batch=batch)
    return run_model(model=model, works=works, engine=engine, dtype=dtype, kernel=kernel,
                     provenance=provenance, progress=progress)


def _check_cycle_rows(model: ArchModel, works: Sequence[LayerWork], *, engine: str, batch: int) -> None:
    """The systolic cycle engine simulates every fold: its time and memory grow with the GEMM rows."""
    rows = max((w.gemm.m for w in works if w.gemm is not None), default=0)
    if engine == "cycle" and model.kind == "nm_systolic" and rows > CYCLE_MAX_ROWS:
        raise SimSparseError(f"--engine cycle on {model.name} simulates every fold; --batch {batch} gives GEMMs of "
                             f"{rows} rows, more than the {CYCLE_MAX_ROWS} it simulates; use --engine analytic or "
                             "a smaller --batch")


def compare(*, masks: Sequence[str], archs: Sequence[str], workload: str | None = None, batch: int = 1,
            dtype: str | None = None, engine: str = "analytic", progress: bool = False) -> list[Report]:
    """Every checkpoint on every arch (each beside its own dense baseline)."""
    reports = []
    for arch in archs:
        for m in masks:
            reports.append(evaluate(arch=arch, mask=m, workload=workload, batch=batch, dtype=dtype,
                                    engine=engine, progress=progress))
    return reports


# ----------------------------------------------------------------------------- catalogs


def list_archs() -> list[dict]:
    rows = []
    for name in shipped_arch_names():
        try:
            model = load_arch(name)
            rows.append({"name": name, "kind": model.kind, "dtypes": list(model.supported_dtypes()),
                         "source": model.source})
        except SimSparseError as exc:  # a spec that does not load is listed with its problem
            rows.append({"name": name, "kind": "?", "dtypes": [], "source": str(exc)})
    return rows


def list_workloads() -> list[dict]:
    from simsparse.graph.catalog import list_workloads as _list

    return [{"name": name, "params": params, "dense_macs_per_sample": macs} for name, params, macs in _list()]


# ----------------------------------------------------------------------------- delegated steps


def delegate(module: str, function: str) -> Callable[..., Any]:
    """The function `function` of `module`, imported on first use."""
    import importlib

    return getattr(importlib.import_module(module), function)
