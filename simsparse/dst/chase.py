"""`chase` (Yin et al., NeurIPS 2023): channel-level sparsity grown out of unstructured DST.

Schedule (steps; ΔT = update_interval, R = removal_every_updates·ΔT, see recipes/chase.yaml):
- Mask updates every ΔT before T_end. While ρ(t) > d (soft memory bound, cosine from d+0.05 down
  to d at the stop step) each layer is pruned back to its budget b_l by |w| and regrown to
  ρ(t)/d·b_l by |dense grad|; afterwards the updates are RigL swaps (cosine drop fraction).
- Channel removal events midway between mask updates, at ΔT/2 + j·R up to the stop step (the last
  event; stop_fraction·total_steps rounded down onto the event grid): S(t) = S_c·(1 − (1 − t/T)^3)
  of all removable channels (channels.py) are removed in total, the globally lowest UMM (mean |w| of
  the filter, zeros included) first, each layer keeping ≥ ⌊C_l·(1 − S_c)·β⌋ channels. A removed
  channel is zeroed for good: producer rows, consumer input slices, producer bias and BN entries.
- Budget: a layer's budget is capped at its surviving positions; the excess moves to the layers
  with the most room (greedy), so Σ b_l — the overall density d — never changes; the lost
  nonzeros are regrown at once by |dense grad| inside surviving channels.
Per-layer ρ scaling, the greedy budget move and the RigL phase drop fraction are choices.
`extra`: channel_sparsity (S_c, 0.4), beta (0.2), memory_extra (0.05), stop_fraction (0.8),
removal_every_updates (1).
"""

from __future__ import annotations

from typing import Any

import torch

from simsparse.dst.base import METHODS
from simsparse.dst.channels import ChannelTracingError, RemovableChannels, removable_channel_groups
from simsparse.dst.density import layer_nnz
from simsparse.dst.rigl import ScheduledDST, mask_densities, prune_and_grow, random_mask
from simsparse.dst.schedule import cubic_channel_sparsity, soft_memory_bound
from simsparse.errors import SpecError

_DEFAULTS = {"channel_sparsity": 0.4, "beta": 0.2, "memory_extra": 0.05, "stop_fraction": 0.8,
             "removal_every_updates": 1, "untraceable": "error"}
