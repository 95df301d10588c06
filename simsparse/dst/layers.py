"""Which sparsifiable layers stay dense in a run, and why (the reasons go into the checkpoint meta).

1. Recipe `first_layer: dense`: the first sparsifiable weight in model order (the stem) is never
   masked, as in Google's RigL (`prune_first_layer` False on CIFAR, `first_layer_sparsity` 0 on
   ImageNet).
2. Recipe `last_layer: dense`: the last one (the classifier) is never masked, as in SR-STE's
   ResNet, whose `fc` is a plain nn.Linear, and in PGF, which sparsifies only transformer blocks.
3. N:M methods: every layer that the N:M hardware (`extra.nm_hardware`, see
   simsparse/masks/eligibility.py) cannot run at the target N:M (`NMMethod.ineligible_layers`).

A dense layer keeps an all-ones mask and no method updates it. It is left out of the density
budget: ERK or uniform shares out the target density over the sparse layers only, as Google's RigL
does when it leaves the first layer out of its masks.
"""

from __future__ import annotations

from typing import Mapping

from torch import nn

from simsparse.dst.flops import weight_modules

LayerGeometry = Mapping[str, tuple[tuple[int, ...], int]]   # fqn -> (weight shape, conv groups)


def layer_geometry(model: nn.Module) -> dict[str, tuple[tuple[int, ...], int]]:
    """(weight shape, groups) of every sparsifiable weight, in model order."""
    params = dict(model.named_parameters())
    return {fqn: (tuple(params[fqn].shape), int(getattr(mod, "groups", 1)))
            for fqn, (mod, _kind) in weight_modules(model).items() if fqn in params}


def role_dense_layers(fqns: list[str], *, first_layer: str, last_layer: str) -> dict[str, str]:
    """{fqn: reason} for the stem and the classifier when the recipe keeps them dense."""
    out: dict[str, str] = {}
    if fqns and first_layer == "dense":
        out[fqns[0]] = "first layer kept dense (recipe first_layer: dense)"
    if fqns and last_layer == "dense":
        out.setdefault(fqns[-1], "last layer kept dense (recipe last_layer: dense)")
    return out
