"""`api` for one network: read and inspect masks, trace a model, bind masks to geometry, lower to
layer works, plan and estimate them on an arch (`evaluate`, `compare`, `run_model`), and write a
physically shrunk checkpoint (`shrink`). The pipeline is the package docstring's (simsparse/api).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from tqdm import tqdm

from simsparse import engines
from simsparse.archs import ArchModel, load_arch
from simsparse.errors import GeometryError, SimSparseError
from simsparse.graph.bind import bind
from simsparse.graph.catalog import load_workload
from simsparse.graph.lower import layer_works
from simsparse.graph.resolve import TraceOptions, geometry_for_checkpoint, workload_from_spec
from simsparse.graph.shrink import DEFAULT_POLICY, check_policy, plan as shrink_plan, removal_of_mask
from simsparse.graph.shrink_state import check_removable, shrink_state
from simsparse.graph.shrink_works import label, provenance as shrink_provenance, shrunk_works, standalone
from simsparse.graph.synthetic import synthetic_gemm_work, synthetic_works
from simsparse.masks.patterns import analyze_set, summarize
from simsparse.parse import check_pattern_fits, parse_batch, parse_gemm, parse_pattern, parse_seed
from simsparse.records import Estimate, LayerWork, MaskSet, Pattern, Report, Workload, sum_estimates
from simsparse.units import DTYPES


# under memory.reuse=scalesim both systolic engines replay SCALE-Sim's window advances event by event:
# ~0.5 ms per GEMM row (100 000 rows took ~50 s), so GEMM rows beyond this are refused (ideal-tiling has no bound)
SCALESIM_MAX_ROWS = 2**15


@dataclass(frozen=True)
class InspectResult:
    path: str
    masks: MaskSet
    patterns: Mapping[str, Pattern]
    summary: Mapping[str, Any]


def _path(value: str | Path | None, *, what: str) -> Path | None:
    """A path argument: None stays None; an empty one is refused (Path("") would quietly mean ".")."""
    if value is None:
        return None
    if not str(value).strip():
        raise SimSparseError(f"{what} is empty; give a path")
    return Path(value)


def load_masks(*, path: str | Path, keep_weights: bool = False) -> MaskSet:
    """A checkpoint of any supported format as a MaskSet (never unpickles code; weights dropped
    unless `keep_weights`)."""
    path = _path(path, what="checkpoint path")
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


def mask_works(*, mask_path: str | Path, workload: str | Workload | None, batch: int, dtype: str,
               model: str | None = None, trace_options: TraceOptions = TraceOptions(),
               allow_partial: bool = False, shrink: bool = True, residual_policy: str = DEFAULT_POLICY,
               strict: bool = False) -> tuple[list[LayerWork], dict]:
    """Layer works for a checkpoint: its masks bound (once) to the geometry `graph.resolve` finds
    (--workload, --model, the checkpoint's own, a config.json beside it), with the coverage line;
    `shrink`: the channels the masks remove are removed from the network first (graph.shrink)."""
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
    works, provenance["shrink"] = shrunk_works(works, geometry, batch=batch, dtype=dtype, shrink=shrink,
                                               policy=residual_policy, strict=strict)
    return works, provenance


def estimate_works(*, model: ArchModel, works: Sequence[LayerWork], engine: str, dense: bool = False,
                   kernel: str | None = None, progress: bool = False) -> list[Estimate]:
    """Every layer planned on `model` (the dense baseline with `dense`) and timed by `engine`. A forced
    `kernel` applies to the layers that have a mask; a layer without one (a classifier a recipe kept
    dense) runs dense, and its notes say so."""
    masked = any(w.pattern is not None for w in works if w.gemm is not None)
    if kernel not in (None, "dense") and not dense and not masked:
        raise SimSparseError(f"--kernel {kernel} runs masked layers, and every layer here is dense; give a sparse "
                             "--pattern or --mask, or leave --kernel out")
    out = []
    for work in tqdm(works, desc="dense" if dense else "layers", disable=not progress, leave=False):
        forced = kernel if work.pattern is not None or work.gemm is None else None
        plan = model.plan(work, dense=dense, kernel=forced)
        if forced != kernel and not dense:
            plan = replace(plan, notes=plan.notes + (f"--kernel {kernel} applies to masked layers: this one has no "
                                                     "mask and runs dense",))
        out.append(engines.estimate(plan, model, engine))
    return out


def run_model(*, model: ArchModel, works: Sequence[LayerWork], engine: str, dtype: str,
              kernel: str | None = None, provenance: Mapping[str, Any] | None = None,
              progress: bool = False) -> Report:
    """Estimate every layer, beside the dense baseline of the same layers on the same arch (for the
    layers of a shrunk network: of the layers they came from, `LayerWork.shrink`)."""
    if not works:
        raise GeometryError("nothing to evaluate: the workload has no layers")
    model.check_kernel(kernel)
    est = estimate_works(model=model, works=works, engine=engine, kernel=kernel, progress=progress)
    baseline = [w.shrink.original if w.shrink is not None else w for w in works]   # a shrunk layer's own layer
    dense = estimate_works(model=model, works=baseline, engine=engine, dense=True,
                           kernel="dense" if kernel else None, progress=progress)
    est = [label(e, w, d) for e, w, d in zip(est, works, dense)]
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
             context: int | None = None, allow_partial: bool = False, shrink: bool = True,
             residual_policy: str = DEFAULT_POLICY, strict: bool = False, software: str | None = None) -> Report:
    """`simsparse evaluate`: a checkpoint, a workload with a synthetic pattern, or a single GEMM.
    `software` times it under that software stack of the arch (GPU: kernel, pytorch-eager, ...;
    default: the spec's own).

    `model` gives the geometry instead of `workload`: a SPEC string (torchvision:NAME, hf:DIR,
    module:pkg.mod:factory, with input_shape / seq / decode+context) or an nn.Module with
    `example_inputs`, traced on the fly. `shrink` (default): channels (and attention heads) the
    masks remove are removed from the network before any arch runs it (graph.shrink, residual
    groups per `residual_policy`: prune-skip | no-skip; `strict`: a residual channel removed by only
    some members is an error); the report's dense baseline stays the original network."""
    opts = TraceOptions(input_shape=tuple(input_shape), seq=seq, decode=decode, context=context)
    model_spec = model if isinstance(model, str) and mask is not None else None
    if model is not None and model_spec is None:
        workload = trace(model=model, example_inputs=example_inputs, input_shape=tuple(input_shape), seq=seq,
                         decode=decode, context=context)
    if engine not in engines.ENGINE_NAMES:
        raise SimSparseError(f"unknown engine {engine!r}; use one of {', '.join(engines.ENGINE_NAMES)}")
    batch, seed = parse_batch(batch), parse_seed(seed)
    sources = sum(x is not None for x in (mask, gemm)) + (workload is not None and mask is None)
    if sources != 1:
        raise SimSparseError("evaluate needs exactly one of --mask CKPT, --workload W --pattern P, --gemm M,N,K --pattern P")
    pattern = "dense" if pattern is None else parse_pattern(pattern).text
    arch_model = load_arch(arch, overrides)
    if software is not None:
        arch_model = arch_model.with_software(software)
    dtype = _check_dtype(arch_model, dtype)
    arch_model.check_kernel(kernel)
    check_policy(residual_policy)
    provenance: dict[str, Any] = {"arch_source": arch_model.source}
    if mask is not None:
        works, prov = mask_works(mask_path=mask, workload=workload, batch=batch, dtype=dtype, model=model_spec,
                                 trace_options=opts, allow_partial=allow_partial, shrink=shrink,
                                 residual_policy=residual_policy, strict=strict)
        provenance.update(prov)
    elif gemm is not None:
        if batch != 1:
            raise SimSparseError(f"--batch {batch} does not apply to --gemm M,N,K: M is the GEMM's rows (the batch "
                                 "times the tokens or pixels per sample); give it in M and leave --batch out")
        m, n, k = parse_gemm(gemm)
        check_pattern_fits(parse_pattern(pattern), reduction=k, what="--pattern")
        works = [synthetic_gemm_work(m=m, n=n, k=k, pattern=pattern, dtype=dtype, seed=seed)]
        works = [standalone(w) for w in works] if shrink else works
        provenance.update({"gemm": [m, n, k], "pattern": pattern,
                           "shrink": {"policy": "lone GEMM" if shrink else "off"}})
    else:
        wl = workload if isinstance(workload, Workload) else load_workload(workload)
        reductions = [math.prod(o.weight_shape[1:]) for o in wl.ops if o.weight_shape and o.sparsifiable]
        check_pattern_fits(parse_pattern(pattern), reduction=max(reductions, default=1), what="--pattern")
        works = synthetic_works(wl, pattern, seed=seed, batch=batch, dtype=dtype, policy=residual_policy)
        provenance.update({"workload": wl.name, "pattern": pattern, "batch": batch, **_llm_provenance(wl, batch)})
        works, provenance["shrink"] = shrunk_works(works, wl, batch=batch, dtype=dtype, shrink=shrink,
                                                   policy=residual_policy, strict=strict)
    _check_scalesim_rows(arch_model, works, batch=batch)
    return token_rates(run_model(model=arch_model, works=works, engine=engine, dtype=dtype, kernel=kernel,
                                 provenance=provenance, progress=progress))


def _check_scalesim_rows(model: ArchModel, works: Sequence[LayerWork], *, batch: int) -> None:
    """Under `memory.reuse: scalesim` the systolic engines replay SCALE-Sim's window advances event by
    event, so their time and memory grow with the GEMM rows (ideal-tiling replicates identical runs)."""
    rows = max((w.gemm.m for w in works if w.gemm is not None), default=0)
    scalesim = model.kind == "nm_systolic" and model.spec.memory.reuse == "scalesim"
    if scalesim and rows > SCALESIM_MAX_ROWS:
        raise SimSparseError(f"memory.reuse=scalesim on {model.name} replays every SRAM window; --batch {batch} gives "
                             f"GEMMs of {rows} rows, more than the {SCALESIM_MAX_ROWS} it replays; use "
                             "--set memory.reuse=ideal-tiling or a smaller --batch")


def compare(*, masks: Sequence[str], archs: Sequence[str], workload: str | None = None, batch: int = 1,
            dtype: str | None = None, engine: str = "analytic", progress: bool = False, shrink: bool = True,
            residual_policy: str = DEFAULT_POLICY, strict: bool = False, software: str | None = None) -> list[Report]:
    """Every checkpoint on every arch (each beside its own dense baseline; shrunk as `evaluate` does).
    `software` applies to the archs that have named software stacks (GPUs); it is refused if none
    of them has."""
    stacks = software_stacks(archs=archs, software=software)
    reports = []
    for arch in archs:
        for m in masks:
            reports.append(evaluate(arch=arch, mask=m, workload=workload, batch=batch, dtype=dtype,
                                    engine=engine, progress=progress, shrink=shrink,
                                    residual_policy=residual_policy, strict=strict, software=stacks[arch]))
    return reports


def software_stacks(*, archs: Sequence[str], software: str | None) -> dict[str, str | None]:
    """arch -> the software stack to time it under: `software` for the archs that name stacks (GPUs),
    None for the others (and for all when `software` is None). Checked before any work: refused when
    no arch names stacks, or when an arch that does has no stack of that name."""
    models = {a: load_arch(a) for a in archs}
    named = {a: bool(m.software_stacks()) for a, m in models.items()}
    if software is not None and not any(named.values()):
        raise SimSparseError(f"--software {software}: none of the archs ({', '.join(archs)}) has named software "
                             "stacks; --software applies to GPU archs")
    stacks = {a: software if named[a] else None for a in archs}
    for a, stack in stacks.items():
        if stack is not None:
            models[a].with_software(stack)   # an unknown stack: SpecError naming the known ones
    return stacks


def shrink(*, path: str | Path, out: str | Path, workload: str | Workload | None = None, model: str | None = None,
           residual_policy: str = DEFAULT_POLICY, strict: bool = False,
           trace_options: TraceOptions = TraceOptions()) -> dict[str, Any]:
    """`simsparse shrink`: write the physically shrunk dense network of a checkpoint (graph.shrink's
    rule) as a native checkpoint (state_dict, restricted masks, shrunk geometry; loadable with
    weights_only=True) and return what changed: parameters and FLOPs per sample before and after."""
    from simsparse.masks import io, native  # torch: reads and writes checkpoints

    check_policy(residual_policy)
    maskset = load_masks(path=path)
    geometry, found_in = geometry_for_checkpoint(maskset, checkpoint=path, workload=workload, model=model,
                                                 opts=trace_options)
    state = io.load_state(path)
    bound = bind(maskset, geometry)
    ns = shrink_plan(geometry, {n: removal_of_mask(m) for n, m in bound.masks.items()}, policy=residual_policy,
                     strict=strict)
    check_removable(state, ns)
    small, masks = shrink_state(state, ns), shrink_state(dict(bound.masks), ns)
    summary = {"source": str(path), "out": str(out), "geometry_from": found_in,
               "parameters_before": _parameters(state), "parameters_after": _parameters(small),
               **shrink_provenance(ns, layers=False)}
    summary["flops_per_sample_before"] = 2 * summary["macs_per_sample_before"]
    summary["flops_per_sample_after"] = 2 * summary["macs_per_sample_after"]
    meta = {**maskset.provenance.get("meta", {}), "shrunk": {k: v for k, v in summary.items() if k != "out"}}
    native.save(out, masks=masks, weights={k: small[k] for k in masks}, geometry=ns.workload, meta=meta, state=small)
    return summary


def _parameters(state: Mapping[str, Any]) -> int:
    """Learned tensors' elements (running statistics and counters left out)."""
    skip = ("running_mean", "running_var", "num_batches_tracked")
    return sum(int(v.numel()) for k, v in state.items() if not k.endswith(skip) and v.is_floating_point())


# ----------------------------------------------------------------------------- report


def parse_batches(text: str | Sequence[int]) -> tuple[int, ...]:
    """"1,256" (or a sequence of ints) as distinct batch sizes, in the order given; each item is read
    by the one strict parser (`parse.parse_batch`: plain ASCII decimal, 1..MAX_DIM)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    if not items:
        raise SimSparseError("--batch is empty: expected positive integers separated by commas, e.g. 1,256")
    return tuple(dict.fromkeys(parse_batch(x) for x in items))
