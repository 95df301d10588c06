"""Command line: parse arguments, call `api` (or the `demo` tour of it), render. Exit codes: 0 ok,
2 bad input, 1 internal.

Errors caused by input print one line on stderr (what is wrong, how to fix it); `--debug`
shows the traceback. Data goes to stdout; progress bars to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from simsparse import __version__, api, demo, plots, report, report_md
from simsparse.errors import SimSparseError
from simsparse.fileio import write_atomic
from simsparse.graph.catalog import write_workload
from simsparse.graph.resolve import TraceOptions
from simsparse.parse import (cli_type, parse_assignment, parse_batch, parse_count, parse_float, parse_nm,
                             parse_seed, parse_shape)
from simsparse.overrides import parse_override

FORMATS = ("table", "json", "csv")


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _fmt(p: argparse.ArgumentParser, choices: Sequence[str] = FORMATS) -> None:
    p.add_argument("--format", choices=choices, default="table", help="output format (default table)")


def _common_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workload", help="workload name (see `simsparse workloads`) or YAML path")
    p.add_argument("--batch", type=cli_type(parse_batch), default=1, help="batch size (default 1)")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32", "tf32", "fp8", "int8"), help="default: the arch's own")
    p.add_argument("--engine", choices=("analytic", "cycle"), default="analytic")
    _software(p)
    _fmt(p)


def _shrink_flags(p: argparse.ArgumentParser, *, optional: bool = True) -> None:
    p.add_argument("--residual-policy", choices=("prune-skip", "no-skip"), default="prune-skip",
                   help="residual (skip) groups: shrink where every member removes a channel (prune-skip, "
                        "default) or keep them whole (no-skip)")
    p.add_argument("--strict", action="store_true",
                   help="a channel removed by only some members of a residual group is an error (default: kept, noted)")
    if optional:
        p.add_argument("--no-shrink", action="store_true",
                       help="run each layer's mask as it is, without removing the channels it removes from the network")


def _software(p: argparse.ArgumentParser) -> None:
    p.add_argument("--software", metavar="NAME",
                   help="software stack of GPU archs: kernel (the library alone, its best algorithm; the default), "
                        "pytorch-eager (eager PyTorch calls), pytorch-graph, or one the spec defines")


def _trace_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", type=cli_type(parse_shape, what="--input"), default=(),
                   help="image input C,H,W for torchvision/module specs (default 3,224,224)")
    p.add_argument("--seq", type=cli_type(parse_count, what="--seq"), help="tokens per sample (prefill) for hf/module specs")
    p.add_argument("--decode", action="store_true", help="hf: one decode step (with --context C)")
    p.add_argument("--context", type=cli_type(parse_count, what="--context"), help="hf --decode: KV-cache length in tokens")


def _add_analysis(sub) -> None:
    p = sub.add_parser("inspect", help="load a checkpoint and report the structure of its masks")
    p.add_argument("checkpoint")
    _fmt(p, ("table", "json"))

    p = sub.add_parser("evaluate", help="estimate FLOPs, traffic and latency of masks on an architecture")
    p.add_argument("--mask", help="checkpoint of trained masks")
    p.add_argument("--gemm", help="a single GEMM M,N,K (m activation rows, n outputs, k reduction)")
    p.add_argument("--pattern", help="synthetic pattern: dense, N:M, fanin=K, fanin=D, density=D, channels=D")
    p.add_argument("--arch", required=True, help="arch name (see `simsparse archs`) or YAML path")
    p.add_argument("--kernel", help="force a kernel/format where the arch offers several (CPU: dense csr condensed "
                                    "nm shrunk; GPU: dense shrunk 2:4 condensed csr blocked-ell)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   type=cli_type(parse_override), help="override a spec field by dotted path (repeatable)")
    p.add_argument("--seed", type=cli_type(parse_seed), default=0, help="seed of synthetic masks")
    p.add_argument("--out", help="also write report.json and report.csv into this folder")
    p.add_argument("--model", help="geometry traced on the fly: torchvision:NAME, hf:DIR_OR_CONFIG.json, "
                                   "module:pkg.mod:factory (instead of --workload)")
    p.add_argument("--allow-partial", action="store_true",
                   help="evaluate a checkpoint that leaves most GEMM layers without a mask (the rest run dense)")
    _trace_flags(p)
    _shrink_flags(p)
    _common_eval(p)

    p = sub.add_parser("shrink", help="write the physically shrunk dense network of a channel-pruned checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="native checkpoint to write (state_dict, masks, shrunk geometry)")
    p.add_argument("--workload", help="geometry when the checkpoint carries none (name or YAML path)")
    p.add_argument("--model", help="geometry traced on the fly: torchvision:NAME, hf:..., module:pkg.mod:factory")
    _trace_flags(p)
    _shrink_flags(p, optional=False)
    _fmt(p, ("table", "json"))

    p = sub.add_parser("trace", help="write the layer geometry of a model as a workload YAML")
    p.add_argument("spec", help="torchvision:NAME, hf:DIR_OR_CONFIG.json or module:pkg.mod:factory")
    p.add_argument("-o", "--out", required=True, help="workload YAML to write (use it with --workload PATH)")
    p.add_argument("--name", help="workload name (default: from the spec)")
    _trace_flags(p)

    p = sub.add_parser("compare", help="several checkpoints x several architectures")
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--arch", nargs="+", required=True)
    p.add_argument("--plot", help="folder for a speedup plot (PNG)")
    _shrink_flags(p)
    _common_eval(p)

    p = sub.add_parser("report", help="report.md (tables, figures, measured CPU kernels, how each number was "
                                      "obtained) for checkpoints x archs x batches")
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--arch", nargs="+", required=True)
    p.add_argument("--batch", default="1,256", help="batch sizes, comma-separated (default 1,256)")
    _software(p)
    p.add_argument("--engine", choices=("analytic", "cycle"), default="analytic")
    p.add_argument("--workload", help="geometry for checkpoints that carry none (see `simsparse workloads`)")
    p.add_argument("--what-if", action="append", default=[], metavar="WORKLOAD",
                   help="also this shipped workload with each DST family's synthetic pattern (repeatable)")
    p.add_argument("--focus", help="checkpoint (file name without .pt) shown per layer and on the roofline")
    p.add_argument("--no-measure", action="store_true", help="do not time kernels on this CPU")
    _noise_flags(p)
    p.add_argument("--out", required=True, help="folder for report.md, its figures and data files")

    p = sub.add_parser("sweep", help="design-space sweep from a YAML grid (CSV out, resumable)")
    p.add_argument("sweep_file")
    p.add_argument("--out", required=True, help="result CSV")
    p.add_argument("--executor", default="local", help="local or dask://HOST:PORT")
    p.add_argument("--resume", action="store_true")


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a sparse model with a DST method and write a checkpoint")
    p.add_argument("--method", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="synthetic, digits, or folder:PATH")
    p.add_argument("--sparsity", type=cli_type(parse_float, what="--sparsity", min=0.0, max=1.0), required=True)
    p.add_argument("--nm", type=cli_type(parse_nm), help="N:M target for N:M methods, e.g. 1:8")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--steps", type=cli_type(parse_count, what="--steps"))
    g.add_argument("--epochs", type=cli_type(parse_count, what="--epochs"))
    p.add_argument("--recipe", help="recipe YAML overriding the method's defaults")
    p.add_argument("--seed", type=cli_type(parse_seed), default=0)
    p.add_argument("--batch-size", type=cli_type(parse_count, what="--batch-size"), help="default: the recipe's")
    p.add_argument("--lr", type=cli_type(parse_float, what="--lr", min=0.0, min_exclusive=True, max=1e6))
    p.add_argument("--distribution", choices=("uniform", "erk"))
    p.add_argument("--no-ablation", action="store_true", help="SRigL without neuron ablation")
    p.add_argument("--world-size", type=cli_type(parse_count, what="--world-size"), default=1,
                   help="DDP processes (gloo, CPU)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   type=cli_type(parse_override), help="override a recipe field (repeatable), e.g. --set alpha=0.5")
    p.add_argument("--save-every", type=cli_type(parse_count, what="--save-every"),
                   help="write the full training state to OUT.state.pt every N steps")
    p.add_argument("--resume", help="continue a saved training state (OUT.state.pt) identically")
    p.add_argument("--explain", action="store_true",
                   help="print the update schedule (mask updates, drop fractions, decay factors, channel "
                        "removals) without training")
    p.add_argument("--out", help="checkpoint to write (required unless --explain)")
    _fmt(p, ("table", "json"))


def _add_measurement(sub) -> None:
    p = sub.add_parser("measure", help="time real kernels on this machine (or CUDA)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--gemm", help="M,N,K with M = batch rows")
    p.add_argument("--pattern", help="mask pattern for --gemm")
    p.add_argument("--suite", help="named suite of cases (e.g. srigl)")
    p.add_argument("--kernel", help="kernel name (default: all that apply; cuda: dense nm condensed csr)")
    p.add_argument("--threads", type=cli_type(parse_count, what="--threads"))
    p.add_argument("--cache", choices=("warm", "cold"), default="warm")
    _noise_flags(p)
    _fmt(p)

    p = sub.add_parser("validate", help="model predictions beside measurements")
    p.add_argument("--device", choices=("cpu", "cuda", "published"), default="published")
    p.add_argument("--engine", choices=("analytic", "cycle"), default="analytic")
    p.add_argument("--csv", help="published: one CSV of measured rows, torch-level or kernel schema "
                                 "(default: every shipped corpus)")
    p.add_argument("--corpus", action="append", metavar="NAME",
                   help="published: only this shipped corpus (repeatable; e.g. gpu_kernel_dev)")
    p.add_argument("--gpu-arch", action="append", default=[], metavar="GPU=ARCH",
                   type=cli_type(parse_assignment, what="--gpu-arch", form="GPU=ARCH, e.g. 'H100 PCIe=h100_2to4'"),
                   help="model the GPU named GPU with arch ARCH instead of the built-in table (repeatable)")
    p.add_argument("--software", choices=("kernel", "pytorch-eager"),
                   help="published: only the rows measured under this software stack (default: every row, each "
                        "under its own)")
    p.add_argument("--calibration", choices=("fresh", "stored"), default="fresh",
                   help="cpu: fit the model on the calibration suite measured in the same passes (fresh), "
                        "or use the one `simsparse calibrate` stored (stored)")
    _noise_flags(p)
    _fmt(p)

    p = sub.add_parser("calibrate", help="fit the CPU model's effective parameters on this machine")
    p.add_argument("--device", choices=("cpu",), default="cpu")
    _fmt(p, ("table", "json"))


def _noise_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-noisy", action="store_true",
                   help="report timings from a busy machine (with their noise band) instead of refusing")
    p.add_argument("--max-noise", type=cli_type(parse_float, what="--max-noise", min=0.0, min_exclusive=True),
                   help="largest IQR/median accepted (default: the harness's, kernels/contention.py)")
    p.add_argument("--max-wait", type=cli_type(parse_float, what="--max-wait", min=0.0),
                   help="seconds to wait for a busy machine before timing (default: the harness's)")


def _add_catalogs(sub) -> None:
    p = sub.add_parser("archs", help="list the built-in architectures")
    _fmt(p, ("table", "json"))
    p = sub.add_parser("workloads", help="list the built-in workloads")
    _fmt(p, ("table", "json"))
    p = sub.add_parser("demo", help="train six DST runs and write a report of them on GPU / N:M / CPU models")
    p.add_argument("--out", default="simsparse-demo", help="folder for checkpoints and the report")
    p.add_argument("--quick", action="store_true", help="a smaller network, fewer steps, one what-if (<= 60 s)")
    p.add_argument("--steps", type=cli_type(parse_count, what="--steps"),
                   help="training steps per run (default 150; --quick 40)")
    _software(p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="simsparse", description="Trained DST masks -> FLOPs, memory traffic and latency on sparse hardware.")
    parser.add_argument("--version", action="version", version=f"simsparse {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_analysis, _add_train, _add_measurement, _add_catalogs):
        add(sub)
    return parser


# ----------------------------------------------------------------------------- commands


def _emit(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def cmd_inspect(a: argparse.Namespace) -> None:
    res = api.inspect(path=a.checkpoint)
    _emit(report.to_json(report.inspect_dict(res)) if a.format == "json" else report.inspect_table(res))


def cmd_evaluate(a: argparse.Namespace) -> None:
    if a.mask is None and a.gemm is None and a.workload is None and a.model is None:
        raise SimSparseError("evaluate needs --mask CKPT, --workload W (or --model SPEC) --pattern P, "
                             "or --gemm M,N,K --pattern P")
    r = api.evaluate(arch=a.arch, mask=a.mask, workload=a.workload, gemm=a.gemm, pattern=a.pattern,
                     batch=a.batch, dtype=a.dtype, engine=a.engine, overrides=tuple(a.overrides),
                     kernel=a.kernel, seed=a.seed, progress=sys.stderr.isatty(), model=a.model,
                     input_shape=a.input, seq=a.seq, decode=a.decode, context=a.context,
                     allow_partial=a.allow_partial, shrink=not a.no_shrink, residual_policy=a.residual_policy,
                     strict=a.strict, software=a.software)
    if a.out:
        write_atomic(Path(a.out) / "report.json", report.render_reports([r], "json"), what="--out report")
        write_atomic(Path(a.out) / "report.csv", report.render_reports([r], "csv"), what="--out report")
    _emit(report.render_reports([r], a.format))


def cmd_trace(a: argparse.Namespace) -> None:
    wl = api.trace(model=a.spec, input_shape=a.input, seq=a.seq, decode=a.decode, context=a.context, name=a.name)
    path = write_workload(wl, a.out, description=f"traced from {a.spec}")
    gemms = sum(1 for o in wl.ops if o.kind in ("conv", "linear", "matmul"))
    _emit(f"wrote {path}: {len(wl.ops)} ops ({gemms} GEMM layers); use it with --workload {path}")


def cmd_compare(a: argparse.Namespace) -> None:
    reports = api.compare(masks=a.checkpoints, archs=a.arch, workload=a.workload, batch=a.batch,
                          dtype=a.dtype, engine=a.engine, progress=sys.stderr.isatty(), shrink=not a.no_shrink,
                          residual_policy=a.residual_policy, strict=a.strict, software=a.software)
    if a.plot:
        plots.speedup_plot(reports, Path(a.plot) / "speedup.png")
    _emit(report.render_reports(reports, a.format))


def cmd_shrink(a: argparse.Namespace) -> None:
    res = api.shrink(path=a.checkpoint, out=a.out, workload=a.workload, model=a.model,
                     residual_policy=a.residual_policy, strict=a.strict,
                     trace_options=TraceOptions(input_shape=a.input, seq=a.seq, decode=a.decode, context=a.context))
    if a.format == "json":
        _emit(report.to_json(res))
        return
    p0, p1, f0, f1 = (res[k] for k in ("parameters_before", "parameters_after", "flops_per_sample_before",
                                        "flops_per_sample_after"))
    lines = [f"wrote {res['out']}: shrunk under {res['policy']} ({res['groups_shrunk']} of {res['groups']} channel "
             f"groups; {res['channels_removed']} channels and {res['heads_removed']} attention heads removed)",
             f"parameters {p0:,} -> {p1:,} ({p1 / max(1, p0):.3f}x); dense FLOPs per sample "
             f"{f0:,} -> {f1:,} ({f1 / max(1, f0):.3f}x)"]
    lines += [f"kept: {k}" for k in res["kept"][:12]]
    _emit("\n".join(lines))


def cmd_report(a: argparse.Namespace) -> None:
    data = api.report(checkpoints=a.checkpoints, archs=a.arch, batches=api.parse_batches(a.batch),
                      software=a.software, engine=a.engine, workload=a.workload, what_if=a.what_if,
                      measure=not a.no_measure, focus=a.focus, out=a.out, progress=sys.stderr.isatty(),
                      allow_noisy=a.allow_noisy, max_noise=a.max_noise, max_wait_s=a.max_wait)
    _emit(report_md.closing_lines(data, Path(a.out)))


def cmd_train(a: argparse.Namespace) -> None:
    if a.explain:
        plan = api.explain_training(method=a.method, model=a.model, data=a.data, sparsity=a.sparsity, nm=a.nm,
                                    steps=a.steps, epochs=a.epochs, recipe=a.recipe, seed=a.seed,
                                    batch_size=a.batch_size, no_ablation=a.no_ablation, distribution=a.distribution,
                                    recipe_overrides=tuple(a.overrides))
        _emit(report.to_json(plan) if a.format == "json" else _plan_table(plan))
        return
    if not a.out:
        raise SimSparseError("train needs --out CKPT (or --explain to print the schedule without training)")
    res = api.train(method=a.method, model=a.model, data=a.data, sparsity=a.sparsity, nm=a.nm, steps=a.steps,
                    epochs=a.epochs, recipe=a.recipe, seed=a.seed, out=a.out, batch_size=a.batch_size, lr=a.lr,
                    no_ablation=a.no_ablation, distribution=a.distribution, world_size=a.world_size,
                    recipe_overrides=tuple(a.overrides), save_every=a.save_every, resume_from=a.resume)
    _emit(report.to_json(res) if a.format == "json" else res.summary_line())


def _plan_table(plan: Any) -> str:
    """`train --explain` as text: the run's settings, the dense layers, then one row per event."""
    head = [f"{plan.method} on {plan.model} / {plan.data}: {plan.steps} steps, sparsity {plan.sparsity:g}"
            + (f", N:M {plan.nm}" if plan.nm else "") + f", {plan.distribution}, update interval {plan.update_interval}",
            f"recipe {plan.recipe} ({plan.source}); first layer {plan.first_layer}, last layer {plan.last_layer}",
            "options: " + (", ".join(f"{k}={v}" for k, v in plan.options.items()) or "none")]
    head += [f"dense: {fqn}: {why}" for fqn, why in plan.dense_layers.items()]
    head += [f"note: {k}: {v}" for k, v in plan.notes.items()]
    rows = []
    for e in plan.events:
        rest = {k: v for k, v in e.items() if k not in ("step", "until", "event")}
        rows.append([e["step"], e.get("until", ""), e["event"],
                     ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in rest.items())])
    return "\n".join(head) + "\n\n" + report.table(rows, ["step", "until", "event", "values"])


