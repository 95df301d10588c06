"""Every shipped DST method, registered in `base.METHODS` by importing its module here.

Import this module (not the method modules one by one) wherever a method is looked up by name.
"""

from __future__ import annotations

from simsparse.dst import chase, dense, nm, rigl, srigl  # noqa: F401  (each registers its methods)
from simsparse.dst.base import METHODS, Method
from simsparse.dst.nm import NMMethod

NM_METHODS: tuple[str, ...] = tuple(name for name in METHODS.names() if issubclass(METHODS.get(name), NMMethod))


def method_names() -> list[str]:
    """The registered method names."""
    return METHODS.names()


def method_class(name: str) -> type[Method]:
    """The method class registered as `name` (UnknownNameError listing the known names)."""
    return METHODS.get(name)
