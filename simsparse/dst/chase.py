"""`chase` (Yin et al., NeurIPS 2023): channel-level sparsity grown out of unstructured DST.

Follows the authors' code (luuyin/chase, Imagenet/core.py and main.py, script Chase_0.4). T = total
steps, T_s = int(stop_fraction·T), ΔT = update_interval, R = removal_every_updates·ΔT, d = 1 − sparsity,
B = the ERK budget of nonzeros at d (fixed), P = the sparsified weights' full size.

- Init: ERK masks at density d.
- Memory phase (updates at t = ΔT, 2ΔT, ... < T_s): MEST's soft memory bound. Every layer is
  pruned by the same fraction (N − B)/N of its nnz, smallest |w| first, back to the budget B;
  then N is regrown to ρ(t)·P. Layers that ERK makes dense are refilled; every other layer grows
  int(n_l·g) positions by |dense grad|, with one ratio g for all, so in proportion to its nnz.
  ρ(t) runs a cosine from d + memory_extra down to d + memory_floor at T_s.
- Channel removal events, midway between updates at t = j·R − ΔT/2 (j ≥ 1), t < T_s: the target
  channel sparsity S(t) = S_c·(1 − (1 − t/T_s)^3). Of the C removable channels (channels.py),
  int(C·(1 − S(t))) stay. The rest go in order of lowest UMM (mean |w| of the filter, zeros
  included), each layer keeping ≥ int(C_l·(1 − S_c)·β). A removed channel is zeroed for good:
  producer rows, consumer input slices, producer bias and BN entries. Its nonzeros are not regrown
  at the event. The next update regrows them across all layers in proportion to their nnz (the
  memory phase). ERK is then solved again on the shrunk shapes at density B / (surviving size).
- Final phase (updates at t ≥ T_s up to the last step): every layer drops ceil(r(t)·n_l) smallest
  |w| and regrows by |dense grad| to its ERK share of the shrunk shape. r(t) runs a cosine from
  final_drop_start (0.5) to final_drop_end (0.005) over the whole run, so about 0.05 → 0.005 in the
  last 20 %.
`extra`: channel_sparsity S_c (0.4), beta β (0.2), memory_extra (0.05, the script's --prune-rate),
memory_floor (0.005), stop_fraction (0.8), removal_every_updates (1), final_drop_start (0.5),
final_drop_end (0.005), untraceable (error | unstructured: a model whose channel coupling cannot be
traced runs without channel removal, recorded in the checkpoint's method_notes).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from simsparse.dst.base import METHODS
from simsparse.dst.channels import ChannelTracingError, RemovableChannels, removable_channel_groups
from simsparse.dst.density import layer_densities, layer_nnz
from simsparse.dst.rigl import ScheduledDST, mask_densities, random_mask, topk_mask
from simsparse.dst.schedule import cosine_anneal, cubic_channel_sparsity
from simsparse.errors import SpecError

_NUMERIC = {"channel_sparsity": 0.4, "beta": 0.2, "memory_extra": 0.05, "memory_floor": 0.005,
            "stop_fraction": 0.8, "removal_every_updates": 1, "final_drop_start": 0.5, "final_drop_end": 0.005}
UNTRACEABLE = ("error", "unstructured")
_NEG = float("-inf")


def keep_largest(weight: torch.Tensor, mask: torch.Tensor, n_keep: int) -> torch.Tensor:
    """The n_keep largest |w| among the active positions."""
    return topk_mask(torch.where(mask, weight.detach().abs(), torch.tensor(_NEG)), max(0, n_keep))


def grow_by_gradient(grad: torch.Tensor, mask: torch.Tensor, allowed: torch.Tensor, n: int) -> torch.Tensor:
    """The n inactive allowed positions with the largest |grad| (fewer when there is no room)."""
    free = allowed & ~mask
    return topk_mask(torch.where(free, grad.abs(), torch.tensor(_NEG)), min(max(0, n), int(free.sum())))


@METHODS.register("chase")
class Chase(ScheduledDST):
    name = "chase"

    def __init__(self, config) -> None:
        super().__init__(config)
        self.model: torch.nn.Module | None = None
        self._example_input: torch.Tensor | None = None
        self.groups: list[RemovableChannels] = []
        self.removed: dict[str, list[int]] = {}
        self.coupling: dict[str, Any] = {}
        self.erk: dict[str, float] = {}      # per-layer density on the current (shrunk) shapes
        self.budget = 0                       # B: nonzeros at density d (fixed)
        self.full_size = 0                    # P: the sparsified weights' full size

    # ------------------------------------------------------------------ options and schedule
    def option(self, key: str) -> float:
        return float(self.config.extra.get(key, _NUMERIC[key]))

    @property
    def density(self) -> float:
        return 1.0 - self.config.sparsity

    @property
    def stop_step(self) -> int:
        """T_s: end of the memory phase and of channel removal."""
        return int(self.option("stop_fraction") * self.config.total_steps)

    @property
    def removal_interval(self) -> int:
        return max(1, int(self.option("removal_every_updates")) * self.config.update_interval)

    def is_update(self, step: int) -> bool:
        return self.config.sparsity > 0 and 0 < step < self.config.total_steps and step % self.config.update_interval == 0

    def is_removal(self, step: int) -> bool:
        return (self.option("channel_sparsity") > 0 and bool(self.groups) and self.config.sparsity > 0
                and 0 < step < self.stop_step and (step + self.config.update_interval // 2) % self.removal_interval == 0)

    def channel_sparsity_at(self, step: int) -> float:
        return cubic_channel_sparsity(step, final=self.option("channel_sparsity"), stop_step=self.stop_step)

    def channels_kept_at(self, step: int) -> int:
        """Removable channels that survive the event at `step` (the reference's int(C·(1 − S)))."""
        total = sum(g.channels for g in self.groups)
        return int(total * (1.0 - self.channel_sparsity_at(step)))

    def memory_bound(self, step: int) -> float:
        """ρ(t): the density the memory phase regrows to."""
        return cosine_anneal(step, start=self.density + self.option("memory_extra"),
                             end=self.density + self.option("memory_floor"), period=self.stop_step)

    def final_drop(self, step: int) -> float:
        """r(t): the drop fraction of the final phase (cosine over the whole run)."""
        return cosine_anneal(step, start=self.option("final_drop_start"), end=self.option("final_drop_end"),
                             period=self.config.total_steps)

    def floor(self, group: RemovableChannels) -> int:
        return int(group.channels * (1.0 - self.option("channel_sparsity")) * self.option("beta"))

    def needs_dense_grad(self, step: int) -> bool:
        return self.is_update(step)

    def schedule(self) -> list[dict[str, Any]]:
        """Updates (memory phase: ρ; final phase: drop fraction) and removal events with the cumulative
        number of channels to remove (the per-layer floors may leave fewer); needs init_masks (groups)."""
        total = sum(g.channels for g in self.groups)
        rows = []
        for t in range(self.config.total_steps):
            if self.is_removal(t):
                rows.append({"step": t, "event": "channel removal", "channel_sparsity": self.channel_sparsity_at(t),
                             "channels_removed": total - self.channels_kept_at(t), "channels": total})
            if self.is_update(t) and t < self.stop_step:
                rows.append({"step": t, "event": "mask update (memory phase)", "rho": self.memory_bound(t)})
            elif self.is_update(t):
                rows.append({"step": t, "event": "mask update (final phase)", "drop_fraction": self.final_drop(t)})
        return rows

    # ------------------------------------------------------------------ channel coupling
    def bind_model(self, model: torch.nn.Module, *, example_input: torch.Tensor | None = None) -> None:
        self.model = model
        self._example_input = example_input

    def find_groups(self, sparsified: set[str]) -> list[RemovableChannels]:
        """The removable channels (channels.py); on a model that cannot be traced, a clear error, or no
        channel removal at all when `untraceable: unstructured` (recorded in notes())."""
        policy = str(self.config.extra.get("untraceable", "error"))
        if policy not in UNTRACEABLE:
            raise SpecError(f"method chase: untraceable = {policy!r} is unknown; use one of {', '.join(UNTRACEABLE)}")
        if self.model is None or self._example_input is None:
            raise ChannelTracingError("method chase needs the model and a sample input to trace its channel coupling")
        try:
            groups = removable_channel_groups(self.model, sparsified=sparsified, example_input=self._example_input)
        except ChannelTracingError as exc:
            if policy == "error":
                raise ChannelTracingError(f"{exc}; fix the model, or pass --set extra.untraceable=unstructured to "
                                          "run Chase without channel removal") from None
            self.coupling = {"source": "none", "channel_removal": False, "reason": str(exc)}
            return []
        self.coupling = {"source": "graph.coupling", "channel_removal": bool(groups), "groups": len(groups),
                         "channels": sum(g.channels for g in groups)}
        return groups

    def notes(self) -> dict[str, Any]:
        return {"channel_coupling": dict(self.coupling)}

    def alive(self, fqn: str, shape: torch.Size) -> torch.Tensor:
        """Positions of `fqn` outside removed channels (producer rows and consumer input slices)."""
        ok = torch.ones(shape, dtype=torch.bool)
        for g in self.groups:
            if g.producer == fqn and self.removed[g.producer]:
                ok[self.removed[g.producer]] = False
            if g.consumer == fqn and self.removed[g.producer]:
                ok[:, self.removed[g.producer]] = False
        return ok

    def shrunk_shape(self, fqn: str, shape: torch.Size) -> tuple[int, ...]:
        out = list(shape)
        for g in self.groups:
            if g.producer == fqn:
                out[0] -= len(self.removed[g.producer])
            if g.consumer == fqn:
                out[1] -= len(self.removed[g.producer])
        return tuple(out)

    # ------------------------------------------------------------------ hooks
    def init_masks(self, params, densities, generator):
        sparse = {f: p for f, p in params.items() if f not in self.config.dense_layers}
        self.groups = self.find_groups(set(sparse))
        self.removed = {g.producer: [] for g in self.groups}
        self.targets = {f: layer_nnz(p.numel(), densities[f]) for f, p in sparse.items()}
        self.erk = {f: self.targets[f] / p.numel() for f, p in sparse.items()}
        self.budget = sum(self.targets.values())
        self.full_size = sum(p.numel() for p in sparse.values())
        return {f: (random_mask(p.shape, nnz=self.targets[f], generator=generator) if f in sparse
                    else torch.ones_like(p, dtype=torch.bool)) for f, p in params.items()}

    @torch.no_grad()
    def after_optimizer_step(self, params, masks, step):
        self._zero_removed_entries()
        removal, update = self.is_removal(step), self.is_update(step)
        if not (removal or update):
            return masks
        sparse = {f: p for f, p in params.items() if f in self.targets}
        masks = dict(masks)
        event: dict[str, Any] = {"step": step}
        if removal:
            self._remove_channels(sparse, masks, step, event)
        if update and step < self.stop_step:
            event.update(phase="memory", rho=self.memory_bound(step))
            self._memory_update(sparse, masks, rho=event["rho"])
        elif update:
            event.update(phase="final", drop_fraction=self.final_drop(step))
            self._final_update(sparse, masks, drop=event["drop_fraction"])
        self._grads = {}
        event["density"] = mask_densities(masks)
        event["removed_channels"] = {f: len(v) for f, v in self.removed.items()}
        self.history.append(event)
        return masks

    # ------------------------------------------------------------------ mask updates
    def _prune_each(self, params, masks, fraction: float) -> None:
        """Every layer drops ceil(fraction·nnz) of its smallest |w| (the reference's magnitude_death)."""
        for f, p in params.items():
            nnz = int(masks[f].sum())
            masks[f] = keep_largest(p, masks[f], nnz - math.ceil(fraction * nnz))
            p.mul_(masks[f])

    def _grow(self, params, masks, counts: dict[str, int]) -> None:
        for f, n in counts.items():
            grown = grow_by_gradient(self._grads[f], masks[f], self.alive(f, params[f].shape), n)
            params[f].masked_fill_(grown, 0.0)
            masks[f] = masks[f] | grown

    def _memory_update(self, params, masks, *, rho: float) -> None:
        nnz = sum(int(m.sum()) for f, m in masks.items() if f in params)
        if nnz > self.budget:
            self._prune_each(params, masks, (nnz - self.budget) / nnz)
        counts = {f: int(masks[f].sum()) for f in params}
        to_grow = rho * self.full_size - sum(counts.values())
        dense = [f for f in params if self.erk[f] >= 1.0]
        refill = {f: int(self.alive(f, params[f].shape).sum()) - counts[f] for f in dense}
        rest = sum(counts.values()) - sum(counts[f] for f in dense)
        ratio = (to_grow - sum(refill.values())) / rest if rest else 0.0
        if to_grow > 0 and ratio > 0:
            self._grow(params, masks, {**{f: int(counts[f] * ratio) for f in params if f not in dense}, **refill})

    def _final_update(self, params, masks, *, drop: float) -> None:
        self._prune_each(params, masks, drop)
        goal = {f: int(self.erk[f] * int(self.alive(f, p.shape).sum())) for f, p in params.items()}
        self._grow(params, masks, {f: goal[f] - int(masks[f].sum()) for f in params})

    def _remove_channels(self, params, masks, step, event) -> None:
        alive_total = sum(g.channels - len(self.removed[g.producer]) for g in self.groups)
        n_new = alive_total - self.channels_kept_at(step)
        candidates = []
        for gi, g in enumerate(self.groups):
            umm = params[g.producer].detach().abs().reshape(g.channels, -1).mean(dim=1)
            gone = set(self.removed[g.producer])
            candidates += [(float(umm[c]), gi, c) for c in range(g.channels) if c not in gone]
        for _, gi, c in sorted(candidates):
            if n_new <= 0:
                break
            g = self.groups[gi]
            if g.channels - len(self.removed[g.producer]) > self.floor(g):
                self.removed[g.producer].append(c)
                n_new -= 1
        for g in self.groups:
            self.removed[g.producer].sort()
        for f, p in params.items():
            masks[f] = masks[f] & self.alive(f, p.shape)
            p.mul_(masks[f])
        self._zero_removed_entries()
        self._solve_shrunk_densities(params)
        event["channel_sparsity_target"] = self.channel_sparsity_at(step)

    def _solve_shrunk_densities(self, params) -> None:
        """ERK (or uniform) on the shrunk shapes at density B / surviving size (the reference's update_erk_dic)."""
        shapes = {f: self.shrunk_shape(f, p.shape) for f, p in params.items()}
        size = sum(math.prod(s) for s in shapes.values())
        self.erk = layer_densities(shapes, density=min(1.0, self.budget / size), distribution=self.config.distribution)

    def _zero_removed_entries(self) -> None:
        """Producer bias and BN entries of removed channels stay exactly 0."""
        if self.model is None:
            return
        with torch.no_grad():
            for g in self.groups:
                idx = self.removed.get(g.producer)
                if not idx:
                    continue
                if g.producer_bias is not None:
                    self.model.get_parameter(g.producer_bias)[idx] = 0.0
                if g.norm is not None:
                    bn = self.model.get_submodule(g.norm)
                    for t in (bn.weight, bn.bias, bn.running_mean):
                        if t is not None:
                            t[idx] = 0.0

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "removed": {k: list(v) for k, v in self.removed.items()},
                "erk": dict(self.erk), "budget": self.budget, "full_size": self.full_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.removed = {k: [int(i) for i in v] for k, v in state.get("removed", {}).items()}
        self.erk = {k: float(v) for k, v in state.get("erk", {}).items()}
        self.budget = int(state.get("budget", 0))
        self.full_size = int(state.get("full_size", 0))
