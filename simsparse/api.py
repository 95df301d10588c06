"""The only place that wires steps together, for every command: inspect, evaluate, compare, trace,
sweep, train (and its --explain), measure, validate, calibrate, archs, workloads (the demo is a
scripted tour of these). Every function takes keyword-only arguments and returns records or plain
data; rendering is report.py's (and validate/render.py's) job, argument parsing cli.py's.

The pipeline of `evaluate` (DESIGN.md §2): masks (masks.io) -> bound once to the geometry
(graph.resolve finds it, graph.bind binds) -> layer works with their Patterns (graph.lower
measures them; graph.synthetic gives closed-form ones for synthetic patterns, no mask drawn) ->
per layer `model.plan(work, dense=...)` (archs: every kind plans from the Pattern alone) ->
`engines.estimate(plan, model, engine)` -> `Report`. `run_model` is that last part for any list
of works.

Commands that need torch, numba or scipy (reading checkpoints, tracing, training, timing kernels,
validating against them) import their module inside the function, each with its reason, so that
`simsparse archs` or an `evaluate --gemm` do not pay seconds of imports they never use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from tqdm import tqdm

from simsparse import dse, engines
from simsparse.archs import ArchModel, load_arch, shipped_arch_names
from simsparse.errors import GeometryError, SimSparseError
from simsparse.graph.bind import bind
from simsparse.graph.catalog import list_workloads as catalog_workloads
from simsparse.graph.catalog import load_workload
from simsparse.graph.lower import layer_works
from simsparse.graph.resolve import TraceOptions, geometry_for_checkpoint, workload_from_spec
from simsparse.graph.synthetic import synthetic_gemm_work, synthetic_works
from simsparse.masks.patterns import analyze_set, summarize
from simsparse.masks.synthetic import parse_pattern
from simsparse.records import Estimate, LayerWork, MaskSet, Pattern, Report, Workload, sum_estimates
from simsparse.units import DTYPES
from simsparse.validate.records import ValidationReport

if TYPE_CHECKING:  # annotations only: these modules import torch or scipy
    from simsparse.dst.explain import TrainingPlan
    from simsparse.dst.job import TrainResult
    from simsparse.validate.calibrate import CalibrationResult


@dataclass(frozen=True)
class InspectResult:
    path: str
    masks: MaskSet
    patterns: Mapping[str, Pattern]
    summary: Mapping[str, Any]


def load_masks(*, path: str | Path, keep_weights: bool = False) -> MaskSet:
    """A checkpoint of any supported format as a MaskSet (never unpickles code; weights dropped
    unless `keep_weights`)."""
    from simsparse.masks import io  # torch (~1.7 s): only commands that read checkpoints pay it

    return io.load(path, keep_weights=keep_weights)


def inspect(*, path: str | Path) -> InspectResult:
    """Load a checkpoint of any supported format and measure the pattern of every mask."""
    from simsparse.masks import coverage  # torch: reads the checkpoint's tensors

    masks = load_masks(path=path)
    masks = replace(masks, provenance={**masks.provenance, "coverage": coverage.of_checkpoint(masks).line()})
    patterns = analyze_set(masks)
    return InspectResult(path=str(path), masks=masks, patterns=patterns, summary=summarize(patterns))


def trace(*, model: Any, example_inputs: Any = None, input_shape: tuple[int, ...] = (), seq: int | None = None,
          decode: bool = False, context: int | None = None, name: str | None = None) -> Workload:
    """Geometry of a model: an nn.Module (with `example_inputs`) or a SPEC string
    (torchvision:NAME, hf:DIR_OR_CONFIG.json, module:pkg.mod:factory; see graph/resolve.py)."""
    if not isinstance(model, str):
        from simsparse.graph.tracing import trace as trace_module  # torch: tracing runs the module

        if example_inputs is None:
            raise SimSparseError("api.trace(model=module): pass example_inputs (a tensor or tuple the model accepts)")
        return trace_module(model, example_inputs, name=name or type(model).__name__)
    wl = workload_from_spec(model, TraceOptions(input_shape=tuple(input_shape), seq=seq, decode=decode,
                                                context=context))
    return replace(wl, name=name) if name else wl


# ----------------------------------------------------------------------------- evaluate


def parse_gemm(text: str) -> tuple[int, int, int]:
    try:
        m, n, k = (int(x) for x in str(text).split(","))
    except ValueError:
        raise SimSparseError(f"--gemm {text!r}: expected three positive integers M,N,K (e.g. 3072,768,3072)") from None
    if min(m, n, k) <= 0:
        raise SimSparseError(f"--gemm {text!r}: M, N and K must be positive")
    return m, n, k


def mask_works(*, mask_path: str | Path, workload: str | Workload | None, batch: int, dtype: str,
               model: str | None = None, trace_options: TraceOptions = TraceOptions(),
               allow_partial: bool = False) -> tuple[list[LayerWork], dict]:
    """Layer works for a checkpoint: its masks bound (once) to the geometry `graph.resolve` finds
    (--workload, --model, the checkpoint's own, a config.json beside it), with the coverage line."""
    from simsparse.masks import coverage  # torch: reads the checkpoint's tensors

    maskset = load_masks(path=mask_path)
    geometry, found_in = geometry_for_checkpoint(maskset, checkpoint=mask_path, workload=workload, model=model,
                                                 opts=trace_options)
    bound = bind(maskset, geometry)
    cov = coverage.of_binding(maskset, gemm_layers=[o.name for o in geometry.ops if o.kind in ("conv", "linear")],
                              masked=list(bound.masks), unmatched=bound.unmatched)
    coverage.check(cov, source=str(mask_path), allow_partial=allow_partial)
    works = layer_works(geometry, batch=batch, dtype=dtype, masks=bound.masks)
    provenance = {"checkpoint": str(mask_path), "workload": geometry.name, "geometry_from": found_in,
                  "format": maskset.provenance.get("format"), "unmatched_masks": list(bound.unmatched),
                  "coverage": cov.line(), **_llm_provenance(geometry, batch)}
    return works, provenance


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
                  dense_estimates=tuple(dense), dense_total=sum_estimates(dense), provenance=dict(provenance or {}),
                  software=model.software)


