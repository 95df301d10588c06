"""The only place that wires steps together, for every command: inspect, evaluate, compare, sweep,
train, measure, validate, calibrate, archs, workloads (the demo is a scripted tour of these).
Every function takes keyword-only arguments and returns records or plain data; rendering is
report.py's job, argument parsing cli.py's.

The pipeline of `evaluate` (DESIGN.md §2): masks (masks.io) -> bound once to the geometry
(graph.bind) -> layer works with their measured Patterns (graph.lower) -> per layer
`model.plan(work, dense=...)` (archs) -> `engines.estimate(plan, model, engine)` -> `Report`.
`run_model` is that last part for any list of works.

Commands that need torch or numba (reading checkpoints, training, timing kernels, validating
against them) import their module inside the function, so that `simsparse archs` or an
`evaluate --gemm` do not pay seconds of imports they never use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from tqdm import tqdm

from simsparse import dse, engines, validate_published
from simsparse.archs import ArchModel, load_arch, shipped_arch_names
from simsparse.errors import GeometryError, SimSparseError
from simsparse.graph.bind import bind
from simsparse.graph.catalog import list_workloads as catalog_workloads
from simsparse.graph.catalog import load_workload
from simsparse.graph.lower import layer_works
from simsparse.graph.synthetic import synthetic_gemm_work, synthetic_masks
from simsparse.masks.patterns import analyze_set, summarize
from simsparse.masks.synthetic import parse_pattern
from simsparse.records import Estimate, LayerWork, MaskSet, Pattern, Report, Workload, sum_estimates
from simsparse.units import DTYPES


@dataclass(frozen=True)
class InspectResult:
    path: str
    masks: MaskSet
    patterns: Mapping[str, Pattern]
    summary: Mapping[str, Any]


def load_masks(*, path: str | Path) -> MaskSet:
    """A checkpoint of any supported format as a MaskSet (never unpickles code)."""
    from simsparse.masks import io  # torch (~1.7 s): only commands that read checkpoints pay it

    return io.load(path)


def inspect(*, path: str | Path) -> InspectResult:
    """Load a checkpoint of any supported format and measure the pattern of every mask."""
    masks = load_masks(path=path)
    patterns = analyze_set(masks)
    return InspectResult(path=str(path), masks=masks, patterns=patterns, summary=summarize(patterns))


# ----------------------------------------------------------------------------- evaluate


def parse_gemm(text: str) -> tuple[int, int, int]:
    try:
        m, n, k = (int(x) for x in str(text).split(","))
    except ValueError:
        raise SimSparseError(f"--gemm {text!r}: expected three positive integers M,N,K (e.g. 3072,768,3072)") from None
    if min(m, n, k) <= 0:
        raise SimSparseError(f"--gemm {text!r}: M, N and K must be positive")
    return m, n, k


def mask_works(*, mask_path: str | Path, workload: str | None, batch: int, dtype: str) -> tuple[list[LayerWork], dict]:
    """Layer works for a checkpoint: its masks bound (once) to its own geometry or to `workload`."""
    maskset = load_masks(path=mask_path)
    geometry = load_workload(workload) if workload else maskset.geometry
    if geometry is None:
        raise GeometryError(f"{mask_path}: the checkpoint carries no layer geometry; pass --workload NAME "
                            "(see `simsparse workloads`) or a workload YAML path")
    bound = bind(maskset, geometry)
    works = layer_works(geometry, batch=batch, dtype=dtype, masks=bound.masks)
    provenance = {"checkpoint": str(mask_path), "workload": geometry.name,
                  "format": maskset.provenance.get("format"), "unmatched_masks": list(bound.unmatched)}
    return works, provenance


def workload_works(*, workload: Workload, pattern: str, batch: int, dtype: str, seed: int) -> list[LayerWork]:
    """Layer works for a workload with synthetic masks of `pattern` on every sparsifiable layer."""
    return layer_works(workload, batch=batch, dtype=dtype, masks=synthetic_masks(workload, pattern, seed=seed))


def estimate_works(*, model: ArchModel, works: Sequence[LayerWork], engine: str, dense: bool = False,
                   kernel: str | None = None, progress: bool = False) -> list[Estimate]:
    """Every layer planned on `model` (the dense baseline with `dense`) and timed by `engine`."""
    out = []
    for work in tqdm(works, desc="dense" if dense else "layers", disable=not progress, leave=False):
        out.append(engines.estimate(model.plan(work, dense=dense, kernel=kernel), model, engine))
    return out


def run_model(*, model: ArchModel, works: Sequence[LayerWork], engine: str, dtype: str,
              kernel: str | None = None, provenance: Mapping[str, Any] | None = None,
              progress: bool = False) -> Report:
    """Estimate every layer, beside the dense baseline of the same layers on the same arch."""
    if not works:
        raise GeometryError("nothing to evaluate: the workload has no layers")
    model.check_kernel(kernel)
    est = estimate_works(model=model, works=works, engine=engine, kernel=kernel, progress=progress)
    dense = estimate_works(model=model, works=works, engine=engine, dense=True,
                           kernel="dense" if kernel else None, progress=progress)
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
    if batch < 1:
        raise SimSparseError(f"--batch {batch}: must be a positive integer")
    sources = sum(x is not None for x in (mask, gemm)) + (workload is not None and mask is None)
    if sources != 1:
        raise SimSparseError("evaluate needs exactly one of --mask CKPT, --workload W --pattern P, --gemm M,N,K --pattern P")
    model = load_arch(arch, overrides)
    dtype = _check_dtype(model, dtype)
    model.check_kernel(kernel)
    provenance: dict[str, Any] = {"arch_source": model.source}
    if mask is not None:
        works, prov = mask_works(mask_path=mask, workload=workload, batch=batch, dtype=dtype)
        provenance.update(prov)
    elif gemm is not None:
        m, n, k = parse_gemm(gemm)
        works = [synthetic_gemm_work(m=m, n=n, k=k, pattern=pattern or "dense", dtype=dtype, seed=seed)]
        provenance.update({"gemm": [m, n, k], "pattern": pattern or "dense"})
    else:
        wl = load_workload(workload)
        works = workload_works(workload=wl, pattern=pattern or "dense", batch=batch, dtype=dtype, seed=seed)
        provenance.update({"workload": wl.name, "pattern": pattern or "dense", "batch": batch})
    return run_model(model=model, works=works, engine=engine, dtype=dtype, kernel=kernel,
                     provenance=provenance, progress=progress)


def compare(*, masks: Sequence[str], archs: Sequence[str], workload: str | None = None, batch: int = 1,
            dtype: str | None = None, engine: str = "analytic", progress: bool = False) -> list[Report]:
    """Every checkpoint on every arch (each beside its own dense baseline)."""
    reports = []
    for arch in archs:
        for m in masks:
            reports.append(evaluate(arch=arch, mask=m, workload=workload, batch=batch, dtype=dtype,
                                    engine=engine, progress=progress))
    return reports


def sweep(*, sweep_file: str | Path, out: str | Path, executor: str = "local", resume: bool = False,
          progress: bool = False) -> list[dict]:
    """`simsparse sweep`: every point of the grid through `evaluate`, one CSV row each."""
    return dse.run(sweep=sweep_file, out=out, executor=executor, resume=resume, progress=progress,
                   evaluate=evaluate)


# ----------------------------------------------------------------------------- train, measure, validate


def train(*, method: str, model: str, data: str, sparsity: float, out: str | Path, nm: str | None = None,
          steps: int | None = None, epochs: int | None = None, recipe: str | None = None, seed: int = 0,
          batch_size: int | None = None, lr: float | None = None, no_ablation: bool = False,
          distribution: str | None = None, world_size: int = 1, recipe_overrides: Sequence[str] = (),
          save_every: int | None = None, resume_from: str | Path | None = None, progress: bool = True,
          model_options: Mapping[str, Any] | None = None):
    """`simsparse train`: a DST run written as a native checkpoint (returns the trainer's TrainResult)."""
    from simsparse.dst.train import run  # the trainer imports torch

    nm_pair = None
    if nm is not None:
        spec = parse_pattern(nm)
        if spec.kind != "nm":
            raise SimSparseError(f"--nm {nm!r}: expected N:M such as 1:8")
        nm_pair = (spec.n, spec.m)
    return run(method=method, model=model, data=data, sparsity=sparsity, nm=nm_pair, steps=steps, epochs=epochs,
               recipe=recipe, seed=seed, out=Path(out), batch_size=batch_size, lr=lr, no_ablation=no_ablation,
               distribution=distribution, progress=progress, world_size=world_size,
               recipe_overrides=tuple(recipe_overrides), save_every=save_every, model_options=model_options,
               resume_from=Path(resume_from) if resume_from else None)


def measure(*, device: str, gemm: str | None = None, pattern: str | None = None, suite: str | None = None,
            kernel: str | None = None, threads: int | None = None, cache: str = "warm", progress: bool = False):
    """`simsparse measure`: time real kernels on one GEMM or a named suite (returns a MeasureResult)."""
    from simsparse.kernels import measure as kernel_measure  # torch and numba kernels: only when timing

    if (gemm is None) == (suite is None):
        raise SimSparseError("measure needs exactly one of --gemm M,N,K (with --pattern) or --suite NAME")
    return kernel_measure.run(device=device, gemm=parse_gemm(gemm) if gemm else None, pattern=pattern, suite=suite,
                              kernel=kernel, threads=threads, cache=cache, progress=progress)


def validate(*, device: str, engine: str = "analytic", csv: str | Path | None = None,
             calibration: str = "fresh", progress: bool = False) -> dict:
    """`simsparse validate`: model predictions beside measured timings (JSON-ready dict)."""
    if device == "published":
        return validate_published.result_to_dict(
            validate_published.run(Path(csv) if csv else None, engine=engine))
    if device == "cpu":
        from simsparse import validate_cpu  # torch and numba kernels, scipy

        return validate_cpu.to_dict(validate_cpu.run(progress=progress, calibration=calibration))
    from simsparse.kernels import cuda  # torch (CUDA)

    return cuda.validate(progress=progress).to_dict()


def calibrate(*, device: str = "cpu", progress: bool = False) -> dict:
    """`simsparse calibrate`: fit the CPU model's kernel parameters on this machine (JSON-ready dict)."""
    from simsparse import calibrate as cpu_calibrate  # torch and numba kernels, scipy

    return cpu_calibrate.to_dict(cpu_calibrate.run(device=device, progress=progress))


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
    return [{"name": name, "params": params, "dense_macs_per_sample": macs}
            for name, params, macs in catalog_workloads()]

