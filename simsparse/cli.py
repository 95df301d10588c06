"""Command line: parse arguments (their definitions: cli_args.py), call `api` (or the `demo` tour
of it), render. Exit codes: 0 ok, 2 bad input, 1 internal.

Errors caused by input print one line on stderr (what is wrong, how to fix it); `--debug`
shows the traceback. Data goes to stdout; progress bars to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from simsparse import api, demo, plots, report, report_md
from simsparse.cli_args import build_parser
from simsparse.errors import SimSparseError
from simsparse.fileio import write_atomic
from simsparse.graph.catalog import write_workload
from simsparse.graph.resolve import TraceOptions

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
    texts = {fmt: report.render_reports([r], fmt) for fmt in ("json", "csv") if a.out}   # each rendered once
    for fmt, text in texts.items():
        write_atomic(Path(a.out) / f"report.{fmt}", text, what="--out report")
    _emit(texts.get(a.format) or report.render_reports([r], a.format))


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
