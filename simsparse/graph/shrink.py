"""Shrinking: the smaller dense network left after removing the channels a set of masks removes
(Chase's physical shrink), the one rule every estimate uses.

Input: per masked op what its mask removes (`Removal`: all-zero output rows and all-zero input
channels, read from a measured or closed-form `Pattern`, or from a mask). The rule, per channel
group of `graph.coupling` (in the order of their producers):

- A producer removes a channel when its whole filter is zero. A depthwise conv also removes the
  channels its input group removed (it has nothing left to read for them).
- A group with one producer loses exactly the channels that producer removes.
- A group with several producers (a residual add merges them; or a gated product) loses a channel
  only when every producer removes it. A channel removed by only some members is kept with a note
  naming the group and its members; `strict=True` makes that a GeometryError instead. Under
  `policy="no-skip"` residual groups (merged by an add) keep all their channels (Chase's "no skip
  pruning"); `"prune-skip"` (the default) lets them shrink when all members agree.
- An open group (see `graph.coupling`: attention, LayerNorm, network output, ...) keeps all its
  channels; a note says what kept them.
- A depthwise conv keeps only groups whose input channel survives; when it is the only reader of
  its input group, the channels it removes leave that group too (their producers' rows are unread),
  otherwise it keeps them (it reads every channel of its input); when its output group must keep a
  channel its input group removed, the input channel is kept.
- Whole attention heads are removed where the value projection's rows of a head (or the output
  projection's columns of it) are all zero (`graph.shrink_heads`).
- At least one channel of every group stays (a mask removing all is a GeometryError).

What the rule does not remove stays in the layer's mask: a layer's own all-zero rows that no group
removes (e.g. the ablated rows of a classifier, whose outputs are the network output) and all-zero
input columns whose producer keeps the channel run as whatever format the arch picks for the
restricted mask (zero rows cost as dense on a GPU; CPU kernels may skip them).

`plan(workload, removals, policy=, strict=)` -> `NetworkShrink` (the shrunk `Workload`, the
kept indices per op, the decision per group). `graph.shrink_works` turns a network's LayerWorks
into the shrunk ones (each layer's mask restricted to its kept rows and columns).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Mapping

import numpy as np

from simsparse.errors import GeometryError
from simsparse.graph import shrink_heads
from simsparse.graph.coupling import ChannelGroup, channel_groups, columns_per_channel, is_depthwise
from simsparse.graph.bind import bind
from simsparse.masks.patterns import as_matrix, to_bool_array
from simsparse.records import MaskSet, Op, Pattern, Workload

POLICIES = ("prune-skip", "no-skip")
DEFAULT_POLICY = "prune-skip"


@dataclass(frozen=True)
class Removal:
    """What one op's mask removes: all-zero output rows and all-zero input channels (weight axis 1)."""

    rows: frozenset[int] = frozenset()
    cols: frozenset[int] = frozenset()


def removal_of_pattern(pattern: Pattern) -> Removal:
    return Removal(rows=frozenset(pattern.removed_rows), cols=frozenset(pattern.removed_cols))


def removal_of_mask(mask) -> Removal:
    """The Removal of a weight-shaped mask."""
    arr = to_bool_array(mask)
    rows = np.flatnonzero(~as_matrix(arr).any(axis=1))
    cols = np.flatnonzero(~arr.any(axis=tuple(i for i in range(arr.ndim) if i != 1))) if arr.ndim > 1 else ()
    return Removal(rows=frozenset(int(i) for i in rows), cols=frozenset(int(i) for i in cols))


@dataclass(frozen=True)
class GroupShrink:
    """The decision for one channel group (or one attention block: kind "heads")."""

    group: str
    kind: str                      # "channels" | "heads"
    channels: int                  # channels (or heads) of the group
    removed: tuple[int, ...]       # indices removed
    requested: int                 # indices some member's mask removes
    members: tuple[str, ...]       # producers (or projections)
    kept_because: str = ""         # why requested indices were kept ("" when none were)


@dataclass(frozen=True)
class OpShrink:
    """How one op changes: the kept output/input indices and its shape before and after."""

    name: str
    before: tuple[int, ...]                  # weight shape (GEMM ops) or per-sample output shape
    after: tuple[int, ...]
    kept_out: tuple[int, ...] | None = None  # kept output channels (rows); None: all
    kept_in: tuple[int, ...] | None = None   # kept input indices along weight axis 1 (columns); None: all
    channels: int = 0                        # output channels (or heads) before: what kept_out indexes
    groups: tuple[str, ...] = ()             # groups whose removal changed this op
    notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.before != self.after