def token_rates(report: Report) -> Report:
    """The report with tokens/s and time per output token beside dense, for a language-model
    workload (provenance "llm" holds its phase, tokens per sample and batch); others unchanged."""
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
             context: int | None = None, allow_partial: bool = False, software: str | None = None) -> Report:
    """`simsparse evaluate`: a checkpoint, a workload with a synthetic pattern, or a single GEMM.
    `software` times it under that software stack of the arch (GPU: kernel, pytorch-eager, ...;
    default: the spec's own).

    `model` gives the geometry instead of `workload`: a SPEC string (torchvision:NAME, hf:DIR,
    module:pkg.mod:factory, with input_shape / seq / decode+context) or an nn.Module with
    `example_inputs`, traced on the fly."""
    opts = TraceOptions(input_shape=tuple(input_shape), seq=seq, decode=decode, context=context)
    model_spec = model if isinstance(model, str) and mask is not None else None
    if model is not None and model_spec is None:
        workload = trace(model=model, example_inputs=example_inputs, input_shape=tuple(input_shape), seq=seq,
                         decode=decode, context=context)
    if engine not in engines.ENGINE_NAMES:
        raise SimSparseError(f"unknown engine {engine!r}; use one of {', '.join(engines.ENGINE_NAMES)}")
    if batch < 1:
        raise SimSparseError(f"--batch {batch}: must be a positive integer")
    sources = sum(x is not None for x in (mask, gemm)) + (workload is not None and mask is None)
    if sources != 1:
        raise SimSparseError("evaluate needs exactly one of --mask CKPT, --workload W --pattern P, --gemm M,N,K --pattern P")
    arch_model = load_arch(arch, overrides)
    if software is not None:
        arch_model = arch_model.with_software(software)
    dtype = _check_dtype(arch_model, dtype)
    arch_model.check_kernel(kernel)
    provenance: dict[str, Any] = {"arch_source": arch_model.source}
    if mask is not None:
        works, prov = mask_works(mask_path=mask, workload=workload, batch=batch, dtype=dtype, model=model_spec,
                                 trace_options=opts, allow_partial=allow_partial)
        provenance.update(prov)
    elif gemm is not None:
        m, n, k = parse_gemm(gemm)
        works = [synthetic_gemm_work(m=m, n=n, k=k, pattern=pattern or "dense", dtype=dtype, seed=seed)]
        provenance.update({"gemm": [m, n, k], "pattern": pattern or "dense"})
    else:
        wl = workload if isinstance(workload, Workload) else load_workload(workload)
        works = synthetic_works(wl, pattern or "dense", seed=seed, batch=batch, dtype=dtype)
        provenance.update({"workload": wl.name, "pattern": pattern or "dense", "batch": batch,
                           **_llm_provenance(wl, batch)})
    return token_rates(run_model(model=arch_model, works=works, engine=engine, dtype=dtype, kernel=kernel,
                                 provenance=provenance, progress=progress))


