"""The records of one training run: what to train (`TrainJob`) and what came out (`TrainResult`).

Every other module of the trainer reads these; this module imports no other trainer module except
the recipe record, so the trainer's modules form a DAG:
    job <- checkpoint <- loop <- ddp <- train (entry point), with methods/trainer/data below them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from simsparse.dst.recipes import Recipe


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
    out: Path | None                # None: the job is only explained (train --explain)
    batch_size: int
    lr: float
    distribution: str
    progress: bool
    resume_from: Path | None = None
    save_every: int | None = None

    @property
    def model_name(self) -> str:
        return self.model if isinstance(self.model, str) else type(self.model).__name__


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
    dense_layers: Mapping[str, str] = field(default_factory=dict)   # fqn -> why it stayed dense

    def summary_line(self) -> str:
        removed = sum(len(v) for v in self.removed_channels.values())
        ablated = sum(len(v) for v in self.ablated_neurons.values())
        return (f"wrote {self.out}: {self.method}, {self.steps} steps, test accuracy {self.test_accuracy:.4f}, "
                f"density {self.density:.4f}, train FLOPs {self.train_flops_relative:.3f}x dense"
                + (f", {removed} channels removed" if removed else "") + (f", {ablated} neurons ablated" if ablated else "")
                + (f", {len(self.dense_layers)} layers kept dense" if self.dense_layers else ""))


def state_path(out: Path) -> Path:
    """Where the resumable training state of checkpoint `out` goes."""
    return out.with_name(out.name + ".state.pt")
