"""DST recipes: `workloads/recipes/<method>.yaml` (or a path), validated with simsparse.specs.

A recipe holds a method's defaults from its paper (sources in the YAML comments) and how they
scale to short runs: `update_interval` is the paper's ΔT; `min_updates` shrinks it on short runs
so that at least that many mask updates happen before T_end (schedule.effective_interval).
`extra` is passed to the method as MethodConfig.extra (method-specific options). `first_layer` and
`last_layer` (sparse | dense) say whether the stem and the classifier are masked at all; each
shipped recipe sets them as its reference code does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from simsparse.errors import SpecError
from simsparse.resources import shipped_names, shipped_yaml
from simsparse.overrides import apply_overrides
from simsparse.specs import Field, MapOf, check_version, load_yaml, validate

_SCALAR = Field((int, float, str, bool))
RECIPE_SCHEMA = {
    "version": Field(int),
    "method": Field(str),
    "source": Field(str, required=False, default=""),
    "distribution": Field(str, required=False, default="erk", choices=("uniform", "erk")),
    "update_interval": Field(int, required=False, default=100, min=1),
    "min_updates": Field(int, required=False, default=20, min=0),
    "alpha": Field(float, required=False, default=0.3, min=0.0, max=1.0),
    "t_end_fraction": Field(float, required=False, default=0.75, min=0.0, max=1.0),
    "batch_size": Field(int, required=False, default=128, min=1),
    "first_layer": Field(str, required=False, default="sparse", choices=("sparse", "dense")),
    "last_layer": Field(str, required=False, default="sparse", choices=("sparse", "dense")),
    "optimizer": {
        "name": Field(str, choices=("sgd", "adam", "adamw")),
        "lr": Field(float, min=0.0),
        "momentum": Field(float, required=False, default=0.9, min=0.0, max=1.0),
        "nesterov": Field(bool, required=False, default=False),
        "weight_decay": Field(float, required=False, default=0.0, min=0.0),
    },
    "lr_schedule": {
        "kind": Field(str, choices=("cosine", "constant", "step")),
        "warmup_fraction": Field(float, required=False, default=0.0, min=0.0, max=0.5),
    },
    "extra": MapOf(_SCALAR, required=False, default={}),
}


@dataclass(frozen=True)
class Recipe:
    """A validated recipe (plain values; `extra` goes to the method)."""

    method: str
    source: str
    distribution: str
    update_interval: int
    min_updates: int
    alpha: float
    t_end_fraction: float
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    lr_schedule: str
    warmup_fraction: float
    first_layer: str = "sparse"     # dense: the first sparsifiable layer (the stem) is never masked
    last_layer: str = "sparse"      # dense: the last one (the classifier) is never masked
    extra: Mapping[str, Any] = field(default_factory=dict)
    path: str = ""


def recipe_path(method: str) -> Path:
    """The shipped recipe of `method`."""
    path = shipped_yaml("workloads/recipes", method)
    if path is None:
        raise SpecError(f"no shipped recipe for method {method!r}; known: {', '.join(shipped_names('workloads/recipes'))}"
                        "; pass --recipe FILE")
    return path


def load_recipe(*, method: str, path: str | Path | None = None, overrides: tuple[str, ...] = ()) -> Recipe:
    """The recipe at `path` (default: the shipped one for `method`), with --set overrides applied."""
    p = Path(path) if path is not None else recipe_path(method)
    data = load_yaml(p)
    check_version(data, source=str(p))
    data = apply_overrides(data, list(overrides), source=str(p)) if overrides else data
    v = validate(data, RECIPE_SCHEMA, source=str(p))
    if v["method"] != method:
        raise SpecError(f"{p}: field method = {v['method']!r} does not match --method {method}; use that method's recipe")
    opt, sched = v["optimizer"], v["lr_schedule"]
    return Recipe(method=v["method"], source=v["source"], distribution=v["distribution"],
                  update_interval=v["update_interval"], min_updates=v["min_updates"], alpha=v["alpha"],
                  t_end_fraction=v["t_end_fraction"], batch_size=v["batch_size"], optimizer=opt["name"],
                  lr=opt["lr"], momentum=opt["momentum"], nesterov=opt["nesterov"],
                  weight_decay=opt["weight_decay"], lr_schedule=sched["kind"],
                  warmup_fraction=sched["warmup_fraction"], first_layer=v["first_layer"],
                  last_layer=v["last_layer"], extra=dict(v["extra"] or {}), path=str(p))
