"""`srigl` (Lasby et al., ICLR 2024): constant fan-in DST with neuron ablation.

Follows the authors' code (calgaryml/condensed-sparsity: rigl_constant_fan.py, rigl_scheduler.py,
utils/sparse_init.py). Rows are output neurons / conv filters (weight.reshape(Cout, -1)); every
active row holds exactly k' nonzeros. Init: k = target_nnz // rows random positions per row, then the
active weights are re-drawn on the sparse support (`sparse_init`, grad_flow_init by default).
Update, every ΔT before T_end with RigL's cosine drop fraction f, per layer:
  1. n_prune = int(nnz·f), n_keep = nnz − n_prune (n_keep capped at the nonzero weights).
  2. Ablation: salient = top-n_keep |w| ∪ top-n_prune |dense grad| over the whole layer (a plain
     union). A row is ablated when its salient count < max(1, int(γ_sal·k)), k = target_nnz // rows.
     The rows are sorted by salient count; the threshold drops to the count of row int(n // F)
     (n = target_nnz, F = dense fan-in), so at least int(n // F) + 1 rows and every row tied with
     the last of them stay active. Recomputed each update: an ablated row can come back.
  3. k' = target_nnz // active_rows.
  4. Ablated rows score below every weight, then the top-n_keep |w| are kept layer-wide, so an
     ablated row's share of kept weights goes to surviving rows by |w|. Rows above k' are cut to
     their k' largest |w| (a choice: the reference keeps an arbitrary k' of them).
  5. Regrow each active row to exactly k' by largest |dense grad|; ablated rows get none. A weight
     dropped and regrown in the same update keeps its value (and momentum); new positions start at 0.
The last sparsified layer (the classifier) is never ablated. `extra`: gamma_sal (0.3), ablation
(True), sparse_init (grad_flow | kaiming | none).
"""

from __future__ import annotations

from typing import Any

import torch

from simsparse.dst.base import METHODS
from simsparse.dst.density import layer_nnz
from simsparse.dst.rigl import ScheduledDST, mask_densities, topk_mask
from simsparse.errors import SpecError

_NEG = float("-inf")
SPARSE_INITS = ("grad_flow", "kaiming", "none")


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
    """Step 2: rows whose salient count reaches the threshold; the top int(n // F) + 1 rows and every
    row tied with the last of them always stay (the threshold drops to that row's count)."""
    rows, fan_in = kept.shape
    salient = kept | topk_mask(grad.abs(), n_prune)  # layer-wide, may overlap `kept`
    counts = salient.sum(dim=1)
    k = max(1, target_nnz // rows)
    threshold = max(1, int(gamma_sal * k))
    min_rows = target_nnz // fan_in
    if min_rows < rows:
        threshold = min(threshold, int(torch.sort(counts, descending=True).values[min_rows]))
    return counts >= threshold


def srigl_layer_update(*, weight: torch.Tensor, grad: torch.Tensor, mask: torch.Tensor, drop_fraction: float,
                       target_nnz: int, gamma_sal: float, ablate: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(new mask, grown positions, active rows, k') of one SRigL update; masks in the weight's shape."""
    rows = weight.shape[0]
    w = weight.detach().reshape(rows, -1).abs()
    g = grad.reshape(rows, -1)
    m = mask.reshape(rows, -1)
    nnz = int(m.sum())
    n_prune = int(nnz * drop_fraction)
    n_keep = min(nnz - n_prune, int(((w > 0) & m).sum()))   # never keep a zero weight (as the reference)
    n_prune = nnz - n_keep
    if ablate:
        top = topk_mask(torch.where(m, w, _NEG), n_keep)
        active = active_rows(kept=top, grad=g, n_prune=n_prune, target_nnz=target_nnz, gamma_sal=gamma_sal)
    else:
        active = torch.ones(rows, dtype=torch.bool)
    k_new = min(w.shape[1], target_nnz // max(1, int(active.sum())))
    alive = m & active[:, None] & (w > 0)                    # ablated rows score below every weight
    kept = topk_mask(torch.where(alive, w, _NEG), min(n_keep, int(alive.sum())))
    kept &= row_ranks(torch.where(kept, w, _NEG)) < k_new
    need = (k_new - kept.sum(dim=1)).clamp(min=0) * active
    grown = (row_ranks(torch.where(kept, _NEG, g.abs())) < need[:, None]) & ~kept
    new = kept | grown
    return new.view(mask.shape), grown.view(mask.shape), active, k_new


def grad_flow_init(weight: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator, kind: str) -> None:
    """Re-draw the active weights of every row from N(0, σ(fan-in of the row)); inactive ones are 0.

    kind `grad_flow`: σ = 2 / fan_in, as condensed-sparsity's utils/sparse_init.grad_flow_init codes it
    (its config default, init_method_str grad_flow_init); `kaiming`: σ = sqrt(2 / fan_in), the formula
    of Evci et al.'s "Gradient flow in sparse neural networks"; `none` keeps the dense initialisation.
    """
    if kind == "none":
        return
    rows = weight.shape[0]
    fan = mask.reshape(rows, -1).sum(dim=1).clamp(min=1).float()
    std = 2.0 / fan if kind == "grad_flow" else (2.0 / fan).sqrt()
    draw = torch.randn(weight.reshape(rows, -1).shape, generator=generator) * std[:, None]
    with torch.no_grad():
        weight.copy_((draw * mask.reshape(rows, -1)).view_as(weight))


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

    @property
    def sparse_init(self) -> str:
        kind = str(self.config.extra.get("sparse_init", "grad_flow"))
        if kind not in SPARSE_INITS:
            raise SpecError(f"method srigl: sparse_init = {kind!r} is unknown; use one of {', '.join(SPARSE_INITS)}")
        return kind

    def schedule(self) -> list[dict[str, Any]]:
        return [{**row, "ablation": self.ablation, "gamma_sal": self.gamma_sal} for row in super().schedule()]

    def init_masks(self, params, densities, generator):
        masks = {}
        for f, p in params.items():
            rows, fan_in = p.shape[0], p[0].numel()
            self.targets[f] = layer_nnz(p.numel(), densities[f])
            self.fan_in[f] = min(fan_in, max(1, self.targets[f] // rows))
            self.ablated[f] = []
            masks[f] = constant_fanin_mask(rows, fan_in, k=self.fan_in[f], generator=generator).view(p.shape)
            if not self.is_dense(f, p.numel()):
                grad_flow_init(p, masks[f], generator=generator, kind=self.sparse_init)
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
            p.masked_fill_(grown & ~masks[f], 0.0)   # dropped and regrown in one update: weight kept
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