def cmd_measure(a: argparse.Namespace) -> None:
    res = api.measure(device=a.device, gemm=a.gemm, pattern=a.pattern, suite=a.suite, kernel=a.kernel,
                      threads=a.threads, cache=a.cache, progress=sys.stderr.isatty(), allow_noisy=a.allow_noisy,
                      max_noise=a.max_noise, max_wait_s=a.max_wait)
    _emit(_render(res, a.format))


def cmd_validate(a: argparse.Namespace) -> None:
    from simsparse.validate import render  # scipy (stats, the calibration fit): only validate/calibrate pay it

    res = api.validate(device=a.device, engine=a.engine, csv_path=a.csv, corpora=a.corpus,
                       gpu_archs=dict(a.gpu_arch), calibration=a.calibration, progress=sys.stderr.isatty(),
                       allow_noisy=a.allow_noisy, max_noise=a.max_noise, max_wait_s=a.max_wait, software=a.software)
    _emit(render.render(res, a.format))


def cmd_calibrate(a: argparse.Namespace) -> None:
    from simsparse.validate import render  # scipy (stats, the calibration fit): only validate/calibrate pay it

    _emit(render.render_calibration(api.calibrate(device=a.device, progress=sys.stderr.isatty()), a.format))


def _render(res: Any, fmt: str) -> str:
    data = res.to_dict() if hasattr(res, "to_dict") else report.plain(res)
    if fmt == "json":
        return report.to_json(data)
    if fmt == "csv" and hasattr(res, "to_csv"):
        return res.to_csv()
    if hasattr(res, "to_table"):
        return res.to_table()
    if isinstance(data, dict) and ("points" in data or "results" in data):
        return report.points_table(data, key="points" if "points" in data else "results")
    return report.to_json(data)


