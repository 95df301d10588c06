"""Channel coupling: which output channels of a producer feed which input channels of consumers.

A *channel group* is one channel space: the output channels of one or more producers (conv /
linear ops) carried unchanged through channel-wise ops (norms, activations, pooling, residual
additions, dropout/views) to the input channels of consumers. Channel i of every member is the
same channel. A residual addition merges the spaces of its operands into one group with several
producers. A group is *open* when its channels reach something that is not channel-wise (an
attention matmul, an embedding, the network output, a Linear reading a flattened CxHxW map whose
size is not a multiple of C): its channels cannot be removed by shrinking.

`build(workload)` returns a networkx.DiGraph over the conv/linear/norm ops: an edge producer ->
consumer (or -> norm whose per-channel entries follow) with `group`, `channels` and
`columns_per_channel` (input columns of the consumer per channel: 1, or H·W after a flatten);
`graph.graph["groups"]` holds the ChannelGroup records.

`shrink(masks, workload)` builds the smaller dense geometry a dense device runs after channel
removal (Chase): a producer's all-zero output channels (whole filter zero) remove the consumers'
input channels and the norm/activation entries; in a residual group a channel goes only when
every producer removes it — one member removing it alone is refused (GeometryError) unless
`strict=False`, which keeps such channels. Channels of an open group are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import networkx as nx
import numpy as np

from simsparse.errors import GeometryError
from simsparse.records import MaskSet, Op, Workload

GEMM = ("conv", "linear")
CHANNELWISE = ("norm", "elementwise", "pool")


@dataclass(frozen=True)
class ChannelGroup:
    name: str                       # the first producer's name
    channels: int
    axis: int                       # channel axis of per-sample activation shapes: 0 (conv maps) or -1 (tokens)
    producers: tuple[str, ...]      # conv/linear ops writing these channels
    consumers: tuple[str, ...]      # conv/linear ops reading them as input channels
    followers: tuple[str, ...]      # channel-wise ops carrying them (norms, activations, pools, adds)
    open: bool                      # reaches a non-channel-wise op or the network output

    @property
    def residual(self) -> bool:
        return len(self.producers) > 1


class _Spaces:
    """Union-find over channel spaces created by producers."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.size: list[int] = []
        self.axis: list[int] = []
        self.open: list[bool] = []

    def new(self, channels: int, axis: int) -> int:
        self.parent.append(len(self.parent))
        self.size.append(channels)
        self.axis.append(axis)
        self.open.append(False)
        return len(self.parent) - 1

    def find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if self.size[ra] != self.size[rb]:  # broadcast, not a channel-wise sum: both become open
                self.open[ra] = self.open[rb] = True
                return ra
            self.parent[rb] = ra
            self.open[ra] = self.open[ra] or self.open[rb]
        return ra


def _channels_out(op: Op) -> int:
    return int(op.weight_shape[0])


def _channels_in(op: Op) -> int:
    return int(op.weight_shape[1]) * (max(1, op.groups) if op.kind == "conv" else 1)