@dataclass(frozen=True, eq=False)
class NetworkShrink:
    original: Workload
    workload: Workload                       # the shrunk geometry
    policy: str
    strict: bool
    groups: tuple[GroupShrink, ...]
    ops: Mapping[str, OpShrink]              # ops that changed or carry a note

    @property
    def changed(self) -> bool:
        return any(o.changed for o in self.ops.values())

    def removed(self, kind: str) -> int:
        return sum(len(g.removed) for g in self.groups if g.kind == kind)


@dataclass
class _Edit:
    """Planned change of one op (mutable while planning)."""

    kept_out: np.ndarray | None = None
    kept_in: np.ndarray | None = None
    scale: tuple[int, int] | None = None     # (kept, total) of the channels/heads a non-GEMM op carries
    axis: int = 0
    groups: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise GeometryError(f"unknown residual policy {policy!r}; use one of {', '.join(POLICIES)}")
    return policy


# ----------------------------------------------------------------------------- decisions


def _members_text(names: tuple[str, ...]) -> str:
    return ", ".join(names[:4]) + (f", ... ({len(names)} members)" if len(names) > 4 else "")


def _decide(grp: ChannelGroup, eff: dict[str, set[int]], *, policy: str, strict: bool) -> tuple[set[int], set[int], str]:
    """(removed, requested, why the rest of requested is kept) for one group."""
    requested = set().union(*eff.values()) if eff else set()
    if grp.open:
        return set(), requested, f"group {grp.name} is open ({grp.open_reason})"
    if len(grp.producers) > 1:
        agreed = set.intersection(*eff.values())
        partial = requested - agreed
        if partial and strict:
            alone = sorted(p for p, r in eff.items() if r - agreed)
            raise GeometryError(f"channel {min(partial)} of {'residual' if grp.residual else 'gated'} group {grp.name} "
                                f"is removed by {', '.join(alone[:3])} but not by every member "
                                f"({_members_text(grp.producers)}); remove it in all of them, or drop --strict")
        if grp.residual and policy == "no-skip":
            return set(), requested, f"residual group {grp.name} stays whole under --residual-policy no-skip"
        why = (f"{'residual' if grp.residual else 'gated'} group {grp.name}: removed by only some of its members "
               f"({_members_text(grp.producers)})")
        return agreed, requested, why if partial else ""
    return set(requested), requested, ""


def _order(groups: tuple[ChannelGroup, ...], input_group: dict[str, ChannelGroup]) -> list[ChannelGroup]:
    """Groups with every depthwise producer's input group before them."""
    done: set[str] = set()
    out: list[ChannelGroup] = []
    pending = list(groups)
    while pending:
        rest = []
        for grp in pending:
            needs = {input_group[p].name for p in grp.producers if p in input_group} - {grp.name}
            if needs <= done:
                out.append(grp)
                done.add(grp.name)
            else:
                rest.append(grp)
        if len(rest) == len(pending):          # a cycle cannot occur in a feed-forward trace; keep order
            out.extend(rest)
            break
        pending = rest
    return out


def _channel_decisions(groups, ops, removals, *, policy, strict):
    """{group name: removed channels} and {group name: (requested own, why kept)}."""
    input_group = {c: g for g in groups for c in g.consumers if is_depthwise(ops[c])}
    removed: dict[str, set[int]] = {}
    why: dict[str, tuple[set[int], str]] = {}
    for grp in _order(groups, input_group):
        eff = {}
        for p in grp.producers:
            rows = set(removals.get(p, Removal()).rows)
            if p in input_group and input_group[p].name in removed:
                rows |= removed[input_group[p].name]
            eff[p] = rows
        removed[grp.name], requested, reason = _decide(grp, eff, policy=policy, strict=strict)
        why[grp.name] = (requested, reason)
        if len(removed[grp.name]) >= grp.channels:
            raise GeometryError(f"the masks remove all {grp.channels} channels of group {grp.name} "
                                f"({_members_text(grp.producers)}); keep at least one")
    _depthwise_consistency(groups, ops, input_group, removed, why, policy=policy)
    return removed, why


