"""`simsparse train`: one entry point from names to a native checkpoint.

    run(method=..., model=..., data=..., sparsity=..., steps=..., out=...) -> TrainResult

resolves the recipe (shipped or --recipe FILE, CLI values override it), builds model, data,
method, optimizer and trainer, trains (with a tqdm bar on stderr), evaluates on the test split,
traces the geometry and writes a native checkpoint (masks, masked weights, geometry, meta).
`world_size > 1` trains in that many CPU processes (ddp.py). `save_every` writes the full training
state to `<out>.state.pt`; `resume_from` continues such a state identically.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from simsparse.dst.base import METHODS, MethodConfig
from simsparse.dst.data import DataSplit, load_data
from simsparse.dst.recipes import Recipe, load_recipe
from simsparse.dst.schedule import effective_interval
from simsparse.errors import SimSparseError

_METHOD_MODULES = ("dense", "rigl", "srigl", "chase", "nm")
NM_METHODS = ("nm-mask-decay", "nm-structure-decay", "srste", "nm-oneshot")


def load_methods() -> list[str]:
    """Import every method module (registering them); returns the known method names."""
    for mod in _METHOD_MODULES:
        try:
            importlib.import_module(f"simsparse.dst.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"simsparse.dst.{mod}":
                raise
    return METHODS.names()


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced (the checkpoint holds the same figures in its meta)."""

    out: Path
    method: str
    steps: int
    test_accuracy: float
    test_loss: float
    train_flops: float
    dense_train_flops: float
    train_flops_relative: float     # train_flops / dense_train_flops (RigL's accounting)
    density: float
    removed_channels: Mapping[str, list[int]] = field(default_factory=dict)
    ablated_neurons: Mapping[str, list[int]] = field(default_factory=dict)

    def summary_line(self) -> str:
        removed = sum(len(v) for v in self.removed_channels.values())
        ablated = sum(len(v) for v in self.ablated_neurons.values())
        return (f"wrote {self.out}: {self.method}, {self.steps} steps, test accuracy {self.test_accuracy:.4f}, "
                f"density {self.density:.4f}, train FLOPs {self.train_flops_relative:.3f}x dense"
                + (f", {removed} channels removed" if removed else "") + (f", {ablated} neurons ablated" if ablated else ""))


@dataclass(frozen=True)
class TrainJob:
    """Every resolved setting of one run (picklable: DDP workers receive it)."""

    method: str
    model: Any                      # registered model name or an nn.Module
    model_options: Mapping[str, Any]
    data: str
    sparsity: float
    nm: tuple[int, int] | None
    steps: int
    recipe: Recipe
    seed: int
    out: Path
    batch_size: int
    lr: float
    distribution: str
    progress: bool
    resume_from: Path | None = None
    save_every: int | None = None


def _check_inputs(*, method: str, sparsity: float, nm: tuple[int, int] | None, steps: int | None,
                  epochs: int | None) -> None:
    METHODS.get(method)
    if not 0.0 <= float(sparsity) < 1.0:
        raise SimSparseError(f"--sparsity {sparsity} is outside [0, 1); give e.g. 0.9 for 90 % sparse")
    if nm is not None:
        if len(nm) != 2 or not (1 <= int(nm[0]) <= int(nm[1])):
            raise SimSparseError(f"--nm {nm} is invalid; give N:M with 1 <= N <= M, e.g. --nm 2:4")
    if method in NM_METHODS and nm is None:
        raise SimSparseError(f"method {method} needs an N:M target; pass --nm N:M (e.g. --nm 1:8)")
    if (steps is None) == (epochs is None):
        raise SimSparseError("give exactly one of --steps or --epochs")
    if (steps is not None and steps < 1) or (epochs is not None and epochs < 1):
        raise SimSparseError("--steps/--epochs must be at least 1")


