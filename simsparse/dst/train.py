"""`simsparse train`: one entry point from names to a native checkpoint.

    run(method=..., model=..., data=..., sparsity=..., steps=..., out=...) -> TrainResult

resolves the recipe (shipped or --recipe FILE, CLI values override it), builds model, data,
method, optimizer and trainer, trains (with a tqdm bar on stderr), evaluates on the test split,
traces the geometry and writes a native checkpoint (masks, masked weights, geometry, meta).
`world_size > 1` trains in that many CPU processes (ddp.py). `save_every` writes the full training
state to `<out>.state.pt`; `resume_from` continues such a state identically.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from simsparse.dst.data import load_data
from simsparse.dst.ddp import run_distributed
from simsparse.dst.job import TrainJob, TrainResult
from simsparse.dst.loop import execute, read_state
from simsparse.dst.methods import NM_METHODS, method_class, method_names
from simsparse.dst.recipes import load_recipe
from simsparse.errors import SimSparseError
from simsparse.fileio import prepare_target


def _check_inputs(*, method: str, sparsity: float, nm: tuple[int, int] | None, steps: int | None,
                  epochs: int | None) -> None:
    method_class(method)
    if not 0.0 <= float(sparsity) < 1.0:
        raise SimSparseError(f"--sparsity {sparsity} is outside [0, 1); give e.g. 0.9 for 90 % sparse")
    if nm is not None:
        if len(nm) != 2 or not (1 <= int(nm[0]) <= int(nm[1])):
            raise SimSparseError(f"--nm {nm} is invalid; give N:M with 1 <= N <= M, e.g. --nm 2:4")
    if method in NM_METHODS and nm is None:
        raise SimSparseError(f"method {method} needs an N:M target; pass --nm N:M (e.g. --nm 1:8)")
    if method in NM_METHODS and float(sparsity) and abs(float(sparsity) - (1 - nm[0] / nm[1])) > 1e-6:
        raise SimSparseError(f"--sparsity {sparsity} contradicts --nm {nm[0]}:{nm[1]} (sparsity {1 - nm[0] / nm[1]:g}): "
                             f"method {method} takes its sparsity from --nm; give --sparsity {1 - nm[0] / nm[1]:g}")
    if (steps is None) == (epochs is None):
        raise SimSparseError("give exactly one of --steps or --epochs")
    if (steps is not None and steps < 1) or (epochs is not None and epochs < 1):
        raise SimSparseError("--steps/--epochs must be at least 1")


def make_job(*, method: str, model: str | nn.Module, data: str, sparsity: float, out: Path | None,
             nm: tuple[int, int] | None = None, steps: int | None = None, epochs: int | None = None,
             recipe: str | Path | None = None, recipe_overrides: tuple[str, ...] = (), seed: int = 0,
             batch_size: int | None = None, lr: float | None = None, no_ablation: bool = False,
             distribution: str | None = None, progress: bool = True,
             model_options: Mapping[str, Any] | None = None, resume_from: Path | None = None,
             save_every: int | None = None) -> TrainJob:
    """Check the user's input and resolve the recipe into a TrainJob (SimSparseError: one line).

    `out` None makes a job that is only explained (explain.py), never trained."""
    _check_inputs(method=method, sparsity=sparsity, nm=nm, steps=steps, epochs=epochs)
    out = Path(out) if out is not None else None   # None: a job that is explained, never written
    if out is not None:   # a folder, a file as parent or a missing folder: said now, not after training
        prepare_target(out, what="--out")
    if resume_from is not None:
        read_state(Path(resume_from))   # a garbage, list or wrong-kind file: one line before training
    rec = load_recipe(method=method, path=recipe, overrides=tuple(recipe_overrides))
    if no_ablation:
        if method != "srigl":
            raise SimSparseError("--no-ablation applies to --method srigl only")
        rec = replace(rec, extra={**rec.extra, "ablation": False})
    if nm is not None and "nm" in rec.extra:   # --nm wins over the recipe's default target: record the one used
        rec = replace(rec, extra={**rec.extra, "nm": f"{int(nm[0])}:{int(nm[1])}"})
    bs = int(batch_size or rec.batch_size)
    if epochs is not None:
        n_train = len(load_data(data, seed=seed).train_y)
        steps = epochs * math.ceil(n_train / bs)
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
        return run_distributed(job, world_size=world_size)
    return execute(job)


def load_methods() -> list[str]:
    """The known method names (every shipped method is registered by importing dst.methods)."""
    return method_names()