def cmd_archs(a: argparse.Namespace) -> None:
    rows = api.list_archs()
    if a.format == "json":
        _emit(report.to_json({"archs": rows}))
    else:
        _emit(report.table([[r["name"], r["kind"], ",".join(r["dtypes"]), r["source"]] for r in rows],
                           ["name", "kind", "dtypes", "source"]))


def cmd_workloads(a: argparse.Namespace) -> None:
    rows = api.list_workloads()
    if a.format == "json":
        _emit(report.to_json({"workloads": rows}))
    else:
        _emit(report.table([[r["name"], f"{r['params'] / 1e6:.2f} M", f"{r['dense_macs_per_sample'] / 1e9:.3f} G"]
                            for r in rows], ["name", "params", "dense MACs / sample"]))


def cmd_sweep(a: argparse.Namespace) -> None:
    rows = api.sweep(sweep_file=a.sweep_file, out=a.out, executor=a.executor, resume=a.resume,
                     progress=sys.stderr.isatty())
    bad = sum(1 for r in rows if r.get("error"))
    _emit(f"{len(rows)} points in {a.out}" + (f" ({bad} with errors: see the error column)" if bad else ""))


def cmd_demo(a: argparse.Namespace) -> None:
    if a.steps is not None and a.steps < 1:
        raise SimSparseError(f"--steps {a.steps}: must be a positive integer")
    demo.run(out=Path(a.out), quick=a.quick, steps=a.steps, software=a.software)