def _trace_spaces(workload: Workload):
    """Walk the ops once: output space per op, consumer edges, followers."""
    sp = _Spaces()
    out_space: dict[str, int] = {}
    consumers: list[tuple[str, int, int]] = []          # (op, space, columns per channel)
    followers: list[tuple[str, int]] = []
    producer_of: dict[int, str] = {}
    consumed = {i for o in workload.ops for i in o.inputs}
    for op in workload.ops:
        in_spaces = [out_space[i] for i in op.inputs if i in out_space]
        if op.kind in GEMM and op.weight_shape:
            if in_spaces:
                s = sp.find(in_spaces[0])
                c_in, c_space = _channels_in(op), sp.size[s]
                if c_in % c_space == 0 and (op.kind == "linear" or c_in == c_space) and op.groups == 1:
                    consumers.append((op.name, s, c_in // c_space))
                else:
                    sp.open[s] = True
            s_new = sp.new(_channels_out(op), 0 if op.kind == "conv" else -1)
            producer_of[s_new] = op.name
            out_space[op.name] = s_new
            if op.name not in consumed:
                sp.open[s_new] = True
        elif op.kind in CHANNELWISE and in_spaces:
            s = in_spaces[0]
            for other in in_spaces[1:]:
                s = sp.union(s, other)
            out_space[op.name] = sp.find(s)
            followers.append((op.name, s))
            if op.name not in consumed:
                sp.open[sp.find(s)] = True
        else:
            for s in in_spaces:
                sp.open[sp.find(s)] = True
    return sp, producer_of, consumers, followers


def channel_groups(workload: Workload) -> tuple[ChannelGroup, ...]:
    """The channel groups of `workload` (needs `Op.inputs`, as traced/catalog workloads have)."""
    if not any(o.inputs for o in workload.ops):
        raise GeometryError(f"workload {workload.name} has no op connectivity (inputs); regenerate or trace it "
                            "so the channel-coupling graph can be built")
    sp, producer_of, consumers, followers = _trace_spaces(workload)
    members: dict[int, dict[str, list[str]]] = {}
    for s, name in producer_of.items():
        members.setdefault(sp.find(s), {"p": [], "c": [], "f": []})["p"].append(name)
    for name, s, _ in consumers:
        members[sp.find(s)]["c"].append(name)
    for name, s in followers:
        members[sp.find(s)]["f"].append(name)
    return tuple(ChannelGroup(name=m["p"][0], channels=sp.size[r], axis=sp.axis[r], producers=tuple(m["p"]),
                              consumers=tuple(m["c"]), followers=tuple(m["f"]), open=sp.open[r])
                 for r, m in members.items())


def pair_groups(workload: Workload) -> tuple[ChannelGroup, ...]:
    """Groups one producer and one consumer can shrink alone: closed, no residual, one consumer of the
    producer's kind (conv -> conv, linear -> linear) reading one input column per channel, neither
    grouped, at most one norm in between, and every channel-wise op in between reading only the
    producer's channels (an add with the network input or an untraced tensor is a residual too).
    The first two convs of a bottleneck, every VGG conv but the last, the hidden neurons of an MLP;
    not the stem feeding a residual add, nor the classifier."""
    ops = {o.name: o for o in workload.ops}
    out = []
    for grp in channel_groups(workload):
        if grp.open or len(grp.producers) != 1 or len(grp.consumers) != 1:
            continue
        members = set(grp.producers) | set(grp.followers)
        if any(i not in members for f in grp.followers for i in ops[f].inputs):
            continue
        prod, cons = ops[grp.producers[0]], ops[grp.consumers[0]]
        norms = [f for f in grp.followers if ops[f].kind == "norm"]
        if (prod.kind != cons.kind or prod.groups != 1 or cons.groups != 1 or len(norms) > 1
                or _channels_in(cons) != grp.channels):
            continue
        out.append(grp)
    return tuple(out)


def build(workload: Workload) -> nx.DiGraph:
    """Channel-coupling graph over conv/linear/norm ops (see the module doc)."""
    groups = channel_groups(workload)
    ops = {o.name: o for o in workload.ops}
    g = nx.DiGraph(groups=groups, workload=workload.name)
    for grp in groups:
        for name in grp.producers + grp.consumers + tuple(f for f in grp.followers if ops[f].kind == "norm"):
            g.add_node(name, kind=ops[name].kind)
        for p in grp.producers:
            for c in grp.consumers:
                per = _channels_in(ops[c]) // grp.channels
                g.add_edge(p, c, group=grp.name, channels=grp.channels, columns_per_channel=per)
            for f in grp.followers:
                if ops[f].kind == "norm":
                    g.add_edge(p, f, group=grp.name, channels=grp.channels, columns_per_channel=1)
    return g


# ----------------------------------------------------------------------------- shrinking


def removed_output_channels(mask: np.ndarray) -> set[int]:
    """Output channels whose whole filter/row is zero."""
    arr = np.asarray(mask).astype(bool, copy=False)
    return set(np.flatnonzero(~arr.reshape(arr.shape[0], -1).any(axis=1)).tolist())


def _group_removal(grp: ChannelGroup, masks: Mapping[str, np.ndarray], *, strict: bool) -> set[int]:
    per_producer = {p: removed_output_channels(masks[p]) if p in masks else set() for p in grp.producers}
    agreed = set.intersection(*per_producer.values()) if per_producer else set()
    for p, removed in per_producer.items():
        alone = sorted(removed - agreed)
        if alone and strict:
            others = [q for q in grp.producers if q != p]
            raise GeometryError(f"layer {p} removes output channel {alone[0]} of residual group {grp.name} alone "
                                f"({len(alone)} such channels); every member ({', '.join(others[:3])}"
                                f"{', ...' if len(others) > 3 else ''}) must remove it too, or keep it")
    if grp.open:  # not channel-wise downstream: a dense device keeps these channels (zero rows cost as dense)
        return set()
    if len(agreed) >= grp.channels:
        raise GeometryError(f"layer {grp.producers[0]} removes all {grp.channels} output channels; keep at least one")
    return agreed


def _masks_by_op(masks: MaskSet | Mapping[str, np.ndarray], workload: Workload) -> Mapping[str, np.ndarray]:
    from simsparse.graph.bind import bind

    return bind(masks, workload).masks


def _set_axis(shape: tuple[int, ...], axis: int, value: int) -> tuple[int, ...]:
    if not shape:
        return shape
    out = list(shape)
    out[axis if axis == -1 or len(out) > 1 else 0] = value
    return tuple(out)


def shrink(masks: MaskSet | Mapping[str, np.ndarray], workload: Workload, *, strict: bool = True) -> Workload:
    """The dense geometry left after removing every channel the masks remove (see the module doc)."""
    by_op = _masks_by_op(masks, workload)
    ops = {o.name: o for o in workload.ops}
    out_keep: dict[str, tuple[int, int]] = {}     # producer/follower -> (kept, channels) of its output
    in_keep: dict[str, tuple[int, int, int]] = {}  # consumer -> (removed channels, columns per channel, axis)
    follow: dict[str, tuple[int, int, int]] = {}   # follower -> (kept, channels, axis)
    for grp in channel_groups(workload):
        removed = _group_removal(grp, by_op, strict=strict)
        if not removed:
            continue
        if any(ops[n].kind == "conv" and ops[n].groups > 1 for n in grp.producers + grp.consumers):
            raise GeometryError(f"channel group {grp.name} includes a grouped conv; shrinking grouped/depthwise "
                                "convs is not supported — keep their channels")
        kept = grp.channels - len(removed)
        for p in grp.producers:
            out_keep[p] = (kept, grp.channels)
        for c in grp.consumers:
            in_keep[c] = (len(removed), _channels_in(ops[c]) // grp.channels, grp.axis)
        for f in grp.followers:
            follow[f] = (kept, grp.channels, grp.axis)
    new_ops = tuple(_shrink_op(o, out_keep.get(o.name), in_keep.get(o.name), follow.get(o.name))
                    for o in workload.ops)
    return Workload(name=f"{workload.name}-shrunk", input_shape=workload.input_shape, ops=new_ops,
                    source=f"shrink:{workload.source or workload.name}")


def _shrink_op(op: Op, out_k, in_k, fol) -> Op:
    if op.kind in GEMM and (out_k or in_k):
        w = list(op.weight_shape)
        cout = out_k[0] if out_k else w[0]
        cin = w[1] - (in_k[0] * in_k[1] if in_k else 0)
        axis = 0 if op.kind == "conv" else -1
        return replace(op, weight_shape=(cout, cin, *w[2:]),
                       input_shape=_set_axis(op.input_shape, axis, cin),
                       output_shape=_set_axis(op.output_shape, axis, cout))
    if fol:
        kept, channels, _ = fol
        shape = op.output_shape
        axis = 0 if (len(shape) == 3 and shape[0] == channels) or (shape and shape[-1] != channels) else -1
        return replace(op, input_shape=_set_axis(op.input_shape, axis, kept),
                       output_shape=_set_axis(op.output_shape, axis, kept),
                       elements_in=op.elements_in * kept // channels,
                       elements_out=op.elements_out * kept // channels)
    return op
