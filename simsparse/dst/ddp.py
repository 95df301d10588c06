"""Multi-process DST training on CPU with torch.distributed (gloo).

Every rank builds the same model, method and data stream from the seed; rank r trains on the r-th
slice of each global batch. Gradients are averaged with all-reduce (one flat buffer), so every rank
takes the same optimizer step; mask decisions are made on every rank and then rank 0's masks — and
its parameters and buffers, which carry grown-at-zero weights and zeroed channel entries — are
broadcast, so masks are bit-identical on every rank by construction. Rank 0 writes the checkpoint.
"""

from __future__ import annotations

import functools
import os
import pickle
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from simsparse.dst.job import TrainJob, TrainResult
from simsparse.dst.loop import execute
from simsparse.errors import SimSparseError
from simsparse.fileio import atomic_writer


class GlooSync:
    """The trainer's Sync over an initialised default process group."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size

    def params(self, model: nn.Module) -> None:
        with torch.no_grad():
            for t in list(model.parameters()) + list(model.buffers()):
                dist.broadcast(t.data, src=0)

    def grads(self, model: nn.Module) -> None:
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()

    def masks(self, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for fqn in sorted(masks):  # same order on every rank
            t = masks[fqn].to(torch.uint8).contiguous()
            dist.broadcast(t, src=0)
            out[fqn] = t.bool()
        return {fqn: out[fqn] for fqn in masks}


def dump_masks(report_dir: str, trainer, rank: int) -> None:
    """after_training hook: each rank saves its final masks and sparsified weights (for tests)."""
    with atomic_writer(Path(report_dir) / f"rank{rank}.pt", what="rank report") as fh:
        torch.save({"masks": dict(trainer.masks), "weights": {f: p.detach().clone() for f, p in trainer.params.items()}},
                   fh)


def _worker(rank: int, world_size: int, job: TrainJob, init_file: str, result_file: str,
            report_dir: str | None) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        hook = functools.partial(dump_masks, report_dir) if report_dir else None
        result = execute(job, rank=rank, world_size=world_size, sync=GlooSync(world_size), after_training=hook)
        if rank == 0:
            with open(result_file, "wb") as fh:
                pickle.dump(result, fh)
    finally:
        dist.destroy_process_group()


def run_distributed(job: TrainJob, *, world_size: int, report_dir: str | Path | None = None) -> TrainResult:
    """Train `job` in `world_size` CPU processes (gloo); returns rank 0's TrainResult."""
    if world_size < 1:
        raise SimSparseError(f"--world-size {world_size} must be at least 1")
    if job.batch_size < world_size:
        raise SimSparseError(f"batch size {job.batch_size} is smaller than world size {world_size}; raise --batch-size")
    with tempfile.TemporaryDirectory(prefix="simsparse-ddp-") as tmp:
        init_file = os.path.join(tmp, "init")
        result_file = os.path.join(tmp, "result.pkl")
        mp.spawn(_worker, args=(world_size, job, init_file, result_file, str(report_dir) if report_dir else None),
                 nprocs=world_size, join=True)
        with open(result_file, "rb") as fh:
            return pickle.load(fh)  # written by our own rank-0 worker in this temporary folder
