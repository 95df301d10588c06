"""YAML specs -> validated plain data, with errors naming file, field, value and the allowed range.

Loading rules: safe YAML only (no custom tags, no templating), duplicate keys rejected, a
`version:` field required. A schema is nested dicts of `Field`, `ListOf` and `MapOf`; the
kind-specific modules turn the validated data into frozen spec records, so raw dicts never
travel inward.
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from simsparse.errors import SimSparseError, SpecError
from simsparse.fileio import read_bounded
from simsparse.parse import parse_float

SPEC_VERSION = 1
MAX_YAML_BYTES = 4 * 2**20     # the largest shipped spec is ~50 kB
MAX_DEPTH = 48                 # nesting levels of mappings/lists
MAX_NODES = 200_000            # nodes once aliases are expanded (each use of an alias counts again)

# --------------------------------------------------------------------------- the one safe loader


class _CoreResolver(BaseResolver):
    """YAML 1.2 core scalars: `2:4` stays a string (YAML 1.1 reads it as sexagesimal 124), `1_0` and
    `yes`/`on` are strings, `1e9` is a float; no timestamps, no merge keys."""


_CoreResolver.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                    list("tTfF"))
_CoreResolver.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
_CoreResolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))
_CoreResolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


class _Constructor(SafeConstructor):
    """Plain ints/floats for the core scalars above (SafeConstructor's own would accept `1_0`)."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        return int(self.construct_scalar(node))

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        text = self.construct_scalar(node).lower()
        return {".inf": math.inf, "+.inf": math.inf, "-.inf": -math.inf, ".nan": math.nan}.get(text) or float(text)


_Constructor.add_constructor("tag:yaml.org,2002:int", _Constructor.construct_yaml_int)
_Constructor.add_constructor("tag:yaml.org,2002:float", _Constructor.construct_yaml_float)


class _SpecLoader(Reader, Scanner, Parser, Composer, _Constructor, _CoreResolver):
    """Safe, YAML-1.2-core, duplicate keys refused, nesting and alias expansion bounded."""

    def __init__(self, text: str, name: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        _Constructor.__init__(self)
        _CoreResolver.__init__(self)
        self.name = name
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise SpecError(f"{self.name}: nesting deeper than {MAX_DEPTH} levels at line {mark.line + 1}; "
                                "a spec is a few levels of plain mappings and lists")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _construct_mapping(loader: _SpecLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            raise SpecError(f"{loader.name}: a mapping key at line {key_node.start_mark.line + 1} is not a "
                            "plain value; keys are names") from None
        if duplicate:
            line = key_node.start_mark.line + 1
            raise SpecError(f"{loader.name}: duplicate key {key!r} at line {line}; keep one of them")
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


_Constructor.add_constructor(BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _check_expansion(root: yaml.Node, name: str) -> None:
    """Count nodes as they would be once aliases are expanded; refuse recursion and alias bombs."""
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_NODES:
                raise SpecError(f"{name}: aliases expand to more than {MAX_NODES} values (an alias bomb?); "
                                "write the data out without nested aliases")
            continue
        if key in sizes:
            continue
        if key in active:
            raise SpecError(f"{name}: an alias at line {node.start_mark.line + 1} refers to itself; "
                            "recursive data is not a spec")
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


def decode_text(raw: bytes, *, name: str) -> str:
    """UTF-8 text of a spec file (a BOM is allowed); SpecError naming the offending byte otherwise."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(f"{name}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}); "
                        "save the file as UTF-8") from None
    bad = _NON_PRINTABLE.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise SpecError(f"{name}: control character U+{ord(bad.group()):04X} at line {line}; "
                        "a spec is plain text (remove it)")
    return text


def load_yaml(path: str | Path) -> dict:
    """Read one YAML mapping from `path`; SpecError on any problem."""
    p = Path(path)
    raw = read_bounded(p, max_bytes=MAX_YAML_BYTES, what="spec", error=SpecError)
    return parse_yaml(decode_text(raw, name=str(p)), name=str(p))


def parse_yaml(text: str, *, name: str) -> dict:
    """One YAML mapping from `text` with the safe loader (module doc); SpecError on any problem."""
    if len(text) > MAX_YAML_BYTES:
        raise SpecError(f"{name}: larger than {MAX_YAML_BYTES // 2**20} MiB; a spec is a small YAML file")
    text = decode_text(text.encode("utf-8", "surrogatepass"), name=name) if _NON_PRINTABLE.search(text) else text
    loader = _SpecLoader(text, name)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError(f"{name}: the file is empty; a spec is a YAML mapping")
        _check_expansion(node, name)
        data = loader.construct_document(node)
    except SimSparseError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{name}: invalid YAML{where}: {problem}; fix the syntax (plain YAML, no tags)") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise SpecError(f"{name}: a spec must be a YAML mapping, got {type(data).__name__}")
    return data


# --------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Field:
    """One leaf: its type, allowed range/choices, and whether it may be left out."""

    type: type | tuple[type, ...]
    required: bool = True
    default: Any = None
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    doc: str = ""


@dataclass(frozen=True)
class ListOf:
    item: Any
    required: bool = True
    min_len: int = 0
    default: Any = None


@dataclass(frozen=True)
class MapOf:
    """A mapping with free keys (optionally restricted) and one schema for every value."""

    value: Any
    keys: tuple | None = None
    required: bool = True
    default: Any = None


@dataclass(frozen=True)
class Optional:
    """A nested section that may be absent (validated when present)."""

    schema: Any
    default: Any = field(default=None)


def _where(path: list[str]) -> str:
    return ".".join(path) if path else "(top level)"


def short_repr(value: Any) -> str:
    """repr() bounded in size and depth (values from files may be huge or deeply shared)."""
    return _REPR.repr(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 3, 60, 60, 8, 6


def _fail(source: str, path: list[str], value: Any, allowed: str) -> SpecError:
    return SpecError(f"{source}: field {_where(path)} = {short_repr(value)} is invalid; allowed: {allowed}")


def _type_name(t: type | tuple) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return t.__name__


def _check_leaf(f: Field, value: Any, source: str, path: list[str]) -> Any:
    types = f.type if isinstance(f.type, tuple) else (f.type,)
    if float in types and int not in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, str) and float in types and str not in types and int not in types:
        try:  # a number written as text ("1.41e9"), read by the one strict parser
            value = parse_float(value)
        except SimSparseError:
            pass
    if isinstance(value, bool) and bool not in types:
        raise _fail(source, path, value, _type_name(f.type))
    if not isinstance(value, types):
        raise _fail(source, path, value, _type_name(f.type))
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(source, path, value, "a finite number")
    if f.choices is not None and value not in f.choices:
        raise _fail(source, path, value, "one of " + ", ".join(map(str, f.choices)))
    if f.min is not None and value < f.min:
        raise _fail(source, path, value, f">= {f.min}" + (f" and <= {f.max}" if f.max is not None else ""))
    if f.max is not None and value > f.max:
        raise _fail(source, path, value, f"<= {f.max}" + (f" and >= {f.min}" if f.min is not None else ""))
    return value


def validate(data: Any, schema: Any, *, source: str, path: list[str] | None = None) -> Any:
    """Check `data` against `schema`; return the validated copy with defaults filled in."""
    path = path or []
    if isinstance(schema, Optional):
        return validate(data, schema.schema, source=source, path=path)
    if isinstance(schema, Field):
        return _check_leaf(schema, data, source, path)
    if isinstance(schema, ListOf):
        if not isinstance(data, list):
            raise _fail(source, path, data, "a list")
        if len(data) < schema.min_len:
            raise _fail(source, path, data, f"a list of at least {schema.min_len} items")
        return [validate(v, schema.item, source=source, path=path + [str(i)]) for i, v in enumerate(data)]
    if isinstance(schema, MapOf):
        if not isinstance(data, dict):
            raise _fail(source, path, data, "a mapping")
        out = {}
        for k, v in data.items():
            if schema.keys is not None and k not in schema.keys:
                raise SpecError(f"{source}: unknown key {_where(path + [str(k)])}; allowed keys: "
                                + ", ".join(map(str, schema.keys)))
            out[k] = validate(v, schema.value, source=source, path=path + [str(k)])
        return out
    if isinstance(schema, Mapping):
        if not isinstance(data, dict):
            raise _fail(source, path, data, "a mapping")
        unknown = sorted(set(map(str, data)) - set(schema))
        if unknown:
            raise SpecError(f"{source}: unknown field {_where(path + [unknown[0]])}; known fields here: "
                            + ", ".join(sorted(schema)))
        out = {}
        for key, sub in schema.items():
            if key in data:
                out[key] = validate(data[key], sub, source=source, path=path + [key])
            else:
                required = getattr(sub, "required", True) if not isinstance(sub, Mapping) else True
                if isinstance(sub, Optional):
                    out[key] = sub.default
                elif required:
                    raise SpecError(f"{source}: missing field {_where(path + [key])}; add it to the spec")
                else:
                    out[key] = getattr(sub, "default", None)
        return out
    raise TypeError(f"bad schema node {schema!r}")


def check_version(data: dict, *, source: str) -> None:
    v = data.get("version")
    if v != SPEC_VERSION:
        raise SpecError(f"{source}: field version = {v!r} is invalid; allowed: {SPEC_VERSION}")