def compare(*, masks: Sequence[str], archs: Sequence[str], workload: str | None = None, batch: int = 1,
            dtype: str | None = None, engine: str = "analytic", progress: bool = False,
            software: str | None = None) -> list[Report]:
    """Every checkpoint on every arch (each beside its own dense baseline). `software` applies to
    the archs that have named software stacks (GPUs); it is refused if none of them has."""
    if software is not None and not any(load_arch(a).software_stacks() for a in archs):
        raise SimSparseError(f"--software {software}: none of the archs ({', '.join(archs)}) has named software "
                             "stacks; --software applies to GPU archs")
    reports = []
    for arch in archs:
        stack = software if software is not None and load_arch(arch).software_stacks() else None
        for m in masks:
            reports.append(evaluate(arch=arch, mask=m, workload=workload, batch=batch, dtype=dtype,
                                    engine=engine, progress=progress, software=stack))
    return reports


def sweep(*, sweep_file: str | Path, out: str | Path, executor: str = "local", resume: bool = False,
          progress: bool = False) -> list[dict]:
    """`simsparse sweep`: every point of the grid through `evaluate`, one CSV row each."""
    return dse.run(sweep=sweep_file, out=out, executor=executor, resume=resume, progress=progress,
                   evaluate=evaluate)


# ----------------------------------------------------------------------------- training


def _nm_pair(nm: str | None) -> tuple[int, int] | None:
    if nm is None:
        return None
    spec = parse_pattern(nm)
    if spec.kind != "nm":
        raise SimSparseError(f"--nm {nm!r}: expected N:M such as 1:8")
    return spec.n, spec.m


def train(*, method: str, model: str, data: str, sparsity: float, out: str | Path, nm: str | None = None,
          steps: int | None = None, epochs: int | None = None, recipe: str | None = None, seed: int = 0,
          batch_size: int | None = None, lr: float | None = None, no_ablation: bool = False,
          distribution: str | None = None, world_size: int = 1, recipe_overrides: Sequence[str] = (),
          save_every: int | None = None, resume_from: str | Path | None = None, progress: bool = True,
          model_options: Mapping[str, Any] | None = None) -> TrainResult:
    """`simsparse train`: a DST run written as a native checkpoint (`nm` as "N:M", e.g. "1:8")."""
    from simsparse.dst.train import run  # the trainer imports torch

    return run(method=method, model=model, data=data, sparsity=sparsity, nm=_nm_pair(nm), steps=steps, epochs=epochs,
               recipe=recipe, seed=seed, out=Path(out), batch_size=batch_size, lr=lr, no_ablation=no_ablation,
               distribution=distribution, progress=progress, world_size=world_size,
               recipe_overrides=tuple(recipe_overrides), save_every=save_every, model_options=model_options,
               resume_from=Path(resume_from) if resume_from else None)


