"""The training run behind train.run: build, train with a progress bar, evaluate, write the checkpoint.

`execute(job, rank=, world_size=, sync=)` is the same code for one process and for every DDP rank
(rank r trains on the r-th slice of each global batch; only rank 0 evaluates and writes files).
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from simsparse.dst.base import Method, MethodConfig
from simsparse.dst.checkpoint import write_checkpoint
from simsparse.dst.data import BatchStream, DataSplit, load_data
from simsparse.dst.density import layer_densities
from simsparse.dst.job import TrainJob, TrainResult, state_path
from simsparse.dst.layers import layer_geometry, role_dense_layers
from simsparse.dst.methods import method_class
from simsparse.dst.nm import NMMethod
from simsparse.dst.schedule import effective_interval, lr_factor
from simsparse.dst.trainer import Sync, Trainer, make_trainer, sparsifiable_params
from simsparse.errors import SimSparseError
from simsparse.fileio import atomic_writer
from simsparse.masks.io import read_torch_file
from simsparse.models import build_model


def build_optimizer(job: TrainJob, params) -> torch.optim.Optimizer:
    rec = job.recipe
    if rec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=job.lr, momentum=rec.momentum, weight_decay=rec.weight_decay,
                               nesterov=rec.nesterov and rec.momentum > 0)
    cls = torch.optim.Adam if rec.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=job.lr, weight_decay=rec.weight_decay)


def build_scheduler(job: TrainJob, optimizer: torch.optim.Optimizer, method: Method) -> torch.optim.lr_scheduler.LambdaLR:
    """The recipe's lr schedule, started over at each of the method's `lr_restarts()`."""
    restarts = method.lr_restarts()
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, kind=job.recipe.lr_schedule, warmup_fraction=job.recipe.warmup_fraction,
                                       total_steps=job.steps, restarts=restarts))


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
    return build_model(job.model, num_classes=split.num_classes, input_shape=split.input_shape,
                       **dict(job.model_options))


def build_method(job: TrainJob, model: nn.Module) -> Method:
    """The method with the layers kept dense resolved (dst/layers.py: recipe roles, then N:M eligibility)."""
    cls = method_class(job.method)
    cfg = method_config(job)
    geometry = layer_geometry(model)
    dense = role_dense_layers(list(geometry), first_layer=job.recipe.first_layer, last_layer=job.recipe.last_layer)
    if isinstance(probe := cls(cfg), NMMethod):
        ineligible = probe.ineligible_layers({f: g for f, g in geometry.items() if f not in dense})
        dense.update(ineligible)
    return cls(replace(cfg, dense_layers=dense))


def build_trainer(job: TrainJob, split: DataSplit, *, sync: Sync | None) -> Trainer:
    model = build_model_for(job, split)
    if sync is not None:
        sync.params(model)
    method = build_method(job, model)
    dense = method.config.dense_layers
    shapes = {f: tuple(p.shape) for f, p in sparsifiable_params(model).items() if f not in dense}
    densities = {f: 1.0 for f in dense}
    if shapes:
        densities.update({f: 1.0 for f in shapes} if job.sparsity == 0 else
                         layer_densities(shapes, density=1.0 - job.sparsity, distribution=job.distribution))
    optimizer = build_optimizer(job, model.parameters())
    return make_trainer(model=model, method=method, optimizer=optimizer, densities=densities,
                        generator=torch.Generator().manual_seed(job.seed + 1), example_input=split.train_x[:2],
                        scheduler=build_scheduler(job, optimizer, method), sync=sync)


def train_steps(trainer: Trainer, split: DataSplit, stream: BatchStream, job: TrainJob, *,
                rank: int, world_size: int) -> None:
    """Train until job.steps with a tqdm bar (rank 0) showing smoothed loss and accuracy."""
    bar = tqdm(total=job.steps, initial=trainer.step, file=sys.stderr, disable=not job.progress or rank != 0,
               desc=f"{job.method}", dynamic_ncols=True, leave=False)
    loss_avg = acc_avg = None
    while trainer.step < job.steps:
        idx = stream.next_indices()[rank::world_size]
        loss, acc = trainer.train_step(split.train_x[idx], split.train_y[idx])
        if not math.isfinite(loss):
            raise SimSparseError(f"training diverged at step {trainer.step} (loss {loss}); lower --lr")
        loss_avg = loss if loss_avg is None else 0.9 * loss_avg + 0.1 * loss
        acc_avg = acc if acc_avg is None else 0.9 * acc_avg + 0.1 * acc
        bar.update(1)
        if trainer.step % 10 == 0:
            bar.set_postfix(loss=f"{loss_avg:.3f}", acc=f"{acc_avg:.3f}")
        if job.save_every and trainer.step % job.save_every == 0 and rank == 0:
            with atomic_writer(state_path(job.out), what="training state") as fh:  # never through a planted link
                torch.save({"trainer": trainer.state_dict(), "stream": stream.state_dict()}, fh)
    bar.close()


def read_state(path: Path) -> dict:
    """The training state `train --save-every` wrote, read weights-only within the checkpoint bounds
    (masks.io.read_torch_file); SimSparseError when `path` is not one."""
    state = read_torch_file(path, what="--resume")
    if not (isinstance(state, dict) and isinstance(state.get("trainer"), dict) and isinstance(state.get("stream"), dict)):
        raise SimSparseError(f"--resume {path}: not a training state (expected the OUT.state.pt that "
                             "train --save-every writes)")
    return state


def execute(job: TrainJob, *, rank: int = 0, world_size: int = 1, sync: Sync | None = None,
            after_training: Callable[[Trainer, int], None] | None = None) -> TrainResult | None:
    """Run one training job (one process or one DDP rank); rank 0 writes and returns the result.

    `after_training(trainer, rank)` is called on every rank when training ends (tests inspect ranks).
    """
    split = load_data(job.data, seed=job.seed)
    trainer = build_trainer(job, split, sync=sync)
    stream = BatchStream(len(split.train_y), batch_size=job.batch_size, seed=job.seed + 2)
    if job.resume_from is not None:
        state = read_state(job.resume_from)
        try:
            trainer.load_state_dict(state["trainer"])
            stream.load_state_dict(state["stream"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise SimSparseError(f"--resume {job.resume_from}: the state does not match this run "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                                 "resume with the same method, model and data as the run that saved it") from None
    train_steps(trainer, split, stream, job, rank=rank, world_size=world_size)
    if after_training is not None:
        after_training(trainer, rank)
    if rank != 0:
        return None
    return write_checkpoint(job, trainer, split)
