"""Registries by name: a lookup that fails lists the known names."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar

from simsparse.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table whose failed lookups say what is known."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T | None = None):
        """`reg.register("x", obj)` or as a decorator `@reg.register("x")`."""
        if item is not None:
            self._add(name, item)
            return item

        def deco(obj: T) -> T:
            self._add(name, obj)
            return obj

        return deco

    def _add(self, name: str, item: T) -> None:
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.what} {name!r} registered twice")
        self._items[name] = item

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownNameError(f"unknown {self.what} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def items(self) -> list[tuple[str, T]]:
        return sorted(self._items.items())


Factory = Callable[..., T]


@functools.lru_cache(maxsize=None)
def import_submodules(package: str) -> tuple[str, ...]:
    """Import every module of `package` once (plugin discovery: each module registers itself in
    its registry on import); returns their names. No table of modules is kept anywhere."""
    pkg = importlib.import_module(package)
    names = tuple(f"{package}.{info.name}" for info in pkgutil.iter_modules(pkg.__path__))
    for name in names:
        importlib.import_module(name)
    return names
