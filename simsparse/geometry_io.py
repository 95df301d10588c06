"""Workload <-> plain data (dicts of str/int/tuples), for checkpoints and YAML catalogs."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from simsparse.errors import GeometryError
from simsparse.records import Op, Workload

_OP_FIELDS = {f.name for f in fields(Op)}
_TUPLE_FIELDS = {"input_shape", "output_shape", "weight_shape", "stride", "padding", "dilation", "gemm_mnk"}


def op_to_dict(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Op):
        v = getattr(op, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def op_from_dict(d: dict[str, Any], *, source: str = "geometry") -> Op:
    unknown = set(d) - _OP_FIELDS
    if unknown:
        raise GeometryError(f"{source}: unknown op field {sorted(unknown)[0]!r}; known: {', '.join(sorted(_OP_FIELDS))}")
    if "name" not in d or "kind" not in d:
        raise GeometryError(f"{source}: every op needs 'name' and 'kind'")
    kw = {}
    for k, v in d.items():
        if k in _TUPLE_FIELDS and v is not None:
            kw[k] = tuple(int(x) for x in v)
        elif k == "inputs" and v is not None:
            kw[k] = tuple(str(x) for x in v)
        else:
            kw[k] = v
    return Op(**kw)


def workload_to_dict(w: Workload) -> dict[str, Any]:
    out = {"name": w.name, "input_shape": list(w.input_shape), "source": w.source,
           "ops": [op_to_dict(o) for o in w.ops]}
    if w.phase:
        out.update(phase=w.phase, tokens=w.tokens, context=w.context)
    return out


def workload_from_dict(d: dict[str, Any], *, source: str = "geometry") -> Workload:
    try:
        return Workload(name=str(d["name"]), input_shape=tuple(int(x) for x in d.get("input_shape", ())),
                        ops=tuple(op_from_dict(o, source=source) for o in d["ops"]), source=str(d.get("source", source)),
                        phase=str(d.get("phase", "")), tokens=int(d.get("tokens", 0)), context=int(d.get("context", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise GeometryError(f"{source}: malformed geometry ({exc}); regenerate it with simsparse") from None
