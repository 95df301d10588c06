"""Architecture kinds and instances.

A *kind* (`kind:` in the YAML) is one module of this package holding one `ArchModel` subclass
registered by name; an *instance* is a YAML file in `accelerators/` (found by name or path).

Contract of a kind module (see README "How to add a hardware kind"):

    @dataclass(frozen=True)
    class MyPlan: ...                       # the kind's typed plan payload, units in the names

    @ARCH_KINDS.register("my_kind")
    class MyModel(ArchModel):
        kind = "my_kind"
        kernels = ()                        # kernels `plan(kernel=...)` can force (the CLI's --kernel)
        unstructured = False                # runs unstructured masks in a sparse format
        engines_agree_rel = 0.01            # analytic vs cycle on the conformance suite's cases
        @staticmethod
        def parse_spec(data: dict, *, source: str) -> MySpec: validate (specs.validate) and build a
            frozen spec record with a `name` field (`from_data` wraps it into the model)
        def plan(self, work, *, dense=False, kernel=None) -> ExecutionPlan[MyPlan]
            what the hardware does, no timing; `dense=True` plans the dense baseline of the same
            layer on the same hardware; decide from `work.pattern`, never by indexing `work.mask`

and its engines live in `simsparse.engines` (one module per engine, registered by (kind, engine)).

Discovery: the first lookup of a kind imports every module of this package (pkgutil); each kind
module registers its class in `ARCH_KINDS` (and run-time instances such as `cpu_host` in
`DYNAMIC_ARCHS`). No table lists the kinds: a new module is found by being here. Nothing in this
package imports `simsparse.engines` (engines sit above archs).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from simsparse.errors import SimSparseError, SpecError, UnknownNameError
from simsparse.records import ExecutionPlan, LayerWork
from simsparse.registry import Registry, import_submodules
from simsparse.resources import data_dir
from simsparse.overrides import Override, apply_overrides
from simsparse.specs import check_version, load_yaml

ARCH_KINDS: Registry[type["ArchModel"]] = Registry("arch kind")

# arch names that are not YAML files but built at run time (e.g. "cpu_host" detected from
# this machine): name -> function returning the spec data (a dict, as if read from YAML)
DYNAMIC_ARCHS: Registry[Callable[[], dict]] = Registry("dynamic arch")


class ArchModel(ABC):
    """One architecture instance: a validated spec record plus the planning logic of its kind.

    Capabilities are class attributes, declared by each kind (the API and the conformance suite
    read them; nothing inspects signatures).
    """

    kind: ClassVar[str] = ""
    kernels: ClassVar[tuple[str, ...]] = ()   # kernels plan(kernel=...) accepts; () = picks its own format
    unstructured: ClassVar[bool] = False      # runs unstructured masks in a sparse format (not only dense)
    engines_agree_rel: ClassVar[float] = 0.05  # |cycle - analytic| / analytic on compute-bound GEMMs

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
    def plan(self, work: LayerWork, *, dense: bool = False, kernel: str | None = None) -> ExecutionPlan:
        """What the hardware does for this layer (dense=True: the dense baseline; kernel: force one
        of `kernels`)."""

    def check_kernel(self, kernel: str | None) -> None:
        """SimSparseError unless `kernel` is None or one this kind can force."""
        if kernel is None:
            return
        if not self.kernels:
            raise SimSparseError(f"--kernel applies to archs that offer several kernels (CPU, GPU); {self.name} is "
                                 f"a {self.kind} and picks its own format")
        if kernel not in self.kernels:
            raise SimSparseError(f"unknown kernel {kernel!r}; known: {', '.join(self.kernels)}")

    def default_dtype(self) -> str:
        return "fp16"

    def supported_dtypes(self) -> tuple[str, ...]:
        return ("fp16",)

    @property
    def software(self) -> str:
        """The software stack this instance is timed under ("" for kinds without named stacks)."""
        return ""

    def software_stacks(self) -> tuple[str, ...]:
        """Names `with_software` accepts (none for kinds without named stacks)."""
        return ()

    def with_software(self, name: str) -> "ArchModel":
        """This arch under the software stack `name` (`--software`); kinds without stacks refuse."""
        raise SimSparseError(f"--software {name}: arch {self.name} ({self.kind}) has no named software stacks; "
                             "--software applies to GPU archs")


def discover() -> None:
    """Import every module of this package once: kind modules register themselves."""
    import_submodules(__name__)


def kind_class(kind: str) -> type[ArchModel]:
    discover()
    return ARCH_KINDS.get(kind)


def kind_names() -> list[str]:
    """Every registered arch kind."""
    discover()
    return ARCH_KINDS.names()


def shipped_arch_names() -> list[str]:
    discover()
    names = sorted(p.stem for p in data_dir("accelerators").glob("*.yaml"))
    return sorted(set(names) | set(DYNAMIC_ARCHS.names()))


def arch_data(name_or_path: str) -> tuple[dict, str]:
    """Raw spec data and its source (a path, or `<detected NAME>`)."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not p.is_file():
            raise SpecError(f"{name_or_path}: arch spec file not found; give an existing path or a "
                            f"built-in name ({', '.join(shipped_arch_names())})")
        return load_yaml(p), str(p)
    shipped = data_dir("accelerators") / f"{name_or_path}.yaml"
    if shipped.is_file():
        return load_yaml(shipped), str(shipped)
    discover()
    if name_or_path in DYNAMIC_ARCHS:
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
    if not isinstance(kind, str) or kind not in kind_names():
        raise SpecError(f"{source}: field kind = {kind!r} is invalid; allowed: {', '.join(kind_names())}")
    return kind_class(kind).from_data(data, source=source)
