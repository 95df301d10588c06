"""The N:M DST methods: nm-mask-decay (MDGF), nm-structure-decay (SDGF), srste, nm-oneshot (ASP).

Behaviour from METHODS.md ("N:M with decaying masks"); schedules in nm_schedule.py, masks in
nm_mask.py. The target comes from `MethodConfig.nm` (N, M), else the recipe's `extra.nm` ("N:M");
`sparsity`, `densities`, `update_interval` and `alpha` (RigL's) are not used: every sparsified
tensor gets the same N:M.
Method options (`MethodConfig.extra`, validated against each class's `OPTIONS`):

    dense_warmup_fraction  dense training before the sparse span (nm-oneshot: the dense phase)
    finetune_fraction      hard-mask fine-tune at the end (mask frozen)
    mask_update_steps      steps between mask refreshes from the dense weights (default 1, i.e. every
                           step as in the authors' code; piecewise decay: D/16)
    schedule, decay_coef, decay_fraction   nm-mask-decay only (see nm_schedule.py)
    after_decay, gradient  nm-mask-decay only: recompute | freeze the mask once α = 0; scaled | straight_through
    nm                     the recipe's default N:M target as a string, e.g. "2:4" (--nm wins)
    nm_hardware            whose layer rule and group layout (masks/eligibility.py): flat (the SR-STE and
                           PGF reference masks), sparse_tensor_core (ASP), nm_accelerator (pads k)
    lambda_w               srste only: the decay on pruned weights, 2e-4 (Zhou et al. 2021)
    finetune_lr            nm-oneshot only: restart (ASP: the fine-tune repeats the lr schedule) | continue

Gradient flow: nm-mask-decay differentiates through W ⊙ (mask + (1−mask)·α), so pruned weights get
α·g (AQT; a documented choice, `gradient: straight_through` is PGF's). srste and nm-structure-decay
use the straight-through estimator (forward W⊙mask, dense gradient g to every weight), as in the
authors' code ("gradient flow"); srste adds λ_W·(1−mask)⊙W. Dense weights are kept during the span
(hard_masked_weights = False); once a mask is hard (the fine-tune, the last step, or α = 0 with
`after_decay: freeze`) the weights outside it are set to 0, so the final checkpoint holds
N:M-compliant weights. Layers in `MethodConfig.dense_layers` keep all-ones masks.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar, Mapping

import torch

from simsparse.dst.base import METHODS, Method
from simsparse.dst.nm_mask import nm_mask
from simsparse.dst.nm_schedule import (
    DECAY_SCHEDULES, decay_alpha, decay_steps, default_decay_coef, default_refresh_steps, is_refresh_step,
    sparse_span, structure_decay_nm,
)
from simsparse.errors import PatternError, SpecError
from simsparse.masks.eligibility import NM_SUPPORT, NMSupport, check_nm, check_pattern_supported, nm_eligibility
from simsparse.specs import Field, validate

_FRACTION = dict(type=float, required=False, min=0.0, max=1.0)
_COMMON_OPTIONS = {
    "dense_warmup_fraction": Field(**_FRACTION, default=0.0),
    "finetune_fraction": Field(**_FRACTION, default=0.0),
    "mask_update_steps": Field(int, required=False, min=1, default=None),
    "nm": Field(str, required=False, default=None),   # the recipe's default target "N:M"; --nm wins
    "nm_hardware": Field(str, required=False, default=None, choices=tuple(NM_SUPPORT.names())),
}


class NMMethod(Method):
    """Shared machinery: N:M target, phases, refresh, hard-mask zeroing and the phase history."""

    OPTIONS: ClassVar[dict[str, Field]] = _COMMON_OPTIONS
    ste: ClassVar[bool] = False  # straight-through forward W + (W⊙mask − W).detach()
    default_hardware: ClassVar[str] = "flat"  # the reference code's software mask (masks/eligibility.py)

    # ------------------------------------------------------------------ configuration

    @cached_property
    def options(self) -> dict[str, Any]:
        extra = dict(self.config.extra)
        for key, spec in self.OPTIONS.items():  # recipes read every number as float: 1.0 → 1 for int options
            value = extra.get(key)
            if spec.type is int and isinstance(value, float) and value.is_integer():
                extra[key] = int(value)
        return validate(extra, self.OPTIONS, source=f"method {self.name} options (extra)")

    @cached_property
    def target_nm(self) -> tuple[int, int]:
        nm = self.config.nm if self.config.nm is not None else self.options.get("nm")
        if nm is None:
            raise SpecError(f"method {self.name} needs an N:M target; pass --nm N:M (e.g. --nm 2:4 or --nm 1:8)")
        try:
            parts = nm.split(":") if isinstance(nm, str) else list(nm)
            n, m = (int(parts[0]), int(parts[1])) if len(parts) == 2 else (0, 0)
            check_nm(n, m)
        except (TypeError, ValueError, PatternError):
            raise SpecError(f"method {self.name}: nm = {nm!r} is invalid; give N:M with 1 <= N <= M, "
                            f"e.g. --nm 2:4") from None
        return n, m

    @cached_property
    def support(self) -> NMSupport:
        """The N:M hardware whose layer rule and group layout the masks follow (`extra.nm_hardware`)."""
        return NM_SUPPORT.get(self.options.get("nm_hardware") or self.default_hardware)

    def ineligible_layers(self, geometry: Mapping[str, tuple[tuple[int, ...], int]]) -> dict[str, str]:
        """{fqn: reason} of the layers `support` cannot run at the target N:M (they stay dense)."""
        n, m = self.target_nm
        check_pattern_supported((n, m), self.support)
        out = {}
        for fqn, (shape, groups) in geometry.items():
            verdict = nm_eligibility(weight_shape=shape, pattern=(n, m), support=self.support, groups=groups)
            if not verdict.eligible:
                out[fqn] = f"N:M {n}:{m} not runnable: {verdict.reason}"
        return out

    def masks_at(self, params: dict[str, torch.nn.Parameter], step: int) -> dict[str, torch.Tensor]:
        """N:M masks of `nm_at(step)` from the dense weights; layers kept dense get all-ones masks."""
        n, m = self.nm_at(step)
        return {fqn: torch.ones_like(p, dtype=torch.bool) if fqn in self.config.dense_layers
                else nm_mask(p.detach(), n, m, layout=self.support.layout) for fqn, p in params.items()}

    @cached_property
    def span(self) -> tuple[int, int]:
        return sparse_span(self.config.total_steps, dense_warmup_fraction=self.options["dense_warmup_fraction"],
                           finetune_fraction=self.options["finetune_fraction"])

    @cached_property
    def refresh_steps(self) -> int:
        return self.options["mask_update_steps"] or 1

    # ------------------------------------------------------------------ per-method schedule

    def nm_at(self, step: int) -> tuple[int, int]:
        """N:M the mask has at `step` ((M, M) = dense)."""
        t0, _ = self.span
        return self.target_nm if step >= t0 else (self.target_nm[1], self.target_nm[1])

    def alpha_at(self, step: int) -> float:
        """Weight the forward gives pruned positions (1 dense, 0 hard)."""
        return 1.0 if step < self.span[0] else 0.0

    def refresh_due(self, step: int) -> bool:
        """Recompute the mask from the dense weights before `step`."""
        t0, t1 = self.span
        return step == t0 or is_refresh_step(step, start_step=t0, end_step=t1, refresh_steps=self.refresh_steps)

    def hard_at(self, step: int) -> bool:
        """From `step` on positions outside the mask are dead: their weights are held at 0."""
        return step >= self.span[1] or step >= self.config.total_steps

    def phase_at(self, step: int) -> str:
        t0, t1 = self.span
        return "dense" if step < t0 else ("sparse" if step < t1 else "finetune")

    # ------------------------------------------------------------------ hooks

    def init_masks(self, params: dict[str, torch.nn.Parameter], densities: dict[str, float],
                   generator: torch.Generator) -> dict[str, torch.Tensor]:
        masks = self.masks_at(params, 0)
        self._record(0)
        return masks

    def straight_through(self, step: int) -> bool:
        """The gradient reaches every weight unscaled (forward W + (W_eff − W).detach())."""
        return self.ste and not self.hard_at(step)

    def forward_weight(self, fqn: str, weight: torch.Tensor, mask: torch.Tensor, step: int) -> torch.Tensor:
        alpha = self.alpha_at(step)
        if alpha >= 1.0:
            return weight
        eff = torch.where(mask, weight, weight * alpha)
        return weight + (eff - weight).detach() if self.straight_through(step) else eff

    def after_optimizer_step(self, params: dict[str, torch.nn.Parameter], masks: dict[str, torch.Tensor],
                             step: int) -> dict[str, torch.Tensor]:
        upcoming = step + 1
        if upcoming < self.config.total_steps and self.refresh_due(upcoming):
            masks = self.masks_at(params, upcoming)
        if self.hard_at(upcoming) and not self.hard_masked_weights:
            with torch.no_grad():
                for fqn, p in params.items():
                    p.masked_fill_(~masks[fqn], 0.0)
        self._record(upcoming)
        return masks

    def forward_density(self, fqn: str, mask: torch.Tensor, step: int) -> float:
        if self.alpha_at(step) > 0.0:
            return 1.0
        return float(mask.float().mean())

    def needs_dense_grad(self, step: int) -> bool:
        t0, t1 = self.span
        return self.straight_through(step) and t0 <= step < t1

    def mask_refresh(self, step: int) -> str:
        """How the mask changes during the segment starting at `step` (for the schedule)."""
        t0, t1 = self.span
        if step < t0:
            return "dense"
        if self.hard_at(step):
            return "pruned once, then frozen" if t0 == t1 else "frozen"
        return f"recomputed every {self.refresh_steps} steps" if self.refresh_steps > 1 else "recomputed every step"

    def schedule(self) -> list[dict[str, Any]]:
        """Segments of constant phase and N:M (and α step, for piecewise decay) with α at both ends."""
        rows: list[dict[str, Any]] = []
        total = self.config.total_steps
        for t in range(total):
            if rows and self._signature(t) == self._signature(rows[-1]["step"]):
                rows[-1].update(until=t, alpha_end=round(self.alpha_at(t), 6))
                continue
            n, m = self.nm_at(t)
            rows.append({"step": t, "until": t, "event": self.phase_at(t), "nm": f"{n}:{m}",
                         "alpha_start": round(self.alpha_at(t), 6), "alpha_end": round(self.alpha_at(t), 6),
                         "mask": self.mask_refresh(t)})
        rows += [{"step": t, "event": "lr schedule restarts"} for t in self.lr_restarts()]
        return sorted(rows, key=lambda r: r["step"])

    # ------------------------------------------------------------------ history / resume

    def _signature(self, step: int) -> list[Any]:
        n, m = self.nm_at(step)
        return [self.phase_at(step), n, m]

    def _record(self, step: int) -> None:
        """Append a history entry when the phase or N:M changes (plain data for the checkpoint)."""
        if step >= self.config.total_steps and self.history:
            return
        if self.history and self._signature(int(self.history[-1]["step"])) == self._signature(step):
            return
        n, m = self.nm_at(step)
        self.history.append({"step": step, "phase": self.phase_at(step), "nm": f"{n}:{m}",
                             "alpha": round(self.alpha_at(step), 6)})


@METHODS.register("nm-mask-decay")
class MaskDecay(NMMethod):
    """MDGF: W_eff = W ⊙ (mask + (1−mask)·α_t); α from 1 to 0.

    After α reaches 0 the mask is still recomputed from the dense weights at every refresh until the
    fine-tune (AQT at every mask update, PGF at every forward); `after_decay: freeze` holds it instead.
    `gradient: scaled` (α·g to pruned weights, autodiff through the product, as AQT) or
    `straight_through` (g to every weight, as PGF's backward).
    """

    name = "nm-mask-decay"
    hard_masked_weights = False
    OPTIONS = {**_COMMON_OPTIONS,
               "schedule": Field(str, required=False, choices=DECAY_SCHEDULES, default="linear"),
               "decay_coef": Field(float, required=False, min=0.0, default=None),
               "decay_fraction": Field(float, required=False, min=1e-6, max=1.0, default=0.2),
               "after_decay": Field(str, required=False, choices=("recompute", "freeze"), default="recompute"),
               "gradient": Field(str, required=False, choices=("scaled", "straight_through"), default="scaled")}

    @cached_property
    def n_decay_steps(self) -> int:
        t0, t1 = self.span
        return decay_steps(start_step=t0, end_step=t1, decay_fraction=self.options["decay_fraction"])

    @cached_property
    def refresh_steps(self) -> int:
        return self.options["mask_update_steps"] or default_refresh_steps(self.options["schedule"],
                                                                         n_decay_steps=self.n_decay_steps)

    @cached_property
    def decay_coef(self) -> float:
        if self.options["decay_coef"] is not None:
            return self.options["decay_coef"]
        return default_decay_coef(self.options["schedule"], n_decay_steps=self.n_decay_steps,
                                  refresh_steps=self.refresh_steps)

    def alpha_at(self, step: int) -> float:
        t0, t1 = self.span
        return decay_alpha(step, schedule=self.options["schedule"], start_step=t0, end_step=t1,
                           coef=self.decay_coef, refresh_steps=self.refresh_steps)

    @property
    def frozen_after_decay(self) -> bool:
        return self.options["after_decay"] == "freeze"

    def straight_through(self, step: int) -> bool:
        return self.options["gradient"] == "straight_through" and not self.hard_at(step)

    def refresh_due(self, step: int) -> bool:
        if self.frozen_after_decay:  # the option: no more refreshes once α has reached 0
            return super().refresh_due(step) and (step == self.span[0] or self.alpha_at(step - 1) > 0.0)
        return super().refresh_due(step)

    def hard_at(self, step: int) -> bool:
        if self.frozen_after_decay:
            return step >= self.span[0] and self.alpha_at(step) == 0.0
        return super().hard_at(step)

    def phase_at(self, step: int) -> str:
        t0, t1 = self.span
        if step < t0:
            return "dense"
        if step >= t1:
            return "finetune"
        return "decay" if self.alpha_at(step) > 0.0 else "sparse"

    def _signature(self, step: int) -> list[Any]:
        sig = super()._signature(step)
        if self.options["schedule"] == "piecewise":  # α changes once per refresh: record each value
            sig.append(round(self.alpha_at(step), 6))
        return sig


@METHODS.register("nm-structure-decay")
class StructureDecay(NMMethod):
    """SDGF: M fixed, N steps down frame by frame ((M−1):M, M/2:M, ... N:M), straight-through gradient."""

    name = "nm-structure-decay"
    hard_masked_weights = False
    ste = True

    def nm_at(self, step: int) -> tuple[int, int]:
        t0, t1 = self.span
        n, m = self.target_nm
        return structure_decay_nm(step, n=n, m=m, start_step=t0, end_step=t1)

    def refresh_due(self, step: int) -> bool:
        frame_changed = step > 0 and self.nm_at(step) != self.nm_at(step - 1)
        return frame_changed or super().refresh_due(step)


@METHODS.register("srste")
class SRSTE(NMMethod):
    """SR-STE: forward W⊙mask (mask every step), backward g + λ_W·(1−mask)⊙W."""

    name = "srste"
    hard_masked_weights = False
    ste = True
    OPTIONS = {**_COMMON_OPTIONS, "lambda_w": Field(float, required=False, min=0.0, default=2e-4)}

    def before_optimizer_step(self, params: dict[str, torch.nn.Parameter], masks: dict[str, torch.Tensor],
                              step: int) -> None:
        t0, t1 = self.span
        if not t0 <= step < t1:
            return
        lam = self.options["lambda_w"]
        with torch.no_grad():
            for fqn, p in params.items():
                if p.grad is None:
                    continue
                p.grad.add_(torch.where(masks[fqn], torch.zeros_like(p), p), alpha=lam)


@METHODS.register("nm-oneshot")
class OneShot(NMMethod):
    """ASP: dense training, one magnitude prune to N:M at t0, fine-tune with that mask fixed."""

    name = "nm-oneshot"
    hard_masked_weights = True
    default_hardware = "sparse_tensor_core"  # ASP: masks for NVIDIA sparse tensor cores
    OPTIONS = {"dense_warmup_fraction": Field(**_FRACTION, default=0.5), "nm": _COMMON_OPTIONS["nm"],
               "nm_hardware": _COMMON_OPTIONS["nm_hardware"],
               "finetune_lr": Field(str, required=False, choices=("restart", "continue"), default="restart")}

    @cached_property
    def span(self) -> tuple[int, int]:
        total = self.config.total_steps
        t0 = int(round(self.options["dense_warmup_fraction"] * total))
        if t0 >= total:
            raise SpecError(f"method nm-oneshot: dense_warmup_fraction {self.options['dense_warmup_fraction']} "
                            f"leaves no fine-tune steps out of {total}; lower it")
        return t0, t0  # the mask is hard from the prune on

    def refresh_due(self, step: int) -> bool:
        return step == self.span[0]

    def phase_at(self, step: int) -> str:
        return "dense" if step < self.span[0] else "finetune"

    def lr_restarts(self) -> tuple[int, ...]:
        """ASP fine-tunes with the dense run's whole schedule again: the lr schedule restarts at the prune
        (`finetune_lr: restart`); `continue` keeps one schedule over the whole run."""
        return (self.span[0],) if self.options["finetune_lr"] == "restart" else ()