COMMANDS: dict[str, Callable[[argparse.Namespace], None]] = {
    "inspect": cmd_inspect, "evaluate": cmd_evaluate, "compare": cmd_compare, "train": cmd_train,
    "measure": cmd_measure, "validate": cmd_validate, "calibrate": cmd_calibrate, "archs": cmd_archs,
    "workloads": cmd_workloads, "demo": cmd_demo, "sweep": cmd_sweep, "trace": cmd_trace, "shrink": cmd_shrink,
    "report": cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (2, one line) or --help / --version (0)
        return int(exc.code or 0)
    try:
        COMMANDS[args.command](args)
    except SimSparseError as exc:
        if args.debug:
            raise
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        sys.stderr.write(f"simsparse {args.command}: error: {msg}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("simsparse: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a path or the file system (name too long, unreadable, full): the user's to fix
        if args.debug:
            raise
        sys.stderr.write(f"simsparse {args.command}: error: {' '.join(str(exc).split())[:300]}; "
                         "check the path and its folder\n")
        return 2
    except Exception as exc:  # internal error: one line unless --debug
        if args.debug:
            raise
        sys.stderr.write(f"simsparse {args.command}: internal error: {type(exc).__name__}: {exc} "
                         "(rerun with --debug for the traceback and report it)\n")
        return 1
    return 0
