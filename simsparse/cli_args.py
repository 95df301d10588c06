"""The command line's arguments: one parser per command, grouped as `simsparse --help` lists them
(analysis, training, measurement, catalogs), and the flag sets several commands share. Parsing only:
the commands themselves are cli.py's.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from simsparse import __version__
from simsparse.overrides import parse_override
from simsparse.parse import (cli_type, parse_assignment, parse_batch, parse_count, parse_float, parse_nm,
                             parse_seed, parse_shape)
from simsparse.validate.records import SOFTWARE_STACKS

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


def _add_inspect(sub) -> None:
    p = sub.add_parser("inspect", help="load a checkpoint and report the structure of its masks")
    p.add_argument("checkpoint")
    _fmt(p, ("table", "json"))


def _add_evaluate(sub) -> None:
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


def _add_shrink(sub) -> None:
    p = sub.add_parser("shrink", help="write the physically shrunk dense network of a channel-pruned checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, help="native checkpoint to write (state_dict, masks, shrunk geometry)")
    p.add_argument("--workload", help="geometry when the checkpoint carries none (name or YAML path)")
    p.add_argument("--model", help="geometry traced on the fly: torchvision:NAME, hf:..., module:pkg.mod:factory")
    _trace_flags(p)
    _shrink_flags(p, optional=False)
    _fmt(p, ("table", "json"))


def _add_trace(sub) -> None:
    p = sub.add_parser("trace", help="write the layer geometry of a model as a workload YAML")
    p.add_argument("spec", help="torchvision:NAME, hf:DIR_OR_CONFIG.json or module:pkg.mod:factory")
    p.add_argument("-o", "--out", required=True, help="workload YAML to write (use it with --workload PATH)")
    p.add_argument("--name", help="workload name (default: from the spec)")
    _trace_flags(p)


def _add_compare(sub) -> None:
    p = sub.add_parser("compare", help="several checkpoints x several architectures")
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--arch", nargs="+", required=True)
    p.add_argument("--plot", help="folder for a speedup plot (PNG)")
    _shrink_flags(p)
    _common_eval(p)


def _add_report(sub) -> None:
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


def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="design-space sweep from a YAML grid (CSV out, resumable)")
    p.add_argument("sweep_file")
    p.add_argument("--out", required=True, help="result CSV")
    p.add_argument("--executor", default="local", help="local or dask://HOST:PORT")
    p.add_argument("--resume", action="store_true")


def _add_analysis(sub) -> None:
    for add in (_add_inspect, _add_evaluate, _add_shrink, _add_trace, _add_compare, _add_report, _add_sweep):
        add(sub)


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
    p.add_argument("--software", choices=sorted(SOFTWARE_STACKS),
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
