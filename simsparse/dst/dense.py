"""`dense`: the baseline; every mask is all ones and nothing is ever updated."""

from __future__ import annotations

import torch

from simsparse.dst.base import METHODS, Method


@METHODS.register("dense")
class Dense(Method):
    name = "dense"

    def init_masks(self, params, densities, generator):
        return {f: torch.ones_like(p, dtype=torch.bool) for f, p in params.items()}
