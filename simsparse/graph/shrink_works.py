"""The layers of a shrunk network (`graph.shrink`), as the arch models run them.

`shrink_network(works, workload, policy=, strict=)` reads what each layer's Pattern removes,
plans the shrink and returns the shrunk LayerWorks: every changed op re-lowered from its shrunk
geometry (GEMMs, norms, activations, pools, adds, attention matmuls), each layer's mask restricted
to its kept rows and columns, so sparsity left inside the kept channels is still used (a shrunk
layer whose mask is also 2:4 runs 2:4). A restricted mask that keeps every weight makes the layer
dense (no mask). Every changed or annotated layer carries `LayerWork.shrink`: its original layer
(mask dropped: the report's dense baseline is the original network), the shapes before and after,
and notes (which groups removed channels, which kept channels and why).

`label(estimate, work, baseline)` is how a report shows it: format "shrunk" (a dense shrunk layer)
or "shrunk+FMT" (e.g. shrunk+2:4), FLOPs dense and density relative to the original layer, the
notes first. `standalone(work)` shrinks a lone GEMM (`evaluate --gemm`) by its own all-zero rows
and input channels, as a one-layer network whose consumers drop the removed outputs.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from simsparse.errors import GeometryError
from simsparse.graph.lower import dense_macs_per_sample, gemm_work, masked_work, op_gemm, plain_work
from simsparse.graph.shrink import NetworkShrink, OpShrink, Removal, plan, removal_of_pattern
from simsparse.masks.patterns import from_gemm_rows
from simsparse.masks.synthetic import make_mask
from simsparse.records import Estimate, LayerShrink, LayerWork, Op, Workload


def removals_of_works(works: Sequence[LayerWork]) -> dict[str, Removal]:
    """{layer: what its Pattern removes} for every masked GEMM layer."""
    return {w.name: removal_of_pattern(w.pattern) for w in works if w.kind == "gemm" and w.pattern is not None
            and (w.pattern.rows_removed or w.pattern.cols_removed)}


def shrink_network(works: Sequence[LayerWork], workload: Workload, *, batch: int, dtype: str, policy: str,
                   strict: bool = False) -> tuple[list[LayerWork], NetworkShrink]:
    """The shrunk layers of `works` (one per op of `workload`, as `graph.lower.layer_works` makes them)."""
    ns = plan(workload, removals_of_works(works), policy=policy, strict=strict)
    return shrink_works(works, ns, batch=batch, dtype=dtype), ns


def shrunk_works(works: list[LayerWork], workload: Workload, *, batch: int, dtype: str, shrink: bool, policy: str,
                 strict: bool) -> tuple[list[LayerWork], dict[str, Any]]:
    """(the layers to run, what happened, for a report's provenance["shrink"]): the shrunk network's
    layers, or `works` unchanged without `shrink` or when the workload has no op connectivity to
    build the coupling graph from (said so)."""
    if not shrink:
        return works, {"policy": "off"}
    if not any(o.inputs for o in workload.ops):
        return works, {"policy": "off", "reason": f"workload {workload.name} has no op connectivity (inputs) to "
                                                  "build the channel-coupling graph from; regenerate or trace it"}
    out, ns = shrink_network(works, workload, batch=batch, dtype=dtype, policy=policy, strict=strict)
    return out, provenance(ns)


def shrink_works(works: Sequence[LayerWork], ns: NetworkShrink, *, batch: int, dtype: str) -> list[LayerWork]:
    before = {o.name: o for o in ns.original.ops}
    after = {o.name: o for o in ns.workload.ops}
    out = []
    for w in works:
        rec = ns.ops.get(w.name)
        if rec is None:
            out.append(w)
            continue
        op0, op1 = before[w.name], after[w.name]
        gemm = op_gemm(op1, batch=batch, dtype=dtype)
        if gemm is None:
            new = plain_work(op1, None, batch=batch, dtype=dtype)
        else:
            new = _restricted(w, op0, op1, rec, gemm) if rec.changed else w
        original = replace(w, mask=None, pattern=None, recipe=None) if w.kind == "gemm" else w
        out.append(replace(new, shrink=LayerShrink(original=original, shape_before=rec.before, shape_after=rec.after,
                                                   groups=rec.groups, notes=rec.notes)))
    return out


def _weight_mask(w: LayerWork, op: Op) -> np.ndarray:
    shape = tuple(op.weight_shape)
    if w.mask is not None:
        return from_gemm_rows(w.mask, shape)
    if w.recipe is None:
        raise GeometryError(f"layer {w.name}: its closed-form pattern has no mask to restrict to the kept "
                            "channels; give the layer a mask")
    return make_mask(shape, w.recipe.pattern, seed=w.recipe.seed)


def _rectangle_left(w: LayerWork, rec: OpShrink) -> bool:
    """The pattern is dense on a rectangle of rows x input channels that the shrink keeps exactly."""
    p = w.pattern
    rect = (p.rows - p.rows_removed) * (p.cols - p.cols_removed * max(1, p.reduction_per_channel))
    if p.nnz != rect:
        return False
    rows_ok = not p.rows_removed or (rec.kept_out is not None and not set(rec.kept_out) & set(p.removed_rows))
    cols_ok = not p.cols_removed or (rec.kept_in is not None and not set(rec.kept_in) & set(p.removed_cols))
    return rows_ok and cols_ok


def _restricted(w: LayerWork, op0: Op, op1: Op, rec: OpShrink, gemm) -> LayerWork:
    """The shrunk GEMM layer with its mask cut to the kept rows and columns (dense when nothing is left out)."""
    dense = LayerWork(name=w.name, kind="gemm", op_kind=op1.kind, gemm=gemm, dtype=w.dtype)
    if w.pattern is None or _rectangle_left(w, rec):
        return dense
    sub = _weight_mask(w, op0)
    if rec.kept_out is not None:
        sub = sub[np.asarray(rec.kept_out)]
    if rec.kept_in is not None:
        sub = sub[:, np.asarray(rec.kept_in)]
    if sub.all():
        return dense
    return masked_work(op1, gemm, sub, dtype=w.dtype)


# ----------------------------------------------------------------------------- a lone GEMM


def standalone(work: LayerWork) -> LayerWork:
    """A lone GEMM layer shrunk by its own all-zero rows and input columns (`evaluate --gemm`)."""
    p, g = work.pattern, work.gemm
    if p is None or g is None or g.count != 1 or len(p.shape) != 2 or not (p.rows_removed or p.cols_removed):
        return work
    rows = np.setdiff1d(np.arange(p.rows), p.removed_rows)
    cols = np.setdiff1d(np.arange(p.cols), p.removed_cols)
    if rows.size == 0 or cols.size == 0:
        return work
    small = replace(g, n=int(rows.size), k=int(cols.size))
    nnz_left = p.nnz == rows.size * cols.size
    if nnz_left:
        new = gemm_work(name=work.name, gemm=small)
    else:
        mask = work.mask if work.mask is not None else make_mask(p.shape, work.recipe.pattern, seed=work.recipe.seed)
        new = gemm_work(name=work.name, gemm=small, mask=mask[np.ix_(rows, cols)])
    note = f"shrunk {p.rows}x{p.cols} -> {rows.size}x{cols.size}: a lone GEMM drops its own all-zero rows and columns"
    return replace(new, op_kind=work.op_kind, shrink=LayerShrink(
        original=replace(work, mask=None, pattern=None, recipe=None), shape_before=(p.rows, p.cols),
        shape_after=(int(rows.size), int(cols.size)), notes=(note,)))


# ----------------------------------------------------------------------------- reporting


def label(estimate: Estimate, work: LayerWork, baseline: Estimate) -> Estimate:
    """The estimate of a shrunk layer as the report shows it (see the module doc)."""
    s = work.shrink
    if s is None:
        return estimate
    fmt = estimate.format
    if s.changed and work.kind == "gemm":
        fmt = "shrunk" if fmt == "dense" else f"shrunk+{fmt}"
    dense = baseline.flops_dense
    density = estimate.flops_effective / dense if dense else estimate.density
    return replace(estimate, format=fmt, flops_dense=dense, density=density, notes=s.notes + estimate.notes)


def dense_size(workload: Workload) -> tuple[int, int]:
    """(conv/linear weight parameters, dense MACs of one sample) of a workload."""
    params = sum(math.prod(o.weight_shape) for o in workload.ops if o.kind in ("conv", "linear") and o.weight_shape)
    return params, dense_macs_per_sample(workload)


def provenance(ns: NetworkShrink, *, layers: bool = True) -> dict[str, Any]:
    """Plain data for a Report's provenance: the policy, what was removed and kept, per-layer shapes."""
    params0, macs0 = dense_size(ns.original)
    params1, macs1 = dense_size(ns.workload)
    channel = [g for g in ns.groups if g.kind == "channels"]
    out: dict[str, Any] = {
        "policy": ns.policy, "strict": ns.strict,
        "groups": len(channel), "groups_shrunk": sum(1 for g in channel if g.removed),
        "channels_removed": ns.removed("channels"), "heads_removed": ns.removed("heads"),
        "weights_before": params0, "weights_after": params1,
        "macs_per_sample_before": macs0, "macs_per_sample_after": macs1,
        "kept": [f"{g.group}: {g.requested - len(g.removed)} {'heads' if g.kind == 'heads' else 'channels'} "
                 f"kept ({g.kept_because})" for g in ns.groups if g.kept_because and g.requested > len(g.removed)]}
    if layers:
        out["layers"] = {name: {"shape": list(r.before), "shrunk_shape": list(r.after), "groups": list(r.groups),
                                "notes": list(r.notes)} for name, r in ns.ops.items()}
    return out