def make_job(*, method: str, model: str | nn.Module, data: str, sparsity: float, out: Path,
             nm: tuple[int, int] | None = None, steps: int | None = None, epochs: int | None = None,
             recipe: str | Path | None = None, recipe_overrides: tuple[str, ...] = (), seed: int = 0,
             batch_size: int | None = None, lr: float | None = None, no_ablation: bool = False,
             distribution: str | None = None, progress: bool = True,
             model_options: Mapping[str, Any] | None = None, resume_from: Path | None = None,
             save_every: int | None = None) -> TrainJob:
    """Check the user's input and resolve the recipe into a TrainJob (SimSparseError: one line)."""
    load_methods()
    _check_inputs(method=method, sparsity=sparsity, nm=nm, steps=steps, epochs=epochs)
    rec = load_recipe(method=method, path=recipe, overrides=tuple(recipe_overrides))
    if no_ablation:
        if method != "srigl":
            raise SimSparseError("--no-ablation applies to --method srigl only")
        rec = replace(rec, extra={**rec.extra, "ablation": False})
    bs = int(batch_size or rec.batch_size)
    if epochs is not None:
        n_train = len(load_data(data, seed=seed).train_y)
        steps = epochs * math.ceil(n_train / bs)
    out = Path(out)
    if not out.parent.is_dir():
        raise SimSparseError(f"folder {out.parent} does not exist; create it or choose another --out")
    if distribution is not None and distribution not in ("uniform", "erk"):
        raise SimSparseError(f"--distribution {distribution!r} is unknown; use uniform or erk")
    return TrainJob(method=method, model=model, model_options=dict(model_options or {}), data=data,
                    sparsity=float(sparsity), nm=(int(nm[0]), int(nm[1])) if nm else None, steps=int(steps),
                    recipe=rec, seed=int(seed), out=out, batch_size=bs, lr=float(lr if lr is not None else rec.lr),
                    distribution=distribution or rec.distribution, progress=progress,
                    resume_from=Path(resume_from) if resume_from else None, save_every=save_every)


def run(*, method: str, model: str | nn.Module, data: str, sparsity: float, out: Path,
        nm: tuple[int, int] | None = None, steps: int | None = None, epochs: int | None = None,
        recipe: str | Path | None = None, recipe_overrides: tuple[str, ...] = (), seed: int = 0,
        batch_size: int | None = None, lr: float | None = None, no_ablation: bool = False,
        distribution: str | None = None, progress: bool = True, world_size: int = 1,
        model_options: Mapping[str, Any] | None = None, resume_from: Path | None = None,
        save_every: int | None = None) -> TrainResult:
    """Train `model` on `data` with `method` and write a native checkpoint to `out`."""
    job = make_job(method=method, model=model, data=data, sparsity=sparsity, out=out, nm=nm, steps=steps,
                   epochs=epochs, recipe=recipe, recipe_overrides=recipe_overrides, seed=seed,
                   batch_size=batch_size, lr=lr, no_ablation=no_ablation, distribution=distribution,
                   progress=progress, model_options=model_options, resume_from=resume_from, save_every=save_every)
    if world_size > 1:
        from simsparse.dst.ddp import run_distributed
        return run_distributed(job, world_size=world_size)
    from simsparse.dst.loop import execute
    return execute(job)


def method_config(job: TrainJob) -> MethodConfig:
    """The method's configuration with the recipe's schedule scaled to this run's length."""
    rec = job.recipe
    t_end = int(rec.t_end_fraction * job.steps)
    return MethodConfig(sparsity=job.sparsity, total_steps=job.steps, distribution=job.distribution,
                        update_interval=effective_interval(rec.update_interval, t_end_step=t_end,
                                                           min_updates=rec.min_updates),
                        alpha=rec.alpha, t_end_fraction=rec.t_end_fraction, nm=job.nm, extra=dict(rec.extra))


def build_model_for(job: TrainJob, split: DataSplit) -> nn.Module:
    """The registered model built for the data's shape (or the module given), seeded."""
    torch.manual_seed(job.seed)
    if isinstance(job.model, nn.Module):
        return job.model
    from simsparse.models import build_model
    return build_model(job.model, num_classes=split.num_classes, input_shape=split.input_shape,
                       **dict(job.model_options))
