"""Whole attention heads a set of masks removes (the head half of `graph.shrink`'s rule).

An attention block is found in the op graph: an A·V matmul (`av`) reading a softmax chain that
starts at a Q·K^T matmul (`qk`) and a value projection (a Linear); the query/key projections are
the Linears the `qk` matmul reads (directly or through element-wise ops such as rotary
embeddings); the output projection is the one Linear reading `av`. Fused projections (one
`in_proj` for Q, K and V, as nn.MultiheadAttention) are split in three equal parts. The block
has `count` head units (the matmul count per sample: query heads, or KV heads under grouped-query
attention, whose query heads move with them); every projection splits its rows evenly into units,
the output projection its columns.

A unit is removed when the value projection's rows of the unit are all zero (its output is zero
whatever the attention weights) or the output projection's columns of the unit are all zero (its
output is unused); then its Q, K, V rows, its output-projection columns, its share of the
matmuls (`count`) and of the element-wise ops between them go. At least one unit stays. A block
whose projections also feed something else, or whose sizes do not split evenly, is left whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from simsparse.records import Op, Workload


@dataclass(frozen=True)
class AttentionBlock:
    """One attention block of the op graph, as `graph.shrink` removes its heads."""

    name: str                        # the av matmul
    units: int                       # head units (the matmul count per sample)
    projections: tuple[str, ...]     # q, k, v Linears (one name when fused)
    value: str                       # the value projection (the fused one when fused)
    fused: bool
    out: str                         # the output projection
    matmuls: tuple[str, ...]         # qk, av
    between: tuple[str, ...]         # non-GEMM ops between the projections and the output projection

    def rows_of_units(self, op: Op, units: set[int]) -> set[int]:
        rows = op.weight_shape[0]
        out: set[int] = set()
        parts = 3 if self.fused else 1
        per = rows // parts // self.units
        for part in range(parts):
            for u in units:
                start = part * (rows // parts) + u * per
                out.update(range(start, start + per))
        return out

    def value_rows(self, v: Op) -> set[int]:
        """The rows of the (possibly fused) value projection that hold V."""
        rows = v.weight_shape[0]
        return set(range(2 * rows // 3, rows)) if self.fused else set(range(rows))

    def cols_of_units(self, op: Op, units: set[int]) -> set[int]:
        per = op.weight_shape[1] // self.units
        return {c for u in units for c in range(u * per, (u + 1) * per)}


@dataclass(frozen=True)
class HeadDecision:
    block: AttentionBlock
    removed: tuple[int, ...]          # head units removed
    requested: int                    # units whose value rows or output columns are all zero


def _readers(workload: Workload) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for op in workload.ops:
        for i in op.inputs:
            out.setdefault(i, []).append(op.name)
    return out


def _sources(name: str, ops: Mapping[str, Op], kinds: tuple[str, ...], seen: set[str]) -> list[str]:
    """The ops of `kinds` reached from `name` walking inputs back through non-GEMM ops."""
    op = ops.get(name)
    if op is None or name in seen:
        return []
    seen.add(name)
    if op.kind in kinds:
        return [name]
    if op.kind in ("conv", "linear", "matmul", "embedding"):
        return []
    return [s for i in op.inputs for s in _sources(i, ops, kinds, seen)]


def find_blocks(workload: Workload) -> list[AttentionBlock]:
    ops = {o.name: o for o in workload.ops}
    readers = _readers(workload)
    blocks = []
    for av in (o for o in workload.ops if o.kind == "matmul"):
        value = [i for i in av.inputs if ops.get(i) is not None and ops[i].kind == "linear"]
        qk = [s for i in av.inputs if i not in value for s in _sources(i, ops, ("matmul",), set())]
        outs = readers.get(av.name, [])
        if len(value) != 1 or len(qk) != 1 or len(outs) != 1 or ops[outs[0]].kind != "linear":
            continue
        qk_op = ops[qk[0]]
        qk_proj = sorted({s for i in qk_op.inputs for s in _sources(i, ops, ("linear",), set())})
        fused = qk_proj == value
        projections = tuple(qk_proj) if fused else tuple(qk_proj + value)
        if not fused and len(qk_proj) != 2:
            continue
        block = AttentionBlock(name=av.name, units=av.count, projections=projections, value=value[0], fused=fused,
                               out=outs[0], matmuls=(qk_op.name, av.name),
                               between=_between(workload, projections, qk_op.name, av.name, ops, readers))
        if _well_formed(block, ops, readers):
            blocks.append(block)
    return blocks


def _between(workload: Workload, projections, qk: str, av: str, ops, readers) -> tuple[str, ...]:
    """Non-GEMM ops on the paths projections -> qk and qk -> av."""
    targets = {qk, av}
    out: list[str] = []
    for op in reversed(workload.ops):                   # readers first: a chain joins from its end
        if op.kind in ("conv", "linear", "matmul", "embedding"):
            continue
        back = _sources(op.name, ops, ("linear", "matmul"), set())
        fwd_ok = any(r in targets or r in out for r in readers.get(op.name, []))
        if back and set(back) <= set(projections) | {qk} and fwd_ok:
            out.append(op.name)
    return tuple(reversed(out))


def _well_formed(b: AttentionBlock, ops, readers) -> bool:
    if b.units < 2:
        return False
    parts = 3 if b.fused else 1
    if any(ops[p].weight_shape[0] % (parts * b.units) for p in b.projections):
        return False
    if ops[b.out].weight_shape[1] % b.units:
        return False
    inside = set(b.between) | set(b.matmuls)
    return all(set(readers.get(p, [])) <= inside for p in b.projections)   # projections feed only this block


def decide(block: AttentionBlock, ops: Mapping[str, Op], removals: Mapping) -> HeadDecision:
    v, o = ops[block.value], ops[block.out]
    v_rows = removals[block.value].rows if block.value in removals else frozenset()
    o_cols = removals[block.out].cols if block.out in removals else frozenset()
    dead = []
    for u in range(block.units):
        v_dead = bool(v_rows) and block.rows_of_units(v, {u}) & block.value_rows(v) <= v_rows
        o_dead = bool(o_cols) and block.cols_of_units(o, {u}) <= o_cols
        if v_dead or o_dead:
            dead.append(u)
    removed = dead[:-1] if len(dead) == block.units else dead          # keep one unit
    return HeadDecision(block=block, removed=tuple(removed), requested=len(dead))


def plan_heads(workload: Workload, removals: Mapping) -> list[HeadDecision]:
    ops = {o.name: o for o in workload.ops}
    return [decide(b, ops, removals) for b in find_blocks(workload)]