def _depthwise_consistency(groups, ops, input_group, removed, why, *, policy) -> None:
    """A depthwise conv's kept output channels are a subset of its kept input channels (see the doc)."""
    out_group = {p: g for g in groups for p in g.producers if is_depthwise(ops[p])}
    for _ in range(len(out_group) + 1):
        changed = False
        for dw, b in out_group.items():
            a = input_group.get(dw)
            if a is None:
                continue
            rem_a, rem_b = removed[a.name], removed[b.name]
            if rem_a - rem_b:                                  # the output keeps what the input removed
                removed[a.name] = rem_a & rem_b
                why[a.name] = (why[a.name][0], why[a.name][1] or f"depthwise conv {dw} keeps them")
                changed = True
            elif rem_b - rem_a:                                # the output removes what the input keeps
                if a.consumers == (dw,) and not a.open and not (a.residual and policy == "no-skip"):
                    removed[a.name] = rem_a | rem_b            # the dw is their only reader: both go
                else:                                          # another reader keeps them: the dw reads them
                    removed[b.name] = rem_a & rem_b
                    why[b.name] = (why[b.name][0], why[b.name][1] or f"depthwise conv {dw} reads them from "
                                                                      f"group {a.name}, which keeps them")
                changed = True
        if not changed:
            return


# ----------------------------------------------------------------------------- edits


def _kept(total: int, removed: Iterable[int]) -> np.ndarray:
    keep = np.ones(total, bool)
    keep[list(removed)] = False
    return np.flatnonzero(keep)


def _channel_edits(groups, ops, removed, why, removals) -> dict[str, _Edit]:
    edits: dict[str, _Edit] = {}
    for grp in groups:
        gone = removed[grp.name]
        requested, reason = why[grp.name]
        if reason:
            for p in grp.producers:
                blocked = set(removals.get(p, Removal()).rows) - gone
                if blocked:
                    edits.setdefault(p, _Edit()).notes.append(f"{len(blocked)} all-zero output channels kept: {reason}")
        if not gone:
            continue
        keep = _kept(grp.channels, gone)
        for p in grp.producers:
            e = edits.setdefault(p, _Edit())
            e.kept_out, e.groups = keep, e.groups | {grp.name}
        for c in grp.consumers:
            e = edits.setdefault(c, _Edit())
            e.groups.add(grp.name)
            if is_depthwise(ops[c]):
                continue                                       # its kept groups follow its output group
            per = columns_per_channel(grp, ops[c])
            e.kept_in = (keep[:, None] * per + np.arange(per)[None, :]).reshape(-1)
        for f in grp.followers:
            e = edits.setdefault(f, _Edit())
            e.kept_out, e.scale, e.axis, e.groups = keep, (len(keep), grp.channels), grp.axis, e.groups | {grp.name}
    return edits


def _head_edits(heads, ops, edits: dict[str, _Edit]) -> None:
    """Whole heads removed: projection rows, output-projection columns, matmul counts, the ops between."""
    for h in heads:
        if not h.removed:
            continue
        b, gone = h.block, set(h.removed)
        for p in b.projections:
            e = edits.setdefault(p, _Edit())
            e.kept_out = _kept(ops[p].weight_shape[0], b.rows_of_units(ops[p], gone))
            e.groups.add(b.name)
        e = edits.setdefault(b.out, _Edit())
        e.kept_in = _kept(ops[b.out].weight_shape[1], b.cols_of_units(ops[b.out], gone))
        e.groups.add(b.name)
        for name in b.matmuls + b.between:
            e = edits.setdefault(name, _Edit())
            e.scale, e.axis, e.groups = (b.units - len(gone), b.units), 0, e.groups | {b.name}


def _set_axis(shape: tuple[int, ...], axis: int, old: int, new: int) -> tuple[int, ...]:
    """`shape` with its channel axis (`axis`, else the first axis of size `old`) set to `new`."""
    if not shape:
        return shape
    idx = axis if shape[axis] == old else next((i for i, s in enumerate(shape) if s == old), None)
    if idx is None:
        return shape
    out = list(shape)
    out[idx] = new
    return tuple(out)


