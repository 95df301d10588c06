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

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from tqdm import tqdm

from simsparse import dse, engines, report_data, report_md
from simsparse.archs import ArchModel, load_arch, shipped_arch_names
from simsparse.errors import GeometryError, SimSparseError
from simsparse.graph.bind import bind
from simsparse.graph.catalog import list_workloads as catalog_workloads
from simsparse.graph.catalog import load_workload
from simsparse.graph.lower import layer_works
from simsparse.graph.shrink import DEFAULT_POLICY, check_policy, plan as shrink_plan, removal_of_mask
from simsparse.graph.shrink_state import check_removable, shrink_state
from simsparse.graph.shrink_works import label, provenance as shrink_provenance, shrunk_works, standalone
from simsparse.graph.resolve import TraceOptions, geometry_for_checkpoint, workload_from_spec
from simsparse.graph.synthetic import synthetic_gemm_work, synthetic_works
from simsparse.masks.patterns import analyze_set, summarize
from simsparse.parse import (check_pattern_fits, parse_batch, parse_count, parse_float, parse_gemm, parse_nm,
                             parse_pattern, parse_seed)
from simsparse.records import Estimate, LayerWork, MaskSet, Pattern, Report, Workload, sum_estimates
from simsparse.report_records import MeasuredRow, Network, ReportData
from simsparse.units import DTYPES
from simsparse.validate.records import ValidationReport

if TYPE_CHECKING:  # annotations only: these modules import torch or scipy
    from simsparse.dst.explain import TrainingPlan
    from simsparse.dst.job import TrainResult
    from simsparse.validate.calibrate import CalibrationResult

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
    """Every layer planned on `model` (the dense baseline with `dense`) and timed by `engine`."""
    out = []
    for work in tqdm(works, desc="dense" if dense else "layers", disable=not progress, leave=False):
        out.append(engines.estimate(model.plan(work, dense=dense, kernel=kernel), model, engine))
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
    stacks = _stacks(archs, software)
    reports = []
    for arch in archs:
        for m in masks:
            reports.append(evaluate(arch=arch, mask=m, workload=workload, batch=batch, dtype=dtype,
                                    engine=engine, progress=progress, shrink=shrink,
                                    residual_policy=residual_policy, strict=strict, software=stacks[arch]))
    return reports


