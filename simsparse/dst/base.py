"""The method interface every DST method implements (the trainer calls only these hooks).

How the trainer uses a method (see trainer.py):
    masks = method.init_masks(params, densities, generator)     # {fqn: bool tensor}
    every step t:
        eff = {fqn: method.forward_weight(fqn, W, masks[fqn], t)}  # forward via torch.func.functional_call,
        loss.backward()                                            #   so gradients reach W through eff
        method.before_optimizer_step(params, masks, t)             # e.g. SR-STE decay term, read dense grads
        optimizer.step()
        masks = method.after_optimizer_step(params, masks, t)      # mask updates on the schedule
        trainer then zeroes W (and momentum) outside masks iff method.hard_masked_weights
Parameters are keyed by fully-qualified name; `params` is {fqn: nn.Parameter} of the sparsified
tensors only. History entries are plain data, stored in the checkpoint's meta.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

import torch

from simsparse.registry import Registry

METHODS: Registry[type["Method"]] = Registry("DST method")


@dataclass
class MethodConfig:
    """Hyper-parameters common to all methods; method-specific ones live in `extra`."""

    sparsity: float                    # overall target sparsity of the sparsified tensors (0 = dense)
    total_steps: int
    distribution: str = "erk"          # uniform | erk
    update_interval: int = 100         # ΔT
    alpha: float = 0.3                 # initial drop fraction
    t_end_fraction: float = 0.75       # mask updates stop at t_end_fraction * total_steps
    nm: tuple[int, int] | None = None  # (N, M) target for N:M methods
    extra: dict[str, Any] = field(default_factory=dict)
    dense_layers: Mapping[str, str] = field(default_factory=dict)  # fqn -> why it stays dense (never masked)


class Method(ABC):
    """A DST method. Constructors store; the hooks compute."""

    name: ClassVar[str] = ""
    hard_masked_weights: ClassVar[bool] = True  # trainer zeroes W and momentum outside masks each step

    def __init__(self, config: MethodConfig) -> None:
        self.config = config
        self.history: list[dict[str, Any]] = []

    def bind_model(self, model: torch.nn.Module, *, example_input: torch.Tensor | None = None) -> None:
        """Called once before init_masks with the whole model and a sample input batch (e.g. Chase
        traces the channel coupling).

        Default: nothing. Methods that touch non-sparsified tensors (BN entries of removed channels)
        keep the reference and use it in their hooks.
        """

    @abstractmethod
    def init_masks(self, params: dict[str, torch.nn.Parameter], densities: dict[str, float],
                   generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Initial boolean masks, one per sparsified parameter."""

    def forward_weight(self, fqn: str, weight: torch.Tensor, mask: torch.Tensor, step: int) -> torch.Tensor:
        """The weight the forward pass uses (default: W, already zero outside the mask)."""
        return weight

    def before_optimizer_step(self, params: dict[str, torch.nn.Parameter], masks: dict[str, torch.Tensor],
                              step: int) -> None:
        """After backward, before optimizer.step(): read dense gradients, add decay terms."""

    def after_optimizer_step(self, params: dict[str, torch.nn.Parameter], masks: dict[str, torch.Tensor],
                             step: int) -> dict[str, torch.Tensor]:
        """Mask updates on the schedule; returns the masks now in force."""
        return masks

    def forward_density(self, fqn: str, mask: torch.Tensor, step: int) -> float:
        """Fraction of the dense weight FLOPs the forward pass costs now (for train-FLOPs accounting)."""
        return float(mask.float().mean())

    def needs_dense_grad(self, step: int) -> bool:
        """True when this step's backward must compute dense weight gradients (regrowth)."""
        return False

    def schedule(self) -> list[dict[str, Any]]:
        """The run's planned events, computed from the configuration alone (for `train --explain`): one
        plain dict per event or segment with `step` (first step), `event`, optional `until` (last step)
        and the event's numbers. Default: nothing is ever updated."""
        return []

    def lr_restarts(self) -> tuple[int, ...]:
        """Steps at which the lr schedule starts over (default none)."""
        return ()

    def notes(self) -> dict[str, Any]:
        """Plain data for the checkpoint meta: which path ran where a method has several (default none)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Plain data to resume identically (tensors allowed)."""
        return {"history": list(self.history)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.history = list(state.get("history", []))
