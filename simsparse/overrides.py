"""`--set FIELD=VALUE` overrides and sweep-grid entries: parsed once into a typed `Override` (a
dotted path and a value read by this small grammar, not by YAML 1.1, which reads `2:4` as the
sexagesimal 124), and applied to a spec's validated-to-be plain data (`apply_overrides`).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from simsparse.errors import SpecError
from simsparse.parse import FLOAT_TEXT, INT_TEXT

_KEY = re.compile(r"[A-Za-z0-9_\-]+", re.ASCII)
_MAP_SEP = re.compile(r":\s+", re.ASCII)  # KEY: VALUE in a flat mapping; `2:4` has no space and stays text
_VALUE_START = re.compile(r":\s+$", re.ASCII)  # a mapping value (which may be quoted) starts here


@dataclass(frozen=True)
class Override:
    """One `--set FIELD=VALUE` or sweep-grid entry: a dotted path and a typed value, parsed once.

    The value is never re-read as YAML text: `2:4` stays the string "2:4". The spec's schema
    checks it when the overridden spec is validated."""

    path: tuple[str, ...]
    value: Any

    @property
    def field(self) -> str:
        return ".".join(self.path)

    def __str__(self) -> str:
        return f"{self.field}={render_value(self.value)}"


def render_value(value: Any) -> str:
    """Compact text of a typed value (stable: used in sweep point keys and CSV cells)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(render_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{render_value(k)}: {render_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and not _reads_back(value):
        return f"'{value}'" if "'" not in value else f'"{value}"'
    return repr(value) if isinstance(value, float) else str(value)


def _reads_back(text: str) -> bool:
    """`text` written bare parses back to the same string (else it is rendered quoted)."""
    if not text or text != text.strip() or any(c in text for c in ",[]{}'\"") or _MAP_SEP.search(text):
        return False
    return _parse_scalar(text, text=text) == text


def parse_override(text: Any) -> Override:
    """`compute.sms=54` -> Override(("compute", "sms"), 54); `sparsity.patterns=[2:4,1:8]` -> a list of
    strings. Values: true/false, null, plain integers, decimal/scientific floats, quoted strings, flat
    `[a, b]` lists, flat `{k: v, k2: v2}` mappings (a space after each key's colon, so `{2:4: 1}` has the
    key "2:4"); anything else is a string. The spec's schema types the values when it is validated."""
    if isinstance(text, Override):
        return text
    if not isinstance(text, str) or "=" not in text:
        raise SpecError(f"--set {text!r}: expected FIELD=VALUE, e.g. --set compute.sms=54")
    key, raw = text.split("=", 1)
    keys = key.strip().split(".")
    if not key.strip() or not all(_KEY.fullmatch(k) for k in keys):
        raise SpecError(f"--set {text!r}: the field must be a dotted path of names, such as memory.hbm_bytes_per_s")
    return Override(path=tuple(keys), value=_parse_value(raw.strip(), text=text))


def _parse_value(raw: str, *, text: str) -> Any:
    if raw.startswith("[") and raw.endswith("]"):
        return [_parse_scalar(item, text=text) for item in _flat_items(raw, text=text)]
    if raw.startswith("{") and raw.endswith("}"):
        return _parse_mapping(raw, text=text)
    if raw and raw[0] in "[{":
        raise SpecError(f"--set {text!r}: expected a flat list [a, b], a flat mapping {{k: v}} or a single value")
    return _parse_scalar(raw, text=text)


def _flat_items(raw: str, *, text: str) -> list[str]:
    """The comma-separated items of `[...]` or `{...}`; commas and brackets inside a quoted item
    (one opening an item or a mapping value) are its own."""
    inner = raw[1:-1].strip()
    items, buf, quote = [], "", ""
    for ch in inner:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"" and (not buf.strip() or _VALUE_START.search(buf)):
            quote = ch
        elif ch in "[]{}":
            raise SpecError(f"--set {text!r}: nested lists or mappings are not supported; set a flat list or mapping")
        elif ch == ",":
            items.append(buf.strip())
            buf = ""
            continue
        buf += ch
    if quote:
        raise SpecError(f"--set {text!r}: a quoted item is not closed; close it with {quote}")
    return items + [buf.strip()] if inner else []


def _parse_mapping(raw: str, *, text: str) -> dict:
    out: dict = {}
    for item in _flat_items(raw, text=text):
        parts = _MAP_SEP.split(item, maxsplit=1)
        if len(parts) != 2:
            raise SpecError(f"--set {text!r}: mapping entry {item!r} is not KEY: VALUE; put a space after the "
                            "colon, e.g. {4: 2, 8: 3}")
        key, value = _parse_scalar(parts[0].strip(), text=text), _parse_scalar(parts[1].strip(), text=text)
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise SpecError(f"--set {text!r}: mapping key {parts[0].strip()!r} must be a name or an integer")
        if key in out:
            raise SpecError(f"--set {text!r}: mapping key {key!r} is given twice; give each key once")
        out[key] = value
    return out


def _parse_scalar(raw: str, *, text: str) -> Any:
    if not raw:
        raise SpecError(f"--set {text!r}: empty value; give one (quote an empty string: '')")
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    if raw in ("true", "True", "TRUE", "false", "False", "FALSE"):
        return raw.lower() == "true"
    if raw in ("null", "Null", "NULL", "~"):
        return None
    if INT_TEXT.fullmatch(raw):
        return int(raw)
    if FLOAT_TEXT.fullmatch(raw):
        return float(raw)
    return raw


def apply_overrides(data: dict, overrides: Sequence[Override | str], *, source: str) -> dict:
    """A deep copy of `data` with each override applied; the field must exist in `data`."""
    out = copy.deepcopy(data)
    for item in overrides:
        ov = parse_override(item)
        node = out
        for i, k in enumerate(ov.path[:-1]):
            if not isinstance(node, dict) or k not in node:
                raise SpecError(f"--set {ov}: {source} has no field {'.'.join(ov.path[:i + 1])}")
            node = node[k]
        if not isinstance(node, dict) or ov.path[-1] not in node:
            raise SpecError(f"--set {ov}: {source} has no field {ov.field}")
        node[ov.path[-1]] = copy.deepcopy(ov.value)
    return out
