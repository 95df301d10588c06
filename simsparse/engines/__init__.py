"""Engines turn an `ExecutionPlan` into an `Estimate`.

`analytic` is the closed form (fast default); `cycle` is an event-driven simulation (simpy),
one `simpy.Environment` per simulation. Each arch kind registers its implementation of each
engine here:

    @register("gpu_sparse_tensor_core", "analytic")
    def gpu_analytic(plan: ExecutionPlan, model: ArchModel) -> Estimate: ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from simsparse.errors import UnknownNameError
from simsparse.records import Estimate, ExecutionPlan

if TYPE_CHECKING:  # pragma: no cover
    from simsparse.archs import ArchModel

ENGINE_NAMES = ("analytic", "cycle")

_IMPLS: dict[tuple[str, str], Callable[[ExecutionPlan, "ArchModel"], Estimate]] = {}


def register(kind: str, engine: str):
    if engine not in ENGINE_NAMES:
        raise ValueError(f"engine must be one of {ENGINE_NAMES}")

    def deco(fn):
        _IMPLS[(kind, engine)] = fn
        return fn

    return deco


def estimate(plan: ExecutionPlan, model: "ArchModel", engine: str) -> Estimate:
    """Run `engine` on `plan` for the arch `model`."""
    if engine not in ENGINE_NAMES:
        raise UnknownNameError(f"unknown engine {engine!r}; known: {', '.join(ENGINE_NAMES)}")
    key = (plan.kind, engine)
    if key not in _IMPLS:
        have = sorted(e for (k, e) in _IMPLS if k == plan.kind)
        raise UnknownNameError(f"engine {engine!r} is not available for arch kind {plan.kind!r}; "
                               f"available: {', '.join(have) or '(none)'}")
    return _IMPLS[key](plan, model)