UNTRACEABLE = ("error", "unstructured")


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

    # ------------------------------------------------------------------ options and schedule
    def option(self, key: str) -> float:  # numeric options only
        return float(self.config.extra.get(key, _DEFAULTS[key]))

    @property
    def density(self) -> float:
        return 1.0 - self.config.sparsity

    @property
    def removal_interval(self) -> int:
        return max(1, int(self.option("removal_every_updates")) * self.config.update_interval)

    @property
    def first_removal(self) -> int:
        return max(1, self.config.update_interval // 2)

    @property
    def stop_step(self) -> int:
        """The last removal event (T of the cubic schedule)."""
        last = int(self.option("stop_fraction") * self.config.total_steps)
        if last < self.first_removal:
            return self.first_removal
        return self.first_removal + (last - self.first_removal) // self.removal_interval * self.removal_interval

    def is_removal(self, step: int) -> bool:
        return (self.option("channel_sparsity") > 0 and bool(self.groups) and self.config.sparsity > 0
                and self.first_removal <= step <= self.stop_step and (step - self.first_removal) % self.removal_interval == 0)

    def channel_sparsity_at(self, step: int) -> float:
        return cubic_channel_sparsity(step, final=self.option("channel_sparsity"), stop_step=self.stop_step)

    def memory_ratio(self, step: int) -> float:
        """ρ(t)/d: how far above its budget a layer is regrown."""
        rho = soft_memory_bound(step, density=self.density, extra=self.option("memory_extra"), stop_step=self.stop_step)
        return rho / self.density

    def floor(self, group: RemovableChannels) -> int:
        return int(group.channels * (1.0 - self.option("channel_sparsity")) * self.option("beta"))

    def needs_dense_grad(self, step: int) -> bool:
        return self.is_update(step) or self.is_removal(step)

    # ------------------------------------------------------------------ hooks
    def bind_model(self, model: torch.nn.Module, *, example_input: torch.Tensor | None = None) -> None:
        self.model = model
        self._example_input = example_input

    def find_groups(self, sparsified: set[str]) -> list[RemovableChannels]:
        """The removable channels (channels.py); on a model that cannot be traced, a clear error, or no
        channel removal at all when `untraceable: unstructured` (recorded in notes())."""
        policy = str(self.config.extra.get("untraceable", _DEFAULTS["untraceable"]))
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

    def init_masks(self, params, densities, generator):
        self.groups = self.find_groups(set(params))
        self.removed = {g.producer: [] for g in self.groups}
        self.targets = {f: layer_nnz(p.numel(), densities[f]) for f, p in params.items()}
        ratio = self.memory_ratio(0) if self.config.sparsity > 0 else 1.0
        return {f: random_mask(p.shape, nnz=min(p.numel(), round(self.targets[f] * ratio)), generator=generator)
                for f, p in params.items()}

    @torch.no_grad()
    def after_optimizer_step(self, params, masks, step):
        self._zero_removed_entries()
        removal, update = self.is_removal(step), self.is_update(step)
        if not (removal or update):
            return masks
        masks = dict(masks)
        event: dict[str, Any] = {"step": step}
        if removal:
            masks = self._remove_channels(params, masks, step, event)
        if update:
            masks = self._update(params, masks, step)
            event["drop_fraction"] = self.drop_fraction(step) if self.memory_ratio(step) <= 1.0 else 0.0
        self._grads = {}
        event["density"] = mask_densities(masks)
        event["removed_channels"] = {f: len(v) for f, v in self.removed.items()}
        self.history.append(event)
        return masks

    # ------------------------------------------------------------------ mask updates
    def alive(self, fqn: str, shape: torch.Size) -> torch.Tensor:
        """Positions of `fqn` outside removed channels (producer rows and consumer input slices)."""
        ok = torch.ones(shape, dtype=torch.bool)
        for g in self.groups:
            if g.producer == fqn and self.removed[g.producer]:
                ok[self.removed[g.producer]] = False
            if g.consumer == fqn and self.removed[g.producer]:
                ok[:, self.removed[g.producer]] = False
        return ok

    def _update(self, params, masks, step):
        ratio = self.memory_ratio(step)
        frac = self.drop_fraction(step) if ratio <= 1.0 else 0.0
        for f, p in params.items():
            alive = self.alive(f, p.shape)
            base = min(int(masks[f].sum()), self.targets[f])
            n_total = min(int(alive.sum()), round(self.targets[f] * ratio))
            masks[f], grown = prune_and_grow(weight=p, grad=self._grads[f], mask=masks[f],
                                             n_keep=base - int(frac * base), n_total=n_total, allowed=alive)
            p.masked_fill_(grown, 0.0)
        return masks

    def _remove_channels(self, params, masks, step, event):
        total = sum(g.channels for g in self.groups)
        target = round(self.channel_sparsity_at(step) * total)
        n_new = target - sum(len(v) for v in self.removed.values())
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
        self._move_budgets(params)
        ratio = self.memory_ratio(step)
        for f, p in params.items():
            nnz = int(masks[f].sum())
            n_total = min(int(self.alive(f, p.shape).sum()), round(self.targets[f] * ratio))
            masks[f], grown = prune_and_grow(weight=p, grad=self._grads[f], mask=masks[f], n_keep=nnz,
                                             n_total=max(nnz, n_total), allowed=self.alive(f, p.shape))
            p.masked_fill_(grown, 0.0)
        event["channel_sparsity_target"] = self.channel_sparsity_at(step)
        return masks

    def _move_budgets(self, params) -> None:
        """Cap budgets at surviving positions; give the excess to the layers with the most room."""
        room = {}
        excess = 0
        for f, p in params.items():
            cap = int(self.alive(f, p.shape).sum())
            if self.targets[f] > cap:
                excess += self.targets[f] - cap
                self.targets[f] = cap
            room[f] = cap - self.targets[f]
        for f in sorted(room, key=lambda k: -room[k]):
            give = min(room[f], excess)
            self.targets[f] += give
            excess -= give

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
        return {**super().state_dict(), "removed": {k: list(v) for k, v in self.removed.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.removed = {k: [int(i) for i in v] for k, v in state.get("removed", {}).items()}