def _apply(op: Op, e: _Edit) -> Op:
    if op.kind in ("conv", "linear"):
        w = tuple(op.weight_shape)
        cout = len(e.kept_out) if e.kept_out is not None else w[0]
        groups = cout if is_depthwise(op) else op.groups
        cin = (len(e.kept_in) if e.kept_in is not None else w[1]) if not is_depthwise(op) else 1
        axis = 0 if op.kind == "conv" else -1
        in_ch = cin * groups if op.kind == "conv" else cin
        in_old = w[1] * op.groups if op.kind == "conv" else w[1]
        return replace(op, weight_shape=(cout, cin, *w[2:]), groups=groups,
                       input_shape=_set_axis(op.input_shape, axis, in_old, in_ch),
                       output_shape=_set_axis(op.output_shape, axis, w[0], cout))
    if e.scale is None:
        return op
    kept, total = e.scale
    if op.kind == "matmul":
        return replace(op, count=op.count * kept // total,
                       input_shape=_set_axis(op.input_shape, 0, total, kept) if op.input_shape else (),
                       output_shape=_set_axis(op.output_shape, 0, total, kept) if op.output_shape else ())
    return replace(op, input_shape=_set_axis(op.input_shape, e.axis, total, kept),
                   output_shape=_set_axis(op.output_shape, e.axis, total, kept),
                   elements_in=op.elements_in * kept // total, elements_out=op.elements_out * kept // total)


def _shape(op: Op) -> tuple[int, ...]:
    if op.kind in ("conv", "linear"):
        return tuple(op.weight_shape)
    if op.kind == "matmul":
        return (op.count, *op.gemm_mnk) if op.gemm_mnk else (op.count,)
    return tuple(op.output_shape) or (op.elements_out,)


# ----------------------------------------------------------------------------- the plan


def _without_head_rows(removals: Mapping[str, Removal], heads, ops) -> dict[str, Removal]:
    """`removals` less the projection rows that leave with their attention head (not channels kept)."""
    gone = {p: h.block.rows_of_units(ops[p], set(h.removed)) for h in heads if h.removed for p in h.block.projections}
    return {n: replace(r, rows=r.rows - gone[n]) if n in gone else r for n, r in removals.items()}


def plan(workload: Workload, removals: Mapping[str, Removal], *, policy: str = DEFAULT_POLICY,
         strict: bool = False) -> NetworkShrink:
    """The shrunk network of `workload` for what each op's mask removes (see the module doc)."""
    check_policy(policy)
    ops = {o.name: o for o in workload.ops}
    groups = channel_groups(workload)
    heads = shrink_heads.plan_heads(workload, removals)
    own = _without_head_rows(removals, heads, ops)
    removed, why = _channel_decisions(groups, ops, own, policy=policy, strict=strict)
    edits = _channel_edits(groups, ops, removed, why, own)
    _head_edits(heads, ops, edits)
    new_ops, records = [], {}
    for op in workload.ops:
        e = edits.get(op.name)
        new = _apply(op, e) if e is not None else op
        new_ops.append(new)
        if e is not None and (_shape(op) != _shape(new) or e.notes):
            records[op.name] = OpShrink(
                name=op.name, before=_shape(op), after=_shape(new),
                kept_out=tuple(int(i) for i in e.kept_out) if e.kept_out is not None else None,
                kept_in=tuple(int(i) for i in e.kept_in) if e.kept_in is not None else None,
                channels=e.scale[1] if e.scale else (op.weight_shape[0] if op.weight_shape else 0),
                groups=tuple(sorted(e.groups)), notes=tuple(e.notes))
    decisions = tuple(GroupShrink(group=g.name, kind="channels", channels=g.channels,
                                  removed=tuple(sorted(removed[g.name])), requested=len(why[g.name][0]),
                                  members=g.producers, kept_because=why[g.name][1]) for g in groups)
    shrunk = Workload(name=workload.name, input_shape=workload.input_shape, ops=tuple(new_ops),
                      source=f"shrink:{workload.source or workload.name}", phase=workload.phase,
                      tokens=workload.tokens, context=workload.context)
    head_decisions = tuple(GroupShrink(group=h.block.name, kind="heads", channels=h.block.units, removed=h.removed,
                                       requested=h.requested, members=h.block.projections,
                                       kept_because="one head of every attention block stays"
                                       if h.requested > len(h.removed) else "") for h in heads)
    return NetworkShrink(original=workload, workload=shrunk, policy=policy, strict=strict,
                         groups=decisions + head_decisions, ops=records)


def removals_of_masks(masks: MaskSet | Mapping[str, np.ndarray], workload: Workload) -> dict[str, Removal]:
    """{op name: Removal} of weight-shaped masks, bound to the workload's ops by name."""
    return {name: removal_of_mask(m) for name, m in bind(masks, workload).masks.items()}


def plan_from_masks(masks: MaskSet | Mapping[str, np.ndarray], workload: Workload, *,
                    policy: str = DEFAULT_POLICY, strict: bool = False) -> NetworkShrink:
    return plan(workload, removals_of_masks(masks, workload), policy=policy, strict=strict)
