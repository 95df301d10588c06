"""The native checkpoint a training run writes: masks, masked weights, traced geometry and meta."""

from __future__ import annotations

from typing import Any

from simsparse.dst.data import DataSplit
from simsparse.dst.job import TrainJob, TrainResult
from simsparse.dst.trainer import Trainer
from simsparse.errors import GeometryError
from simsparse.graph.tracing import trace
from simsparse.masks import native
from simsparse.records import Workload


def _geometry(job: TrainJob, trainer: Trainer, split: DataSplit) -> tuple[Workload | None, str]:
    """The traced Workload (or None) and a note saying why tracing failed."""
    try:
        return trace(trainer.model, (split.test_x[:1],), name=job.model_name), ""
    except GeometryError as exc:  # geometry is optional in a checkpoint; the note says why it is missing
        return None, f"geometry not traced: {str(exc).splitlines()[0]}"


def _hyperparameters(job: TrainJob, trainer: Trainer) -> dict[str, Any]:
    cfg = trainer.method.config
    rec = job.recipe
    return {"update_interval": cfg.update_interval, "update_interval_recipe": rec.update_interval,
            "alpha": cfg.alpha, "t_end_fraction": cfg.t_end_fraction, "distribution": cfg.distribution,
            "optimizer": rec.optimizer, "lr": job.lr, "momentum": rec.momentum, "nesterov": rec.nesterov,
            "weight_decay": rec.weight_decay, "lr_schedule": rec.lr_schedule, "warmup_fraction": rec.warmup_fraction,
            "batch_size": job.batch_size, "recipe": rec.path, "recipe_source": rec.source,
            "first_layer": rec.first_layer, "last_layer": rec.last_layer, "extra": dict(rec.extra)}


def write_checkpoint(job: TrainJob, trainer: Trainer, split: DataSplit) -> TrainResult:
    """Evaluate on the test split and write the native checkpoint at job.out."""
    test_loss, test_acc = trainer.evaluate(split.test_x, split.test_y)
    masks = {f: m.clone() for f, m in trainer.masks.items()}
    state = trainer.final_weights()
    weights = {f: state[f] for f in masks}
    nnz = sum(int(m.sum()) for m in masks.values())
    size = sum(m.numel() for m in masks.values())
    method = trainer.method
    removed = {k: list(v) for k, v in getattr(method, "removed", {}).items()}
    ablated = {k: list(v) for k, v in getattr(method, "ablated", {}).items()}
    dense_layers = dict(method.config.dense_layers)
    geometry, note = _geometry(job, trainer, split)
    result = TrainResult(out=job.out, method=job.method, steps=trainer.step, test_accuracy=test_acc,
                         test_loss=test_loss, train_flops=trainer.train_flops,
                         dense_train_flops=trainer.dense_train_flops,
                         train_flops_relative=trainer.train_flops / trainer.dense_train_flops
                         if trainer.dense_train_flops else 1.0, density=nnz / max(1, size),
                         removed_channels=removed, ablated_neurons=ablated, dense_layers=dense_layers)
    meta = {"method": job.method, "model": job.model_name, "model_options": dict(job.model_options),
            "data": job.data, "sparsity": job.sparsity,
            "nm": f"{job.nm[0]}:{job.nm[1]}" if job.nm else None, "steps": trainer.step, "seed": job.seed,
            "hyperparameters": _hyperparameters(job, trainer), "test_accuracy": test_acc, "test_loss": test_loss,
            "train_flops": trainer.train_flops, "dense_train_flops": trainer.dense_train_flops,
            "train_flops_relative": result.train_flops_relative, "density": result.density,
            "layer_density": {f: float(m.float().mean()) for f, m in masks.items()},
            "removed_channels": removed, "ablated_neurons": ablated, "dense_layers": dense_layers,
            "method_notes": method.notes(), "history": list(method.history),
            "input_shape": list(split.input_shape), "num_classes": split.num_classes}
    if note:
        meta["notes"] = [note]
    native.save(job.out, masks=masks, weights=weights, geometry=geometry, meta=meta)
    return result
