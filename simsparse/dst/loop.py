"""The training run behind train.run: build, train with a progress bar, evaluate, write the checkpoint.

`execute(job, rank=, world_size=, sync=)` is the same code for one process and for every DDP rank
(rank r trains on the r-th slice of each global batch; only rank 0 evaluates and writes files).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Callable

import torch

from simsparse.dst.base import METHODS, Method
from simsparse.dst.data import BatchStream, DataSplit, load_data
from simsparse.dst.density import layer_densities
from simsparse.dst.train import TrainJob, TrainResult, build_model_for, method_config
from simsparse.dst.trainer import Sync, Trainer, make_trainer, sparsifiable_params
from simsparse.errors import SimSparseError
from simsparse.fileio import atomic_writer


def build_optimizer(job: TrainJob, params) -> torch.optim.Optimizer:
    rec = job.recipe
    if rec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=job.lr, momentum=rec.momentum, weight_decay=rec.weight_decay,
                               nesterov=rec.nesterov and rec.momentum > 0)
    cls = torch.optim.Adam if rec.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=job.lr, weight_decay=rec.weight_decay)


def lr_factor(step: int, *, kind: str, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the base lr: linear warm-up, then cosine to 0, constant, or step (×0.1 at 50 %, 75 %)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    frac = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))
    if kind == "step":
        return 0.1 ** (int(frac >= 0.5) + int(frac >= 0.75))
    return 1.0


def build_scheduler(job: TrainJob, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    warm = int(job.recipe.warmup_fraction * job.steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, kind=job.recipe.lr_schedule, warmup_steps=warm, total_steps=job.steps))


def state_path(out: Path) -> Path:
    """Where the resumable training state of checkpoint `out` goes."""
    return out.with_name(out.name + ".state.pt")


def build_trainer(job: TrainJob, split: DataSplit, *, sync: Sync | None) -> Trainer:
    model = build_model_for(job, split)
    if sync is not None:
        sync.params(model)
    method: Method = METHODS.get(job.method)(method_config(job))
    shapes = {f: tuple(p.shape) for f, p in sparsifiable_params(model).items()}
    densities = ({f: 1.0 for f in shapes} if job.sparsity == 0 else
                 layer_densities(shapes, density=1.0 - job.sparsity, distribution=job.distribution))
    optimizer = build_optimizer(job, model.parameters())
    return make_trainer(model=model, method=method, optimizer=optimizer, densities=densities,
                        generator=torch.Generator().manual_seed(job.seed + 1), example_input=split.train_x[:2],
                        scheduler=build_scheduler(job, optimizer), sync=sync)


def train_steps(trainer: Trainer, split: DataSplit, stream: BatchStream, job: TrainJob, *,
                rank: int, world_size: int) -> None:
    """Train until job.steps with a tqdm bar (rank 0) showing smoothed loss and accuracy."""
    from tqdm import tqdm
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


def execute(job: TrainJob, *, rank: int = 0, world_size: int = 1, sync: Sync | None = None,
            after_training: Callable[[Trainer, int], None] | None = None) -> TrainResult | None:
    """Run one training job (one process or one DDP rank); rank 0 writes and returns the result.

    `after_training(trainer, rank)` is called on every rank when training ends (tests inspect ranks).
    """
    split = load_data(job.data, seed=job.seed)
    trainer = build_trainer(job, split, sync=sync)
    stream = BatchStream(len(split.train_y), batch_size=job.batch_size, seed=job.seed + 2)
    if job.resume_from is not None:
        try:
            state = torch.load(job.resume_from, weights_only=True)
        except (OSError, RuntimeError) as exc:
            raise SimSparseError(f"cannot resume from {job.resume_from}: {str(exc).splitlines()[0]}") from None
        trainer.load_state_dict(state["trainer"])
        stream.load_state_dict(state["stream"])
    train_steps(trainer, split, stream, job, rank=rank, world_size=world_size)
    if after_training is not None:
        after_training(trainer, rank)
    if rank != 0:
        return None
    from simsparse.dst.checkpoint import write_checkpoint
    return write_checkpoint(job, trainer, split)