def _stacks(archs: Sequence[str], software: str | None) -> dict[str, str | None]:
    """arch -> the software stack to time it under: `software` for the archs that name stacks (GPUs),
    None for the others (and for all when `software` is None); refused when no arch names stacks."""
    named = {a: bool(load_arch(a).software_stacks()) for a in archs}
    if software is not None and not any(named.values()):
        raise SimSparseError(f"--software {software}: none of the archs ({', '.join(archs)}) has named software "
                             "stacks; --software applies to GPU archs")
    return {a: software if named[a] else None for a in archs}


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
    """"1,256" (or a sequence of ints) as distinct positive batch sizes, in the order given."""
    try:
        items = [int(x) for x in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise SimSparseError(f"--batch {text!r}: expected positive integers separated by commas, e.g. 1,256") from None
    if not items or min(items) < 1:
        raise SimSparseError(f"--batch {text!r}: expected positive integers separated by commas, e.g. 1,256")
    return tuple(dict.fromkeys(items))


def report(*, checkpoints: Sequence[str | Path], archs: Sequence[str], batches: Sequence[int] = (1, 256),
           software: str | None = None, engine: str = "analytic", workload: str | None = None,
           what_if: Sequence[str] = (), measure: bool = True, measure_layers: int = 2, focus: str | None = None,
           title: str = "simsparse report", out: str | Path | None = None, progress: bool = False,
           allow_noisy: bool = False, max_noise: float | None = None, max_wait_s: float | None = None) -> ReportData:
    """`simsparse report`: every checkpoint on every arch at every batch (beside its dense baseline),
    each `what_if` workload with each family's synthetic pattern, kernels timed on this CPU beside
    the CPU model (`measure`, when cpu_host is among the archs; load-aware as `measure`: noisy
    timings are refused unless `allow_noisy`, then shown with their noise), and how every number
    was obtained. With `out`, writes report.md, its figures and the JSON/CSV behind it there.
    Checkpoints are labelled by file name without suffix; bad input fails before any estimate."""
    batches, stacks = parse_batches(batches), _stacks(archs, software)
    noise = {"allow_noisy": allow_noisy, **_noise_limits(max_noise=max_noise, max_wait_s=max_wait_s)}
    labels = report_data.checkpoint_labels(checkpoints, focus=focus, out=out)
    models = {a: load_arch(a) if stacks[a] is None else load_arch(a).with_software(stacks[a]) for a in archs}
    for wl in what_if:
        load_workload(wl)
    inspected = {label: inspect(path=path) for label, path in zip(labels, checkpoints)}
    networks, reports = [], {}
    for label, path in zip(labels, checkpoints):
        for a in archs:
            for b in batches:
                reports[(label, a, b)] = evaluate(arch=a, mask=path, workload=workload, batch=b, engine=engine,
                                                  software=stacks[a])
        networks.append(report_data.checkpoint_network(
            label=label, path=str(path), workload=str(reports[(label, archs[0], batches[0])].provenance["workload"]),
            patterns=inspected[label].patterns, meta=inspected[label].masks.provenance.get("meta") or {}))
    for wl in tqdm(what_if, desc="what-if", disable=not progress, leave=False):
        for family, pattern in report_data.FAMILY_PATTERNS:
            networks.append(report_data.what_if_network(family=family, pattern=pattern, workload=wl))
            for a in archs:
                for b in batches:
                    reports[(networks[-1].label, a, b)] = evaluate(arch=a, workload=wl, pattern=pattern, batch=b,
                                                                   engine=engine, software=stacks[a])
    by_label = {n.label: n for n in networks}
    rows = [report_data.row_of(by_label[label], r, batch=b, kind=models[a].kind) for (label, a, b), r in reports.items()]
    measured = (_measure_beside_model(networks, reports, {k: v.patterns for k, v in inspected.items()},
                                      batch=min(batches), layers=measure_layers, noise=noise)
                if measure and "cpu_host" in archs else ())
    data = ReportData(title=title, batches=batches, networks=tuple(networks), rows=tuple(rows),
                      archs=tuple(report_data.arch_info(models[a], reports, engine=engine) for a in archs),
                      measured=measured, validation=report_data.load_validation_summary(),
                      notes=report_data.what_if_notes(what_if),
                      **report_data.focus_data(focus or report_data.default_focus(rows, batch=max(batches)),
                                               reports, models, batch=max(batches)))
    if out is not None:
        report_md.write_report(data, out)
    return data


MEASURE_THREADS = 1   # one thread on both sides: on a shared machine two-thread timings of µs kernels wait on the scheduler


def _measure_beside_model(networks: Sequence[Network], reports: Mapping[tuple, Report],
                          patterns: Mapping[str, Mapping[str, Pattern]], *, batch: int,
                          layers: int, noise: Mapping[str, Any]) -> tuple[MeasuredRow, ...]:
    """The largest GEMM layers of each sparse trained network, timed here on MEASURE_THREADS with
    synthetic masks of their structure (dense, the family's kernel and the model's pick), beside
    the CPU model of the same GEMM, kernel and thread count. `noise`: `measure`'s noise policy."""
    one_thread = (f"software.threads={MEASURE_THREADS}",)
    out, seen = [], set()
    for net in networks:
        if net.synthetic or (net.density or 1.0) >= 1.0:
            continue
        mine = patterns[net.label]
        for e in report_data.largest_gemm_layers(reports[(net.label, "cpu_host", batch)], layers):
            pattern = report_data.measure_pattern(mine[e.layer]) if e.layer in mine else None
            if pattern is None:
                continue
            gemm = f"{e.m},{e.n},{e.k}"
            picked = evaluate(arch="cpu_host", gemm=gemm, pattern=pattern, overrides=one_thread).estimates[0].format
            for kernel in dict.fromkeys(("dense", report_data.natural_kernel(pattern), picked)):
                if (gemm, pattern, kernel) in seen:
                    continue
                seen.add((gemm, pattern, kernel))
                timed = measure(device="cpu", gemm=gemm, pattern=pattern, kernel=kernel,
                                threads=MEASURE_THREADS, **noise).results[0]
                model = evaluate(arch="cpu_host", gemm=gemm, pattern=pattern, kernel=kernel, overrides=one_thread)
                out.append(MeasuredRow(network=net.label, layer=e.layer, kernel=kernel, m=e.m, n=e.n, k=e.k,
                                       pattern=pattern, measured_s=timed.median_s, iqr_s=timed.iqr_s,
                                       modelled_s=model.total.latency_s, threads=timed.threads,
                                       load_avg_1min=timed.load_avg_1min, noise=timed.noise, noisy=timed.noisy))
    return tuple(out)


def sweep(*, sweep_file: str | Path, out: str | Path, executor: str = "local", resume: bool = False,
          progress: bool = False) -> list[dict]:
    """`simsparse sweep`: every point of the grid through `evaluate`, one CSV row each."""
    return dse.run(sweep=_path(sweep_file, what="sweep file"), out=_path(out, what="--out"), executor=executor, resume=resume, progress=progress,
                   evaluate=evaluate)


# ----------------------------------------------------------------------------- training


def _nm_pair(nm: str | tuple[int, int] | None) -> tuple[int, int] | None:
    if nm is None:
        return None
    return parse_nm(f"{nm[0]}:{nm[1]}" if isinstance(nm, tuple) and len(nm) == 2 else nm)


def _training_numbers(*, sparsity: float, steps: int | None, epochs: int | None, seed: int,
                      batch_size: int | None, lr: float | None = None, world_size: int = 1,
                      save_every: int | None = None) -> dict[str, Any]:
    """The numeric training arguments, checked by the one strict parser (the CLI's flags use the same)."""
    def count(value: Any, what: str) -> int | None:
        return None if value is None else parse_count(value, what=what)

    return {"sparsity": parse_float(sparsity, what="--sparsity", min=0.0, max=1.0),
            "steps": count(steps, "--steps"), "epochs": count(epochs, "--epochs"), "seed": parse_seed(seed),
            "batch_size": count(batch_size, "--batch-size"),
            "lr": None if lr is None else parse_float(lr, what="--lr", min=0.0, min_exclusive=True, max=1e6),
            "world_size": parse_count(world_size, what="--world-size"), "save_every": count(save_every, "--save-every")}


def train(*, method: str, model: str, data: str, sparsity: float, out: str | Path, nm: str | None = None,
          steps: int | None = None, epochs: int | None = None, recipe: str | None = None, seed: int = 0,
          batch_size: int | None = None, lr: float | None = None, no_ablation: bool = False,
          distribution: str | None = None, world_size: int = 1, recipe_overrides: Sequence[str] = (),
          save_every: int | None = None, resume_from: str | Path | None = None, progress: bool = True,
          model_options: Mapping[str, Any] | None = None) -> TrainResult:
    """`simsparse train`: a DST run written as a native checkpoint (`nm` as "N:M", e.g. "1:8")."""
    from simsparse.dst.train import run  # the trainer imports torch

    numbers = _training_numbers(sparsity=sparsity, steps=steps, epochs=epochs, seed=seed, batch_size=batch_size,
                                lr=lr, world_size=world_size, save_every=save_every)
    return run(method=method, model=model, data=data, nm=_nm_pair(nm), recipe=recipe, out=_path(out, what="--out"),
               no_ablation=no_ablation, distribution=distribution, progress=progress,
               recipe_overrides=tuple(recipe_overrides), model_options=model_options,
               resume_from=_path(resume_from, what="--resume"), **numbers)


def explain_training(*, method: str, model: str, data: str, sparsity: float, nm: str | None = None,
                     steps: int | None = None, epochs: int | None = None, recipe: str | None = None,
                     recipe_overrides: Sequence[str] = (), seed: int = 0, batch_size: int | None = None,
                     no_ablation: bool = False, distribution: str | None = None,
                     model_options: Mapping[str, Any] | None = None) -> TrainingPlan:
    """`simsparse train --explain`: the update schedule `train` would follow with these arguments,
    without training (dst.explain)."""
    from simsparse.dst.explain import explain  # the trainer imports torch

    numbers = _training_numbers(sparsity=sparsity, steps=steps, epochs=epochs, seed=seed, batch_size=batch_size)
    for unused in ("lr", "world_size", "save_every"):
        numbers.pop(unused)
    return explain(method=method, model=model, data=data, nm=_nm_pair(nm), recipe=recipe,
                   recipe_overrides=tuple(recipe_overrides), no_ablation=no_ablation, distribution=distribution,
                   model_options=model_options, **numbers)


# ----------------------------------------------------------------------------- measure, validate, calibrate


def measure(*, device: str, gemm: str | tuple[int, int, int] | None = None, pattern: str | None = None,
            suite: str | None = None, kernel: str | None = None, threads: int | None = None, cache: str = "warm",
            progress: bool = False, allow_noisy: bool = False, max_noise: float | None = None,
            max_wait_s: float | None = None):
    """`simsparse measure`: time real kernels on one GEMM or a named suite (returns a MeasureResult).
    On a busy machine it waits up to `max_wait_s`, then refuses timings noisier than `max_noise`
    (IQR/median) unless `allow_noisy` (None: the harness's defaults, kernels/contention.py)."""
    if (gemm is None) == (suite is None):
        raise SimSparseError("measure needs exactly one of --gemm M,N,K (with --pattern) or --suite NAME")
    gemm_mnk = parse_gemm(gemm) if gemm is not None else None   # bad input refused before torch is imported
    threads = None if threads is None else parse_count(threads, what="--threads")
    noise = _noise_limits(max_noise=max_noise, max_wait_s=max_wait_s)
    from simsparse.kernels import measure as kernel_measure  # torch and numba kernels: only when timing

    return kernel_measure.run(device=device, gemm=gemm_mnk, pattern=pattern, suite=suite, kernel=kernel,
                              threads=threads, cache=cache, progress=progress, allow_noisy=allow_noisy, **noise)


def _noise_limits(*, max_noise: float | None, max_wait_s: float | None) -> dict[str, float | None]:
    return {"max_noise": None if max_noise is None else parse_float(max_noise, what="--max-noise", min=0.0,
                                                                   min_exclusive=True),
            "max_wait_s": None if max_wait_s is None else parse_float(max_wait_s, what="--max-wait", min=0.0)}


VALIDATE_DEVICES = ("published", "cpu", "cuda")


def validate(*, device: str, engine: str = "analytic", csv_path: str | Path | None = None,
             corpora: Sequence[str] | None = None, gpu_archs: Mapping[str, str] | None = None,
             calibration: str = "fresh", progress: bool = False, allow_noisy: bool = False,
             max_noise: float | None = None, max_wait_s: float | None = None,
             software: str | None = None) -> ValidationReport:
    """`simsparse validate`: the model beside measurements. published: every shipped corpus (or
    `corpora`, or the one CSV `csv_path`), each row under the software stack it was measured with
    (`software`: only the rows of that stack); cpu: kernels timed here (`calibration`
    fresh|stored), load-aware as `measure` (`allow_noisy`, `max_noise`, `max_wait_s`); cuda: kernels
    timed on this GPU. `gpu_archs` maps GPU names to arch specs explicitly."""
    if device not in VALIDATE_DEVICES:
        raise SimSparseError(f"unknown device {device!r}; use one of {', '.join(VALIDATE_DEVICES)}")
    if device != "published" and (csv_path is not None or corpora or software):
        raise SimSparseError("--csv, --corpus and --software apply to --device published only")
    noise = _noise_limits(max_noise=max_noise, max_wait_s=max_wait_s)
    csv_file = _path(csv_path, what="--csv")      # before scipy is imported: bad input answers at once
    if device != "cpu" and (allow_noisy or max_noise is not None or max_wait_s is not None):
        raise SimSparseError("--allow-noisy, --max-noise and --max-wait apply to --device cpu only "
                             "(the timings taken on this machine's CPUs)")
    if device == "published":
        from simsparse.validate import published  # scipy.stats (Spearman): only validate pays it

        return published.run(corpora=corpora, csv_path=csv_file, engine=engine,
                             gpu_archs=gpu_archs, software=software)
    if device == "cuda":
        from simsparse.validate import cuda  # torch (CUDA) kernels

        return cuda.run(progress=progress, engine=engine, gpu_archs=gpu_archs)
    if engine != "analytic" or gpu_archs:
        raise SimSparseError("validate --device cpu runs the analytic engine on this machine; "
                             "--engine cycle and --gpu-arch apply to the GPU devices")
    from simsparse.validate import cpu  # torch and numba kernels, scipy

    return cpu.run(progress=progress, calibration=calibration, allow_noisy=allow_noisy, **noise)


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
