"""The only place that wires steps together: inspect, evaluate, compare, train, measure,
validate, calibrate, archs, workloads, demo. Each function takes explicit keyword arguments
and returns records; rendering is report.py's job, argument parsing cli.py's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from simsparse import engines
from simsparse.archs import ArchModel, load_arch, shipped_arch_names
from simsparse.dst.explain import TrainingPlan, explain
from simsparse.dst.job import TrainResult
from simsparse.dst.train import run as run_training
from simsparse.errors import GeometryError, SimSparseError
from simsparse.records import Estimate, Gemm, LayerWork, MaskRecipe, MaskSet, Pattern, Report, Workload, sum_estimates
from simsparse.units import DTYPES
from simsparse.validate import calibrate as cpu_calibration
from simsparse.validate import cpu as cpu_validation
from simsparse.validate import cuda as cuda_validation
from simsparse.validate import published as published_validation
from simsparse.validate.records import ValidationReport


@dataclass(frozen=True)
class InspectResult:
    path: str
    masks: MaskSet
    patterns: Mapping[str, Pattern]
    summary: Mapping[str, Any]


def inspect(path: str | Path) -> InspectResult:
    """Load a checkpoint of any supported format and measure the pattern of every mask."""
    from simsparse.masks import coverage, io
    from simsparse.masks.patterns import analyze_set, summarize

    masks = io.load(path, keep_weights=False)
    masks = replace(masks, provenance={**masks.provenance, "coverage": coverage.of_checkpoint(masks).line()})
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


def gemm_work(*, m: int, n: int, k: int, pattern: str, dtype: str, seed: int = 0, draw: bool = True) -> LayerWork:
    """One synthetic GEMM layer: a weight [n, k] with a mask of `pattern`, m activation rows.
    `draw=False` keeps only the closed-form Pattern where one exists (no [n, k] mask in memory)."""
    from dataclasses import replace

    from simsparse.graph.synthetic import materialise, pattern_work
    from simsparse.masks.patterns import analyze
    from simsparse.masks.synthetic import make_matrix, parse_pattern

    gemm = Gemm(m=m, n=n, k=k, dtype=dtype)
    recipe = MaskRecipe(pattern=parse_pattern(pattern).text, seed=seed)
    work = pattern_work(name="gemm", op_kind="linear", gemm=gemm, weight_shape=(n, k), recipe=recipe)
    if work is None:
        mat = make_matrix(n, k, pattern, seed=seed)
        pat = analyze(mat, name="gemm")
        shrunk = Gemm(m=m, n=n - pat.rows_removed, k=k - pat.cols_removed, dtype=dtype)
        work = LayerWork(name="gemm", kind="gemm", op_kind="linear", gemm=gemm, mask=mat, pattern=pat,
                         shrunk=shrunk, dtype=dtype)
    if work.pattern.density == 1.0:   # a dense synthetic GEMM is the dense layer: no mask, no pattern
        return replace(work, mask=None, pattern=None, recipe=None)
    return materialise(work) if draw else work


def workload_works(*, workload: Workload, masks: Mapping[str, np.ndarray], batch: int, dtype: str) -> list[LayerWork]:
    from simsparse.graph.lower import layer_works

    return layer_works(workload, batch=batch, dtype=dtype, masks=masks)


def resolve_workload(name_or_path: str) -> Workload:
    from simsparse.graph.catalog import load_workload

    return load_workload(name_or_path)


def mask_works(*, mask_path: str | Path, workload: str | Workload | None, batch: int, dtype: str,
               model: str | None = None, trace_options: Any = None,
               allow_partial: bool = False) -> tuple[list[LayerWork], dict]:
    """Layer works for a checkpoint: its masks bound to the geometry `graph.resolve` finds
    (--workload, --model, the checkpoint's own, a config.json beside it), with the coverage line."""
    from simsparse.graph.bind import bind
    from simsparse.graph.resolve import TraceOptions, geometry_for_checkpoint
    from simsparse.masks import coverage, io

    maskset = io.load(mask_path, keep_weights=False)
    geometry, found_in = geometry_for_checkpoint(maskset, checkpoint=mask_path, workload=workload, model=model,
                                                 opts=trace_options or TraceOptions())
    bound = bind(maskset, geometry)
    cov = coverage.of_binding(maskset, gemm_layers=[o.name for o in geometry.ops if o.kind in ("conv", "linear")],
                              masked=list(bound.masks), unmatched=bound.unmatched)
    coverage.check(cov, source=str(mask_path), allow_partial=allow_partial)
    works = workload_works(workload=geometry, masks=bound.masks, batch=batch, dtype=dtype)
    provenance = {"checkpoint": str(mask_path), "workload": geometry.name, "geometry_from": found_in,
                  "format": maskset.provenance.get("format"), "unmatched_masks": list(bound.unmatched),
                  "coverage": cov.line(), **_llm_provenance(geometry, batch)}
    return works, provenance


def trace(spec: Any, *, example_inputs: Any = None, input_shape: tuple[int, ...] = (), seq: int | None = None,
          decode: bool = False, context: int | None = None, name: str | None = None) -> Workload:
    """Geometry of a model: an nn.Module (with `example_inputs`) or a SPEC string
    (torchvision:NAME, hf:DIR_OR_CONFIG.json, module:pkg.mod:factory; see graph/resolve.py)."""
    from simsparse.graph.resolve import TraceOptions, workload_from_spec

    if not isinstance(spec, str):
        from simsparse.graph.tracing import trace as trace_module

        if example_inputs is None:
            raise SimSparseError("api.trace(model): pass example_inputs (a tensor or tuple the model accepts)")
        return trace_module(spec, example_inputs, name=name or type(spec).__name__)
    wl = workload_from_spec(spec, TraceOptions(input_shape=tuple(input_shape), seq=seq, decode=decode,
                                               context=context))
    return replace(wl, name=name) if name else wl


def _estimate_all(model: ArchModel, works: Sequence[LayerWork], *, engine: str, dense: bool,
                  kernel: str | None, progress: bool) -> list[Estimate]:
    from tqdm import tqdm

    from simsparse.graph.synthetic import materialise

    out = []
    it = tqdm(works, desc="dense" if dense else "layers", disable=not progress, leave=False, file=None)
    for work in it:
        if not dense and not model.plans_from_pattern:
            work = materialise(work)   # this kind still reads the mask: draw it for this layer only
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


def token_rates(report: Report) -> Report:
    """The report with tokens/s and time per output token beside dense, for a language-model
    workload (provenance "llm" holds its phase, tokens per sample and batch); others unchanged."""
    from dataclasses import replace

    llm = report.provenance.get("llm")
    if not llm:
        return report
    tokens = llm["tokens"] * llm["batch"]
    rates = dict(llm, step_latency_s=report.total.latency_s, dense_step_latency_s=report.dense_total.latency_s,
                 tokens_per_s=tokens / report.total.latency_s if report.total.latency_s > 0 else None,
                 dense_tokens_per_s=tokens / report.dense_total.latency_s if report.dense_total.latency_s > 0 else None)
    if llm["phase"] == "decode":   # each sequence of the batch gets one token per step
        rates.update(time_per_output_token_s=report.total.latency_s,
                     dense_time_per_output_token_s=report.dense_total.latency_s)
    return replace(report, provenance={**report.provenance, "llm": rates})


def _llm_provenance(workload: Workload, batch: int) -> dict[str, Any]:
    if not workload.phase:
        return {}
    return {"llm": {"phase": workload.phase, "tokens": workload.tokens, "context": workload.context, "batch": batch}}


def _check_dtype(model: ArchModel, dtype: str | None) -> str:
    dtype = dtype or model.default_dtype()
    if dtype not in DTYPES:
        raise SimSparseError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    if dtype not in model.supported_dtypes():
        raise SimSparseError(f"arch {model.name} does not model dtype {dtype}; it supports "
                             f"{', '.join(model.supported_dtypes())}")
    return dtype


def evaluate(*, arch: str, mask: str | Path | None = None, workload: str | Workload | None = None,
             gemm: str | None = None, pattern: str | None = None, batch: int = 1, dtype: str | None = None,
             engine: str = "analytic", overrides: Sequence[str] = (), kernel: str | None = None,
             seed: int = 0, progress: bool = False, model: Any = None, example_inputs: Any = None,
             input_shape: tuple[int, ...] = (), seq: int | None = None, decode: bool = False,
             context: int | None = None, allow_partial: bool = False) -> Report:
    """`simsparse evaluate`: a checkpoint, a workload with a synthetic pattern, or a single GEMM.

    `model` gives the geometry instead of `workload`: a SPEC string (torchvision:NAME, hf:DIR,
    module:pkg.mod:factory, with input_shape / seq / decode+context) or an nn.Module with
    `example_inputs`, traced on the fly."""
    from simsparse.graph.resolve import TraceOptions

    opts = TraceOptions(input_shape=tuple(input_shape), seq=seq, decode=decode, context=context)
    model_spec = model if isinstance(model, str) and mask is not None else None
    if model is not None and model_spec is None:
        workload = trace(model, example_inputs=example_inputs, input_shape=tuple(input_shape), seq=seq,
                         decode=decode, context=context)
    if engine not in engines.ENGINE_NAMES:
        raise SimSparseError(f"unknown engine {engine!r}; use one of {', '.join(engines.ENGINE_NAMES)}")
    if batch < 1:
        raise SimSparseError(f"--batch {batch}: must be a positive integer")
    sources = sum(x is not None for x in (mask, gemm)) + (workload is not None and mask is None)
    if sources != 1:
        raise SimSparseError("evaluate needs exactly one of --mask CKPT, --workload W --pattern P, --gemm M,N,K --pattern P")
    model = load_arch(arch, overrides)
    dtype = _check_dtype(model, dtype)
    if kernel is not None and "kernel" not in __import__("inspect").signature(model.plan).parameters:
        raise SimSparseError(f"--kernel applies to archs that offer several kernels (CPU); {model.name} is "
                             f"a {model.kind} and picks its own format")
    provenance: dict[str, Any] = {"arch_source": model.source}
    if mask is not None:
        works, prov = mask_works(mask_path=mask, workload=workload, batch=batch, dtype=dtype, model=model_spec,
                                 trace_options=opts, allow_partial=allow_partial)
        provenance.update(prov)
    elif gemm is not None:
        m, n, k = parse_gemm(gemm)
        works = [gemm_work(m=m, n=n, k=k, pattern=pattern or "dense", dtype=dtype, seed=seed, draw=False)]
        provenance.update({"gemm": [m, n, k], "pattern": pattern or "dense"})
    else:
        from simsparse.graph.synthetic import synthetic_works

        wl = workload if isinstance(workload, Workload) else resolve_workload(workload)
        works = synthetic_works(wl, pattern or "dense", seed=seed, batch=batch, dtype=dtype)
        provenance.update({"workload": wl.name, "pattern": pattern or "dense", "batch": batch})
        provenance.update(_llm_provenance(wl, batch))
    return token_rates(run_model(model=model, works=works, engine=engine, dtype=dtype, kernel=kernel,
                                 provenance=provenance, progress=progress))


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


# ----------------------------------------------------------------------------- validate, calibrate

VALIDATE_DEVICES = ("published", "cpu", "cuda")


def validate(*, device: str, engine: str = "analytic", csv_path: str | Path | None = None,
             corpora: Sequence[str] | None = None, gpu_archs: Mapping[str, str] | None = None,
             calibration: str = "fresh", progress: bool = False) -> ValidationReport:
    """`simsparse validate`: the model beside measurements. published: every shipped corpus (or
    `corpora`, or the one CSV `csv_path`); cpu: kernels timed here (`calibration` fresh|stored);
    cuda: kernels timed on this GPU. `gpu_archs` maps GPU names to arch specs explicitly."""
    if device not in VALIDATE_DEVICES:
        raise SimSparseError(f"unknown device {device!r}; use one of {', '.join(VALIDATE_DEVICES)}")
    if device != "published" and (csv_path is not None or corpora):
        raise SimSparseError("--csv and --corpus apply to --device published only")
    if device == "published":
        return published_validation.run(corpora=corpora, csv_path=csv_path, engine=engine, gpu_archs=gpu_archs)
    if device == "cuda":
        return cuda_validation.run(progress=progress, engine=engine, gpu_archs=gpu_archs)
    if engine != "analytic" or gpu_archs:
        raise SimSparseError("validate --device cpu runs the analytic engine on this machine; "
                             "--engine cycle and --gpu-arch apply to the GPU devices")
    return cpu_validation.run(progress=progress, calibration=calibration)


def calibrate(*, device: str = "cpu", progress: bool = False, save: bool = True) -> cpu_calibration.CalibrationResult:
    """`simsparse calibrate`: fit the CPU model's kernel parameters here and store them for cpu_host."""
    return cpu_calibration.run(device=device, progress=progress, save=save)


# ----------------------------------------------------------------------------- training


def train(*, method: str, model: str, data: str, sparsity: float, out: Path, nm: tuple[int, int] | None = None,
          steps: int | None = None, epochs: int | None = None, recipe: str | None = None,
          recipe_overrides: tuple[str, ...] = (), seed: int = 0, batch_size: int | None = None,
          lr: float | None = None, no_ablation: bool = False, distribution: str | None = None,
          world_size: int = 1, save_every: int | None = None, resume_from: Path | None = None,
          model_options: Mapping[str, Any] | None = None, progress: bool = True) -> TrainResult:
    """Train with a DST method and write a native checkpoint (simsparse.dst.train.run)."""
    return run_training(method=method, model=model, data=data, sparsity=sparsity, out=out, nm=nm, steps=steps,
                        epochs=epochs, recipe=recipe, recipe_overrides=recipe_overrides, seed=seed,
                        batch_size=batch_size, lr=lr, no_ablation=no_ablation, distribution=distribution,
                        progress=progress, world_size=world_size, save_every=save_every, resume_from=resume_from,
                        model_options=model_options)


def explain_training(*, method: str, model: str, data: str, sparsity: float, nm: tuple[int, int] | None = None,
                     steps: int | None = None, epochs: int | None = None, recipe: str | None = None,
                     recipe_overrides: tuple[str, ...] = (), seed: int = 0, batch_size: int | None = None,
                     no_ablation: bool = False, distribution: str | None = None,
                     model_options: Mapping[str, Any] | None = None) -> TrainingPlan:
    """The update schedule `train` would follow with these arguments, without training (dst.explain)."""
    return explain(method=method, model=model, data=data, sparsity=sparsity, nm=nm, steps=steps, epochs=epochs,
                   recipe=recipe, recipe_overrides=recipe_overrides, seed=seed, batch_size=batch_size,
                   no_ablation=no_ablation, distribution=distribution, model_options=model_options)


# ----------------------------------------------------------------------------- delegated steps


def delegate(module: str, function: str) -> Callable[..., Any]:
    """The function `function` of `module`, imported on first use."""
    import importlib

    return getattr(importlib.import_module(module), function)
