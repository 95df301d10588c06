"""Workload <-> plain data (dicts of str/int/tuples), for checkpoints and YAML catalogs, and the one
schema of an op: workload YAML (graph/catalog) and checkpoint geometry (masks/native) are both
validated by `OP_SCHEMA` + `check_op`, so a checkpoint cannot carry negative shapes, `tokens: -3`
or unknown op kinds that a workload file could not.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from simsparse.errors import GeometryError, SimSparseError, SpecError
from simsparse.records import Op, Workload
from simsparse.specs import Field, ListOf, short_repr, validate

OP_KINDS = ("conv", "linear", "matmul", "softmax", "norm", "elementwise", "pool", "embedding")
_INT_LIST = ListOf(Field(int, min=0), required=False)
OP_SCHEMA = {
    "name": Field(str), "kind": Field(str, choices=OP_KINDS),
    "input_shape": _INT_LIST, "output_shape": _INT_LIST, "weight_shape": _INT_LIST,
    "stride": _INT_LIST, "padding": _INT_LIST, "dilation": _INT_LIST,
    "groups": Field(int, required=False, min=1), "gemm_mnk": _INT_LIST,
    "count": Field(int, required=False, min=1), "tokens": Field(int, required=False, min=1),
    "elements_in": Field(int, required=False, min=0), "elements_out": Field(int, required=False, min=0),
    "sparsifiable": Field(bool, required=False), "inputs": ListOf(Field(str), required=False),
}
# language-model workloads: the pass's phase, tokens per sample and decode context (records.Workload)
PHASE_SCHEMA = {"phase": Field(str, required=False, default="", choices=("prefill", "decode")),
                "tokens": Field(int, required=False, default=0, min=0),
                "context": Field(int, required=False, default=0, min=0)}
GEOMETRY_SCHEMA = {"name": Field(str), "input_shape": ListOf(Field(int, min=1), required=False, default=[]),
                   "source": Field(str, required=False, default=""), "ops": ListOf(OP_SCHEMA, min_len=1),
                   **PHASE_SCHEMA}
_OP_FIELDS = {f.name for f in fields(Op)}
_TUPLE_FIELDS = {"input_shape", "output_shape", "weight_shape", "stride", "padding", "dilation", "gemm_mnk"}


def check_op(op: dict, *, source: str, index: int) -> None:
    """Cross-field rules of one validated op (shapes that fit its kind)."""
    where = f"ops.{index}"

    def bad(fieldname: str, allowed: str) -> SpecError:
        return SpecError(f"{source}: field {where}.{fieldname} = {short_repr(op.get(fieldname))} is invalid; "
                         f"allowed: {allowed}")

    kind, w = op["kind"], op.get("weight_shape")
    if kind == "conv":
        if not w or len(w) < 3 or min(w) < 1:
            raise bad("weight_shape", "[Cout, Cin/groups, k...] with positive sizes for a conv")
        if not op.get("input_shape") or len(op["input_shape"]) != len(w) - 1:
            raise bad("input_shape", f"[Cin, spatial...] with {len(w) - 2} spatial dims for this conv")
        cin, groups = op["input_shape"][0], op.get("groups") or 1
        if cin != w[1] * groups or w[0] % groups:
            raise bad("weight_shape", f"Cin = weight_shape[1]*groups = {cin} and Cout divisible by groups {groups}")
    elif kind == "linear":
        if not w or len(w) != 2 or min(w) < 1:
            raise bad("weight_shape", "[out_features, in_features] for a linear op")
    elif kind == "matmul":
        if not op.get("gemm_mnk") or len(op["gemm_mnk"]) != 3 or min(op["gemm_mnk"]) < 1:
            raise bad("gemm_mnk", "[m, n, k] with positive sizes for a matmul")


def op_to_dict(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Op):
        v = getattr(op, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else v
    return out


def op_from_dict(d: dict[str, Any], *, source: str = "geometry") -> Op:
    """An Op from plain data already validated against OP_SCHEMA (None values left out)."""
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


def workload_from_dict(d: Any, *, source: str = "geometry") -> Workload:
    """A Workload from plain data (a checkpoint's geometry), validated like a workload YAML file."""
    if not isinstance(d, dict):
        raise GeometryError(f"{source}: geometry is a {type(d).__name__}, not a table; regenerate it with simsparse")
    data = {k: v for k, v in d.items() if v is not None}
    if isinstance(data.get("ops"), list):
        data["ops"] = [{k: v for k, v in op.items() if v is not None} if isinstance(op, dict) else op
                       for op in data["ops"]]
    try:
        spec = validate(data, GEOMETRY_SCHEMA, source=source)
        names: set[str] = set()
        for i, op in enumerate(spec["ops"]):
            check_op(op, source=source, index=i)
            if op["name"] in names:
                raise SpecError(f"{source}: field ops.{i}.name = {short_repr(op['name'])} is used twice; "
                                "op names are unique")
            names.add(op["name"])
    except SimSparseError as exc:
        raise GeometryError(str(exc)) from None
    ops = tuple(op_from_dict({k: v for k, v in op.items() if v is not None}, source=source) for op in spec["ops"])
    return Workload(name=spec["name"], input_shape=tuple(spec["input_shape"]), ops=ops,
                    source=spec["source"] or source, phase=spec["phase"], tokens=spec["tokens"],
                    context=spec["context"])