def explain_training(*, method: str, model: str, data: str, sparsity: float, nm: str | None = None,
                     steps: int | None = None, epochs: int | None = None, recipe: str | None = None,
                     recipe_overrides: Sequence[str] = (), seed: int = 0, batch_size: int | None = None,
                     no_ablation: bool = False, distribution: str | None = None,
                     model_options: Mapping[str, Any] | None = None) -> TrainingPlan:
    """`simsparse train --explain`: the update schedule `train` would follow with these arguments,
    without training (dst.explain)."""
    from simsparse.dst.explain import explain  # the trainer imports torch

    return explain(method=method, model=model, data=data, sparsity=sparsity, nm=_nm_pair(nm), steps=steps,
                   epochs=epochs, recipe=recipe, recipe_overrides=tuple(recipe_overrides), seed=seed,
                   batch_size=batch_size, no_ablation=no_ablation, distribution=distribution,
                   model_options=model_options)


# ----------------------------------------------------------------------------- measure, validate, calibrate


def measure(*, device: str, gemm: str | None = None, pattern: str | None = None, suite: str | None = None,
            kernel: str | None = None, threads: int | None = None, cache: str = "warm", progress: bool = False):
    """`simsparse measure`: time real kernels on one GEMM or a named suite (returns a MeasureResult)."""
    from simsparse.kernels import measure as kernel_measure  # torch and numba kernels: only when timing

    if (gemm is None) == (suite is None):
        raise SimSparseError("measure needs exactly one of --gemm M,N,K (with --pattern) or --suite NAME")
    return kernel_measure.run(device=device, gemm=parse_gemm(gemm) if gemm else None, pattern=pattern, suite=suite,
                              kernel=kernel, threads=threads, cache=cache, progress=progress)


VALIDATE_DEVICES = ("published", "cpu", "cuda")


def validate(*, device: str, engine: str = "analytic", csv_path: str | Path | None = None,
             corpora: Sequence[str] | None = None, gpu_archs: Mapping[str, str] | None = None,
             calibration: str = "fresh", progress: bool = False, software: str | None = None) -> ValidationReport:
    """`simsparse validate`: the model beside measurements. published: every shipped corpus (or
    `corpora`, or the one CSV `csv_path`), each row under the software stack it was measured with
    (`software`: only the rows of that stack); cpu: kernels timed here (`calibration`
    fresh|stored); cuda: kernels timed on this GPU. `gpu_archs` maps GPU names to arch specs."""
    if device not in VALIDATE_DEVICES:
        raise SimSparseError(f"unknown device {device!r}; use one of {', '.join(VALIDATE_DEVICES)}")
    if device != "published" and (csv_path is not None or corpora or software):
        raise SimSparseError("--csv, --corpus and --software apply to --device published only")
    if device == "published":
        from simsparse.validate import published  # scipy.stats (Spearman): only validate pays it

        return published.run(corpora=corpora, csv_path=Path(csv_path) if csv_path else None, engine=engine,
                             gpu_archs=gpu_archs, software=software)
    if device == "cuda":
        from simsparse.validate import cuda  # torch (CUDA) kernels

        return cuda.run(progress=progress, engine=engine, gpu_archs=gpu_archs)
    if engine != "analytic" or gpu_archs:
        raise SimSparseError("validate --device cpu runs the analytic engine on this machine; "
                             "--engine cycle and --gpu-arch apply to the GPU devices")
    from simsparse.validate import cpu  # torch and numba kernels, scipy

    return cpu.run(progress=progress, calibration=calibration)


def calibrate(*, device: str = "cpu", progress: bool = False, save: bool = True) -> CalibrationResult:
    """`simsparse calibrate`: fit the CPU model's kernel parameters here and store them for cpu_host."""
    from simsparse.validate import calibrate as cpu_calibration  # torch and numba kernels, scipy

    return cpu_calibration.run(device=device, progress=progress, save=save)


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
