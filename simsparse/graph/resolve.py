"""Where a checkpoint's layer geometry comes from, and model specs traced on the fly.

A model SPEC (`simsparse trace SPEC`, `evaluate --model SPEC`):
  torchvision:NAME        torchvision.models.get_model(NAME) (extra `[torchvision]`), input --input C,H,W
  hf:DIR_OR_CONFIG.json   graph/hf.py from the config alone; --seq N, or --decode --context C
  module:pkg.mod:factory  any importable factory returning an nn.Module (or (module, example_inputs));
                          input --input C,H,W (float) or --seq N (token ids)
Models are built and traced on the meta device: shapes only, no weights, no memory.

`geometry_for_checkpoint` finds the geometry of `evaluate --mask CKPT`: the `--workload` or
`--model` the user gave (explicit flags win), else the geometry stored in the checkpoint, else
the `config.json` beside a Hugging Face checkpoint (needs --seq or --decode --context); the
error lists these options.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simsparse.errors import GeometryError
from simsparse.graph import hf
from simsparse.graph.catalog import load_workload
from simsparse.parse import parse_count, parse_shape
from simsparse.records import MaskSet, Workload


@dataclass(frozen=True)
class TraceOptions:
    """What a spec needs besides its name: image input, or sequence / decode settings."""

    input_shape: tuple[int, ...] = ()
    seq: int | None = None
    decode: bool = False
    context: int | None = None

    def __post_init__(self) -> None:
        """Checked by the one strict parser, whoever builds it (CLI flags or api keywords)."""
        if self.input_shape:
            object.__setattr__(self, "input_shape", parse_shape(self.input_shape, what="--input"))
        for name in ("seq", "context"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, parse_count(getattr(self, name), what=f"--{name}"))


def _torch():
    import torch  # optional heavy dependency: only tracing needs it

    return torch


def _trace_module(model: Any, inputs: Any, *, name: str) -> Workload:
    from simsparse.graph.tracing import trace  # torch: tracing runs the module

    return trace(model, inputs, name=name)


def _example_inputs(opts: TraceOptions, spec: str):
    torch = _torch()
    if opts.input_shape:
        return (torch.zeros((1, *opts.input_shape), device="meta"),)
    if opts.seq:
        return (torch.zeros((1, opts.seq), dtype=torch.long, device="meta"),)
    raise GeometryError(f"model {spec}: give --input C,H,W (images) or --seq N (token ids) to trace it")


def _torchvision(name: str, opts: TraceOptions, spec: str) -> Workload:
    try:
        import torchvision  # optional extra `[torchvision]`
    except Exception as exc:  # noqa: BLE001 - any import failure means the extra is unusable here
        raise GeometryError(f"{spec}: torchvision is not importable ({type(exc).__name__}: {str(exc)[:80]}); "
                            "pip install 'simsparse[torchvision]' (a torchvision matching your torch)") from None
    torch = _torch()
    if name not in torchvision.models.list_models():
        raise GeometryError(f"{spec}: unknown torchvision model {name!r}; see torchvision.models.list_models()")
    opts = opts if opts.input_shape else TraceOptions(input_shape=(3, 224, 224))
    with torch.device("meta"):
        model = torchvision.models.get_model(name, weights=None)
    return _trace_module(model, _example_inputs(opts, spec), name=name)


def _factory(target: str, opts: TraceOptions, spec: str) -> Workload:
    mod_name, _, attr = target.partition(":")
    if not mod_name or not attr:
        raise GeometryError(f"{spec}: expected module:pkg.mod:factory (a callable returning an nn.Module)")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise GeometryError(f"{spec}: cannot import {mod_name}:{attr} ({exc}); check the module path") from None
    torch = _torch()
    try:
        with torch.device("meta"):
            built = factory()
    except Exception as exc:  # noqa: BLE001 - the user's factory failed: their code, said in one line
        raise GeometryError(f"{spec}: the factory raised {type(exc).__name__}: {str(exc)[:120]}; check that it "
                            "builds the model with no arguments (on the meta device)") from exc
    model, inputs = built if isinstance(built, tuple) else (built, None)
    if not isinstance(model, torch.nn.Module):
        raise GeometryError(f"{spec}: the factory returned {type(model).__name__}, not an nn.Module")
    if inputs is not None:
        inputs = tuple(t.to("meta") if isinstance(t, torch.Tensor) else t for t in
                       (inputs if isinstance(inputs, tuple) else (inputs,)))
    return _trace_module(model, inputs if inputs is not None else _example_inputs(opts, spec), name=attr)


def _hf(path: str, opts: TraceOptions, cfg: dict | None = None) -> Workload:
    """The geometry of the config at `path` (`cfg`: that config, already read)."""
    cfg = hf.load_config(path) if cfg is None else cfg
    name = Path(path).stem if Path(path).suffix == ".json" and Path(path).stem != "config" else Path(path).name
    if Path(path).name == "config.json":
        name = Path(path).parent.name or "hf"
    return hf.hf_workload(cfg, name=name, seq=opts.seq, decode=opts.decode, context=opts.context,
                          image=opts.input_shape)


def workload_from_spec(spec: str, opts: TraceOptions = TraceOptions()) -> Workload:
    """The geometry a model SPEC describes (module docstring), traced on the meta device."""
    kind, _, rest = str(spec).partition(":")
    if kind == "torchvision" and rest:
        return _torchvision(rest, opts, spec)
    if kind == "module" and rest:
        return _factory(rest, opts, spec)
    if kind == "hf" and rest:
        return _hf(rest, opts)
    raise GeometryError(f"model spec {spec!r}: use torchvision:NAME, hf:DIR_OR_CONFIG.json or module:pkg.mod:factory")


def hf_config_beside(checkpoint: str | Path) -> Path | None:
    """The config.json of a Hugging Face checkpoint (a directory, or a file inside one)."""
    p = Path(checkpoint)
    folder = p if p.is_dir() else p.parent
    cfg = folder / "config.json"
    return cfg if cfg.is_file() else None


OPTIONS_TEXT = ("pass --workload NAME|PATH (see `simsparse workloads`), --model SPEC (torchvision:NAME, "
                "hf:DIR, module:pkg.mod:factory), or put the model's config.json beside the checkpoint")


def geometry_for_checkpoint(maskset: MaskSet, *, checkpoint: str | Path, workload: str | Workload | None = None,
                            model: str | None = None, opts: TraceOptions = TraceOptions()) -> tuple[Workload, str]:
    """(geometry, where it came from) for a checkpoint's masks; GeometryError listing the options."""
    if isinstance(workload, Workload):
        return workload, "workload object"
    if workload:
        return load_workload(workload), f"--workload {workload}"
    if model:
        return workload_from_spec(model, opts), f"--model {model}"
    if maskset.geometry is not None:
        return maskset.geometry, "checkpoint"
    cfg = hf_config_beside(checkpoint)
    if cfg is not None:
        config = hf.load_config(cfg)
        if not opts.seq and not opts.decode and hf.family(config) != "vit":
            raise GeometryError(f"{checkpoint}: found {cfg}; give --seq N (prefill) or --decode --context C "
                                "to say which forward pass to estimate")
        return _hf(str(cfg), opts, config), f"config {cfg}"
    raise GeometryError(f"{checkpoint}: the checkpoint carries no layer geometry; {OPTIONS_TEXT}")
