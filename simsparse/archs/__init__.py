"""Architecture kinds and instances.

A *kind* (`kind:` in the YAML) is one module here with one `ArchModel` subclass registered
by name; an *instance* is a YAML file in `accelerators/` (found by name or path). Kind
modules are imported on demand, so each stays independent.

Contract of a kind module:
    @ARCH_KINDS.register("my_kind")
    class MyModel(ArchModel):
        kind = "my_kind"
        @staticmethod
        def parse_spec(data: dict, *, source: str) -> MySpec: validate (specs.validate) and build a
            frozen spec record with a `name` field (`from_data` wraps it into the model)
        def plan(self, work: LayerWork, *, dense: bool = False) -> ExecutionPlan
            `dense=True` plans the dense baseline of the same layer on the same hardware.
    and its engines register in `simsparse.engines` under (kind, "analytic") / (kind, "cycle").
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from simsparse.errors import SpecError, UnknownNameError
from simsparse.records import ExecutionPlan, LayerWork
from simsparse.registry import Registry
from simsparse.resources import data_dir
from simsparse.specs import Override, apply_overrides, check_version, load_yaml

ARCH_KINDS: Registry[type["ArchModel"]] = Registry("arch kind")

# kind name -> module that registers it (imported on first use)
KIND_MODULES = {
    "gpu_sparse_tensor_core": "simsparse.archs.gpu",
    "nm_systolic": "simsparse.archs.nm_systolic",
    "cpu_simd": "simsparse.archs.cpu_simd",
}

# arch names that are not YAML files but built at run time (e.g. "cpu_host" detected from
# this machine): name -> function returning the spec data (a dict, as if read from YAML)
DYNAMIC_ARCHS: Registry[Callable[[], dict]] = Registry("dynamic arch")
DYNAMIC_MODULES = {"cpu_host": "simsparse.archs.cpu_simd"}


class ArchModel(ABC):
    """One architecture instance: a validated spec record plus the planning logic of its kind."""

    kind: ClassVar[str] = ""

    def __init__(self, *, name: str, spec: Any, source: str = "") -> None:
        self.name = name
        self.spec = spec
        self.source = source

    @staticmethod
    @abstractmethod
    def parse_spec(data: dict, *, source: str) -> Any:
        """Validate plain YAML data into the kind's frozen spec record (SpecError naming file/field/value)."""

    @classmethod
    def from_data(cls, data: dict, *, source: str) -> "ArchModel":
        """Build the model from plain YAML data, validated by the kind's `parse_spec`."""
        spec = cls.parse_spec(data, source=source)
        return cls(name=spec.name, spec=spec, source=source)

    @abstractmethod
    def plan(self, work: LayerWork, *, dense: bool = False) -> ExecutionPlan:
        """What the hardware does for this layer (dense=True: the dense baseline)."""

    def default_dtype(self) -> str:
        return "fp16"

    def supported_dtypes(self) -> tuple[str, ...]:
        return ("fp16",)


def kind_class(kind: str) -> type[ArchModel]:
    if kind not in ARCH_KINDS and kind in KIND_MODULES:
        importlib.import_module(KIND_MODULES[kind])
    return ARCH_KINDS.get(kind)


def shipped_arch_names() -> list[str]:
    names = sorted(p.stem for p in data_dir("accelerators").glob("*.yaml"))
    return sorted(set(names) | set(DYNAMIC_MODULES))


def arch_data(name_or_path: str) -> tuple[dict, str]:
    """Raw spec data and its source (a path, or `<dynamic NAME>`)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not p.is_file():
            raise SpecError(f"{name_or_path}: arch spec file not found; give an existing path or a "
                            f"built-in name ({', '.join(shipped_arch_names())})")
        return load_yaml(p), str(p)
    shipped = data_dir("accelerators") / f"{name_or_path}.yaml"
    if shipped.is_file():
        return load_yaml(shipped), str(shipped)
    if name_or_path in DYNAMIC_MODULES:
        importlib.import_module(DYNAMIC_MODULES[name_or_path])
        return DYNAMIC_ARCHS.get(name_or_path)(), f"<detected {name_or_path}>"
    raise UnknownNameError(f"unknown arch {name_or_path!r}; known: {', '.join(shipped_arch_names())} "
                           "(or a path to a YAML spec)")


def load_arch(name_or_path: str, overrides: Sequence[Override | str] = ()) -> ArchModel:
    """Find, override (`--set`), validate and build an architecture model."""
    data, source = arch_data(name_or_path)
    check_version(data, source=source)
    if overrides:
        data = apply_overrides(data, list(overrides), source=source)
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise SpecError(f"{source}: field kind = {kind!r} is invalid; allowed: "
                        + ", ".join(sorted(KIND_MODULES)))
    try:
        cls = kind_class(kind)
    except UnknownNameError:
        raise SpecError(f"{source}: field kind = {kind!r} is invalid; allowed: "
                        + ", ".join(sorted(set(KIND_MODULES) | set(ARCH_KINDS.names())))) from None
    return cls.from_data(data, source=source)
