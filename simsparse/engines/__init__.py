"""Engines turn an `ExecutionPlan` into an `Estimate`: `estimate(plan, model, engine)`.

`analytic` is the closed form (the fast default); `cycle` is an event-driven simulation (simpy),
one `simpy.Environment` per simulation. Each arch kind implements each engine in a module of
this package that registers itself by (kind, engine) and reads only the kind's typed payload:

    # simsparse/engines/my_kind_analytic.py
    @register("my_kind", "analytic")
    def my_kind_analytic(plan: ExecutionPlan[MyPlan], model: MyModel) -> Estimate:
        ...                                    # timing from plan.payload and model.spec
        return estimate_from_plan(plan, engine="analytic", latency_s=..., cycles=..., bound=...)

Discovery: the first lookup imports every module of this package (pkgutil), so a new engine
module needs no table anywhere. `estimate_from_plan` (engines.common) is the one Estimate builder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from simsparse.errors import UnknownNameError
from simsparse.records import Estimate, ExecutionPlan
from simsparse.registry import Registry, import_submodules

if TYPE_CHECKING:  # pragma: no cover - for annotations only (engines sit above archs)
    from simsparse.archs import ArchModel

ENGINE_NAMES = ("analytic", "cycle")

EngineFn = Callable[[ExecutionPlan, "ArchModel"], Estimate]
ENGINES: Registry[EngineFn] = Registry("engine")   # keys "kind/engine"


def register(kind: str, engine: str):
    """Decorator: `fn(plan, model) -> Estimate` is engine `engine` of arch kind `kind`."""
    if engine not in ENGINE_NAMES:
        raise ValueError(f"engine must be one of {ENGINE_NAMES}")

    def deco(fn: EngineFn) -> EngineFn:
        ENGINES.register(f"{kind}/{engine}", fn)
        return fn

    return deco


def discover() -> None:
    """Import every engine module of this package once (each registers its engines)."""
    import_submodules(__name__)


def engines_of(kind: str) -> tuple[str, ...]:
    """The engines registered for arch kind `kind`."""
    discover()
    return tuple(e for e in ENGINE_NAMES if f"{kind}/{e}" in ENGINES)


def estimate(plan: ExecutionPlan, model: "ArchModel", engine: str) -> Estimate:
    """Run `engine` on `plan` for the arch `model` (the plan of a layer on that model)."""
    if engine not in ENGINE_NAMES:
        raise UnknownNameError(f"unknown engine {engine!r}; known: {', '.join(ENGINE_NAMES)}")
    discover()
    key = f"{plan.kind}/{engine}"
    if key not in ENGINES:
        raise UnknownNameError(f"engine {engine!r} is not available for arch kind {plan.kind!r}; "
                               f"available: {', '.join(engines_of(plan.kind)) or '(none)'}")
    return ENGINES.get(key)(plan, model)
