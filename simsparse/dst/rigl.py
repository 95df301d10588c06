"""`rigl` (Evci et al. 2020): unstructured DST with magnitude drop and gradient regrowth.

Every ΔT steps before T_end: f(t) = α/2·(1 + cos(π t/T_end)); per layer drop the f·nnz smallest
|w| among active weights, regrow as many positions (among those not kept) with the largest
|dense gradient|; newly grown weights start at exactly 0 (their momentum too, via the trainer); a
weight dropped and regrown in the same update keeps its value and momentum (google-research/rigl,
reinit_when_same False). Google's RigL keeps the first conv dense (recipe first_layer: dense).
The helpers here (random masks, top-k selection) are shared by srigl.py and chase.py.
"""

from __future__ import annotations

from typing import Any

import torch

from simsparse.dst.base import METHODS, Method
from simsparse.dst.density import layer_nnz
from simsparse.dst.schedule import cosine_drop_fraction, is_update_step


def random_mask(shape: torch.Size, *, nnz: int, generator: torch.Generator) -> torch.Tensor:
    """A bool mask of `shape` with exactly `nnz` random True positions."""
    numel = int(torch.Size(shape).numel())
    flat = torch.zeros(numel, dtype=torch.bool)
    flat[torch.randperm(numel, generator=generator)[:nnz]] = True
    return flat.view(shape)


def topk_mask(score: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask (same shape) of the k largest entries of `score` (ties: as torch.topk breaks them,
    deterministic for a given input but not by index, as in the reference implementations)."""
    flat = torch.zeros(score.numel(), dtype=torch.bool)
    if k > 0:
        flat[torch.topk(score.reshape(-1), k, sorted=False).indices] = True
    return flat.view(score.shape)


def rigl_layer_update(*, weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor,
                      drop_fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(new mask, grown positions) of one RigL swap; nnz is unchanged."""
    n_active = int(mask.sum())
    n_drop = int(drop_fraction * n_active)
    return prune_and_grow(weight=weight, grad=grad, mask=mask, n_keep=n_active - n_drop, n_total=n_active)


def prune_and_grow(*, weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, n_keep: int, n_total: int,
                   allowed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the n_keep largest active |w|, grow to n_total by largest |grad| among allowed positions."""
    neg = torch.tensor(float("-inf"))
    if n_keep >= int(mask.sum()) and n_total == n_keep:
        return mask, torch.zeros_like(mask)
    kept = topk_mask(torch.where(mask, weight.detach().abs(), neg), n_keep)
    closed = kept if allowed is None else (kept | ~allowed)
    room = int((~closed).sum())
    grown = topk_mask(torch.where(closed, neg, grad.abs()), min(room, max(0, n_total - n_keep)))
    return kept | grown, grown


def mask_densities(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    return {f: float(m.float().mean()) for f, m in masks.items()}


class ScheduledDST(Method):
    """Shared schedule of the RigL family: updates every ΔT before T_end, dense grads read then."""

    def __init__(self, config) -> None:
        super().__init__(config)
        self.targets: dict[str, int] = {}
        self._grads: dict[str, torch.Tensor] = {}

    @property
    def t_end_step(self) -> int:
        return int(self.config.t_end_fraction * self.config.total_steps)

    def is_update(self, step: int) -> bool:
        return self.config.sparsity > 0 and is_update_step(
            step, interval=self.config.update_interval, t_end_step=self.t_end_step)

    def drop_fraction(self, step: int) -> float:
        return cosine_drop_fraction(step, alpha=self.config.alpha, t_end_step=self.t_end_step)

    def needs_dense_grad(self, step: int) -> bool:
        return self.is_update(step)

    def is_dense(self, fqn: str, numel: int) -> bool:
        """Layers kept dense (recipe roles) or made dense by the distribution are never updated."""
        return fqn in self.config.dense_layers or self.targets.get(fqn, 0) >= numel

    def update_steps(self) -> list[int]:
        return [t for t in range(self.config.total_steps) if self.is_update(t)]

    def schedule(self) -> list[dict[str, Any]]:
        return [{"step": t, "event": "mask update", "drop_fraction": self.drop_fraction(t)}
                for t in self.update_steps()]

    def before_optimizer_step(self, params, masks, step) -> None:
        if self.needs_dense_grad(step):
            self._grads = {f: (p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p))
                           for f, p in params.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "targets": dict(self.targets)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))
        self.targets = {k: int(v) for k, v in state.get("targets", {}).items()}


@METHODS.register("rigl")
class RigL(ScheduledDST):
    name = "rigl"

    def init_masks(self, params, densities, generator):
        self.targets = {f: layer_nnz(p.numel(), densities[f]) for f, p in params.items()}
        return {f: random_mask(p.shape, nnz=self.targets[f], generator=generator) for f, p in params.items()}

    @torch.no_grad()
    def after_optimizer_step(self, params, masks, step):
        if not self.is_update(step):
            return masks
        frac = self.drop_fraction(step)
        new: dict[str, torch.Tensor] = {}
        for f, p in params.items():
            if self.is_dense(f, p.numel()):
                new[f] = masks[f]
                continue
            new[f], grown = rigl_layer_update(weight=p, grad=self._grads[f], mask=masks[f], drop_fraction=frac)
            p.masked_fill_(grown & ~masks[f], 0.0)   # dropped and regrown in one update: weight kept
        self._grads = {}
        self.history.append({"step": step, "drop_fraction": frac, "density": mask_densities(new)})
        return new
