"""YAML specs -> validated plain data, with errors naming file, field, value and the allowed range.

Loading rules: safe YAML only (no custom tags, no templating), duplicate keys rejected, a
`version:` field required. A schema is nested dicts of `Field`, `ListOf` and `MapOf`; the
kind-specific modules turn the validated data into frozen spec records, so raw dicts never
travel inward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from simsparse.errors import SpecError

SPEC_VERSION = 1


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            line = key_node.start_mark.line + 1
            raise SpecError(f"{loader.name}: duplicate key {key!r} at line {line}; keep one of them")
        seen[key] = loader.construct_object(value_node, deep=deep)
    return seen


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: str | Path) -> dict:
    """Read one YAML mapping from `path`; SpecError on any problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{p}: cannot read spec ({exc.strerror or exc}); check the path") from None
    return parse_yaml(text, name=str(p))


def parse_yaml(text: str, *, name: str) -> dict:
    loader = _UniqueKeyLoader(text)
    loader.name = name
    try:
        data = loader.get_single_data()
    except SpecError:
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


def _fail(source: str, path: list[str], value: Any, allowed: str) -> SpecError:
    return SpecError(f"{source}: field {_where(path)} = {value!r} is invalid; allowed: {allowed}")


def _type_name(t: type | tuple) -> str:
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return t.__name__


def _check_leaf(f: Field, value: Any, source: str, path: list[str]) -> Any:
    types = f.type if isinstance(f.type, tuple) else (f.type,)
    if float in types and int not in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, str) and float in types and str not in types and int not in types:
        try:  # YAML 1.1 reads 1.41e9 as a string; accept it as a number
            value = float(value)
        except ValueError:
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


# --------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """`compute.sms=54` -> (["compute", "sms"], 54); the value is read as YAML."""
    if "=" not in text:
        raise SpecError(f"--set {text!r}: expected FIELD=VALUE, e.g. --set compute.sms=54")
    key, raw = text.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise SpecError(f"--set {text!r}: empty field name; use a dotted path such as memory.hbm_bytes_per_s")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return keys, value


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...], *, source: str) -> dict:
    """Return a deep copy of `data` with each `--set FIELD=VALUE` applied (the field must exist)."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = out
        for i, k in enumerate(keys[:-1]):
            if not isinstance(node, dict) or k not in node:
                raise SpecError(f"--set {text}: {source} has no field {'.'.join(keys[:i + 1])}")
            node = node[k]
        if not isinstance(node, dict) or keys[-1] not in node:
            raise SpecError(f"--set {text}: {source} has no field {'.'.join(keys)}")
        node[keys[-1]] = value
    return out
