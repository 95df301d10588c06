"""`srigl` (Lasby et al., ICLR 2024): constant fan-in DST with neuron ablation.

Rows are output neurons / conv filters (weight.reshape(Cout, -1)); every active row holds exactly
k' nonzeros. Update (every ΔT before T_end, RigL's cosine drop fraction f), per layer, as in
METHODS.md steps 1–5:
  1. n_prune = int(nnz·f), n_keep = nnz − n_prune.
  2. Ablation: salient = top-n_keep active |w| ∪ top-n_prune |dense grad| over the whole layer (a
     plain union: a position in both counts once, as in METHODS.md and the authors' code); a row is
     ablated when its salient count < max(1, int(γ_sal·k)), k = target_nnz // rows; at least
     ceil(target_nnz / fan_in) rows stay active (most salient first); recomputed each update.
  3. k' = target_nnz // active_rows.
  4. Keep the top-n_keep |w| layer-wide (active rows only), then cut rows above k' to their k' largest.
  5. Regrow each active row to exactly k' by largest |dense grad|; ablated rows get none.
The last sparsified layer (the classifier) is never ablated. `extra`: gamma_sal (0.3), ablation (True).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from simsparse.dst.base import METHODS
from simsparse.dst.density import layer_nnz
from simsparse.dst.rigl import ScheduledDST, mask_densities, topk_mask

_NEG = float("-inf")


def row_ranks(score: torch.Tensor) -> torch.Tensor:
    """Rank of each entry within its row, 0 = largest (ties: lower column first)."""
    order = torch.sort(score, dim=1, descending=True, stable=True).indices
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(score.shape[1]).expand_as(order).contiguous())
    return ranks


def constant_fanin_mask(rows: int, fan_in: int, *, k: int, generator: torch.Generator) -> torch.Tensor:
    """[rows, fan_in] mask with exactly k random positions per row."""
    noise = torch.rand(rows, fan_in, generator=generator)
    return row_ranks(noise) < k


def active_rows(*, kept: torch.Tensor, grad: torch.Tensor, n_prune: int, target_nnz: int,
                gamma_sal: float) -> torch.Tensor:
    """Step 2: rows whose salient-weight count reaches max(1, int(γ_sal·k)), with the minimum row count."""
    rows, fan_in = kept.shape
    salient = kept | topk_mask(grad.abs(), n_prune)  # layer-wide, may overlap `kept`
    counts = salient.sum(dim=1)
    k = max(1, target_nnz // rows)
    active = counts >= max(1, int(gamma_sal * k))
    min_rows = min(rows, math.ceil(target_nnz / fan_in))
    if int(active.sum()) < min_rows:
        order = torch.sort(counts, descending=True, stable=True).indices[:min_rows]
        active = torch.zeros(rows, dtype=torch.bool)
        active[order] = True
    return active


def srigl_layer_update(*, weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, drop_fraction: float,
                       target_nnz: int, gamma_sal: float, ablate: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(new mask, grown positions, active rows, k') of one SRigL update; masks in the weight's shape."""
    rows = weight.shape[0]
    w = weight.detach().reshape(rows, -1).abs()
    g = grad.reshape(rows, -1)
    m = mask.reshape(rows, -1)
    nnz = int(m.sum())
    n_prune = int(nnz * drop_fraction)
    kept = topk_mask(torch.where(m, w, _NEG), nnz - n_prune)
    if ablate:
        active = active_rows(kept=kept, grad=g, n_prune=n_prune, target_nnz=target_nnz, gamma_sal=gamma_sal)
    else:
        active = torch.ones(rows, dtype=torch.bool)
    k_new = min(w.shape[1], target_nnz // max(1, int(active.sum())))
    kept &= active[:, None]
    kept &= row_ranks(torch.where(kept, w, _NEG)) < k_new
    need = (k_new - kept.sum(dim=1)).clamp(min=0) * active
    grown = (row_ranks(torch.where(kept, _NEG, g.abs())) < need[:, None]) & ~kept
    new = kept | grown
    return new.view(mask.shape), grown.view(mask.shape), active, k_new


@METHODS.register("srigl")
class SRigL(ScheduledDST):
    name = "srigl"

    def __init__(self, config) -> None:
        super().__init__(config)
        self.ablated: dict[str, list[int]] = {}
        self.fan_in: dict[str, int] = {}

    @property
    def gamma_sal(self) -> float:
        return float(self.config.extra.get("gamma_sal", 0.3))

    @property
    def ablation(self) -> bool:
        return bool(self.config.extra.get("ablation", True))

    def init_masks(self, params, densities, generator):
        masks = {}
        for f, p in params.items():
            rows, fan_in = p.shape[0], p[0].numel()
            self.targets[f] = layer_nnz(p.numel(), densities[f])
            self.fan_in[f] = min(fan_in, max(1, self.targets[f] // rows))
            self.ablated[f] = []
            masks[f] = constant_fanin_mask(rows, fan_in, k=self.fan_in[f], generator=generator).view(p.shape)
        return masks

    @torch.no_grad()
    def after_optimizer_step(self, params, masks, step):
        if not self.is_update(step):
            return masks
        frac = self.drop_fraction(step)
        last = list(params)[-1]
        new = {}
        for f, p in params.items():
            if self.is_dense(f, p.numel()):
                new[f] = masks[f]
                continue
            new[f], grown, active, self.fan_in[f] = srigl_layer_update(
                weight=p, grad=self._grads[f], mask=masks[f], drop_fraction=frac, target_nnz=self.targets[f],
                gamma_sal=self.gamma_sal, ablate=self.ablation and f != last)
            self.ablated[f] = torch.nonzero(~active).flatten().tolist()
            p.masked_fill_(grown, 0.0)
        self._grads = {}
        self.history.append({"step": step, "drop_fraction": frac, "density": mask_densities(new),
                             "fan_in": dict(self.fan_in),
                             "ablated_neurons": {f: len(v) for f, v in self.ablated.items()}})
        return new

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "ablated": {k: list(v) for k, v in self.ablated.items()},
                "fan_in": dict(self.fan_in)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.ablated = {k: [int(i) for i in v] for k, v in state.get("ablated", {}).items()}
        self.fan_in = {k: int(v) for k, v in state.get("fan_in", {}).items()}
