"""The registry of model builders (each model module registers its builders here)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from simsparse.registry import Registry

MODELS: Registry[Callable[..., nn.Module]] = Registry("model")
