"""`simsparse train --explain`: the update schedule of a run, computed without training it.

The run is set up exactly as `train` would: the recipe is resolved, the model is built, the layers
that stay dense are resolved, Chase traces its channel coupling, and the first masks are drawn. Then
each method's `schedule()` lists the steps of mask updates with their drop fractions, memory bounds
or decay factors, the removal events with their channel counts, the N:M frames, and the lr restarts.
No optimizer step is taken. A user can hold the result against the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from simsparse.dst.data import load_data
from simsparse.dst.loop import build_trainer
from simsparse.dst.train import make_job


@dataclass(frozen=True)
class TrainingPlan:
    """What a training run would do, step by step (plain data; `events` as in Method.schedule())."""

    method: str
    model: str
    data: str
    steps: int
    sparsity: float
    nm: str | None
    recipe: str                       # the recipe file
    source: str                       # the reference the recipe names
    update_interval: int              # ΔT after scaling to this run's length
    distribution: str
    first_layer: str
    last_layer: str
    options: Mapping[str, Any] = field(default_factory=dict)       # the recipe's method options (extra)
    dense_layers: Mapping[str, str] = field(default_factory=dict)  # fqn -> why it stays dense
    notes: Mapping[str, Any] = field(default_factory=dict)         # the method's notes (e.g. channel coupling)
    events: tuple[Mapping[str, Any], ...] = ()


def explain(*, method: str, model: str | nn.Module, data: str, sparsity: float,
            nm: tuple[int, int] | None = None, steps: int | None = None, epochs: int | None = None,
            recipe: str | Path | None = None, recipe_overrides: tuple[str, ...] = (), seed: int = 0,
            batch_size: int | None = None, lr: float | None = None, no_ablation: bool = False,
            distribution: str | None = None, model_options: Mapping[str, Any] | None = None) -> TrainingPlan:
    """The schedule `train` would follow with these arguments (SimSparseError on bad input)."""
    job = make_job(method=method, model=model, data=data, sparsity=sparsity, out=None, nm=nm, steps=steps,
                   epochs=epochs, recipe=recipe, recipe_overrides=recipe_overrides, seed=seed, batch_size=batch_size,
                   lr=lr, no_ablation=no_ablation, distribution=distribution, progress=False,
                   model_options=model_options)
    trainer = build_trainer(job, load_data(job.data, seed=job.seed), sync=None)
    m = trainer.method
    return TrainingPlan(method=job.method, model=job.model_name, data=job.data, steps=job.steps, sparsity=job.sparsity,
                        nm=f"{job.nm[0]}:{job.nm[1]}" if job.nm else None, recipe=job.recipe.path,
                        source=job.recipe.source, update_interval=m.config.update_interval,
                        distribution=m.config.distribution, first_layer=job.recipe.first_layer,
                        last_layer=job.recipe.last_layer, options=dict(job.recipe.extra),
                        dense_layers=dict(m.config.dense_layers), notes=m.notes(), events=tuple(m.schedule()))
