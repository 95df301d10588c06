"""Channel coupling: which output channels of a producer feed which input channels of consumers.

A *channel group* is one channel space: the output channels of one or more producers (conv /
linear ops) carried unchanged through channel-wise ops (batch norms, activations, pooling,
residual additions) to the input channels of consumers. Channel i of every member is the same
channel. A residual addition (or a gated product such as SwiGLU's) merges the spaces of its
operands into one group with several producers. A depthwise conv (groups = Cin = Cout) consumes
its input space channel by channel and produces a new space of the same size (channel c of its
output reads only channel c of its input).

A group is *open* when its channels reach something that is not channel-wise, and `open_reason`
says what: an attention matmul or softmax, an embedding or the network input mixed in by an
add, a tensor the trace did not record (a parameter such as a position embedding or a class
token), a norm that normalises across channels (LayerNorm / RMSNorm on tokens), a grouped conv
reading or writing them (removing one would leave its groups unequal), a Linear reading a map it does not flatten channel-major, a broadcast, or the network output.
Channels of an open group cannot be removed by shrinking.

`build(workload)` returns a networkx.DiGraph over the conv/linear/norm ops: an edge producer ->
consumer (or -> norm whose per-channel entries follow) with `group`, `channels` and
`columns_per_channel` (input columns of the consumer per channel: 1, or H·W after a flatten);
`graph.graph["groups"]` holds the ChannelGroup records. `pair_groups` is the subset the DST
trainer (Chase) removes channels in. Shrinking (which channels go, and the smaller network left)
is `graph.shrink`, built on these groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import networkx as nx

from simsparse.errors import GeometryError
from simsparse.records import Op, Workload

GEMM = ("conv", "linear")
CHANNELWISE = ("norm", "elementwise", "pool")


@dataclass(frozen=True)
class ChannelGroup:
    name: str                       # the first producer's name
    channels: int
    axis: int                       # channel axis of per-sample activation shapes: 0 (conv maps) or -1 (tokens)
    producers: tuple[str, ...]      # conv/linear ops writing these channels (depthwise convs included)
    consumers: tuple[str, ...]      # conv/linear ops reading them as input channels (depthwise convs included)
    followers: tuple[str, ...]      # channel-wise ops carrying them (norms, activations, pools, adds)
    open: bool                      # reaches a non-channel-wise op or the network output
    open_reason: str = ""           # what opened it (the first cause found)
    gated: bool = False             # its producers are merged only by products (SwiGLU's gate * up), no add

    @property
    def residual(self) -> bool:
        """Several producers write these channels and an addition merges them (a skip connection)."""
        return len(self.producers) > 1 and not self.gated


PRODUCT_OPS = ("mul", "imul", "rmul", "act_fn")   # merge ops that multiply (by traced function or builder name)


def merge_kind(op: Op) -> str:
    """"product" when the op that merges two channel spaces multiplies them, else "add" (the
    conservative reading: an addition keeps a channel alive unless every operand removes it)."""
    base = op.name.rsplit(".", 1)[-1].split(":")[0].strip("_")
    return "product" if base in PRODUCT_OPS else "add"


def is_depthwise(op: Op) -> bool:
    """A conv whose every group reads one input channel and writes one output channel."""
    w = op.weight_shape or ()
    return op.kind == "conv" and op.groups > 1 and len(w) > 2 and w[1] == 1 and w[0] == op.groups


class _Spaces:
    """Union-find over channel spaces created by producers."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.size: list[int] = []
        self.axis: list[int] = []
        self.reason: list[str] = []
        self.merges: dict[int, set[str]] = {}

    def new(self, channels: int, axis: int) -> int:
        self.parent.append(len(self.parent))
        self.size.append(channels)
        self.axis.append(axis)
        self.reason.append("")
        return len(self.parent) - 1

    def find(self, s: int) -> int:
        while self.parent[s] != s:
            self.parent[s] = self.parent[self.parent[s]]
            s = self.parent[s]
        return s

    def close_reason(self, s: int) -> str:
        return self.reason[self.find(s)]

    def mark_open(self, s: int, reason: str) -> None:
        r = self.find(s)
        if not self.reason[r]:
            self.reason[r] = reason

    def union(self, a: int, b: int, *, where: str) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            if self.size[ra] != self.size[rb]:  # broadcast or concatenation, not a channel-wise sum
                for r in (ra, rb):
                    self.mark_open(r, f"{where} combines {self.size[ra]} and {self.size[rb]} channels")
                return ra
            self.parent[rb] = ra
            self.reason[ra] = self.reason[ra] or self.reason[rb]
            self.merges[ra] = self.merges.get(ra, set()) | self.merges.pop(rb, set())
        return ra

    def record_merge(self, s: int, kind: str) -> None:
        self.merges.setdefault(self.find(s), set()).add(kind)


def _channels_out(op: Op) -> int:
    return int(op.weight_shape[0])


def _channels_in(op: Op) -> int:
    return int(op.weight_shape[1]) * (max(1, op.groups) if op.kind == "conv" else 1)


def _elements_out(op: Op) -> int | None:
    """Per-sample elements an op writes (None when the record does not say)."""
    if op.kind in ("conv", "linear", "matmul"):
        return math.prod(op.output_shape) if op.output_shape else None
    return op.elements_out or None


class _Walk:
    """One pass over the ops: output space per op, consumer edges, followers."""

    def __init__(self, workload: Workload) -> None:
        self.sp = _Spaces()
        self.ops = {o.name: o for o in workload.ops}
        self.out_space: dict[str, int] = {}
        self.consumers: list[tuple[str, int, int]] = []          # (op, space, columns per channel)
        self.followers: list[tuple[str, int]] = []
        self.producer_of: list[tuple[int, str]] = []
        self.input_elements = math.prod(workload.input_shape) if workload.input_shape else None
        consumed = {i for o in workload.ops for i in o.inputs}
        for op in workload.ops:
            spaces = [self.out_space[i] for i in op.inputs if i in self.out_space]
            if op.kind in GEMM and op.weight_shape:
                self._gemm(op, spaces)
            elif op.kind in CHANNELWISE and spaces:
                self._channelwise(op, spaces)
            else:
                for s in spaces:
                    self.sp.mark_open(s, f"{op.kind} {op.name}")
            if op.name in self.out_space and op.name not in consumed:
                self.sp.mark_open(self.out_space[op.name], "network output")

    def _gemm(self, op: Op, spaces: list[int]) -> None:
        if len(spaces) > 1 or (spaces and len(op.inputs) > 1):
            for s in spaces:
                self.sp.mark_open(s, f"{op.name} reads several tensors")
        elif spaces:
            s = self.sp.find(spaces[0])
            per = self._columns_per_channel(op, s)
            if per:
                self.consumers.append((op.name, s, per))
        s_new = self.sp.new(_channels_out(op), 0 if op.kind == "conv" else -1)
        if op.kind == "conv" and op.groups > 1 and not is_depthwise(op):   # removing one would unequal its groups
            self.sp.mark_open(s_new, f"grouped conv {op.name} (groups {op.groups}) writes them")
        self.producer_of.append((s_new, op.name))
        self.out_space[op.name] = s_new

    def _columns_per_channel(self, op: Op, s: int) -> int:
        """Input columns of `op` per channel of space `s` (0: it cannot read them channel by channel)."""
        c_in, c_space, axis = _channels_in(op), self.sp.size[s], self.sp.axis[s]
        if op.kind == "conv":
            if op.groups > 1 and not (is_depthwise(op) and c_in == c_space):
                self.sp.mark_open(s, f"grouped conv {op.name} (groups {op.groups})")
                return 0
            if c_in == c_space and axis == 0:
                return 1
        elif axis == -1 and c_in == c_space:
            return 1
        elif axis == 0 and len(op.input_shape) == 1 and c_in % c_space == 0:
            return c_in // c_space                      # a Linear after a channel-major flatten
        self.sp.mark_open(s, f"{op.name} reads {c_in} inputs from a {c_space}-channel tensor")
        return 0

    def _channelwise(self, op: Op, spaces: list[int]) -> None:
        s = spaces[0]
        for other in spaces[1:]:
            s = self.sp.union(s, other, where=op.name)
        s = self.sp.find(s)
        if len({self.sp.find(x) for x in spaces}) > 1 or len(spaces) > 1:
            self.sp.record_merge(s, merge_kind(op))
        self.out_space[op.name] = s
        self.followers.append((op.name, s))
        foreign = [i for i in op.inputs if i not in self.out_space or i == op.name]
        if foreign:
            self.sp.mark_open(s, f"{op.name} mixes in {foreign[0]}")
        elif len(op.inputs) > 1 and not self._same_size(op):
            self.sp.mark_open(s, f"{op.name} concatenates or broadcasts its inputs")
        elif op.kind == "norm" and not self._norm_is_per_channel(op, s):
            self.sp.mark_open(s, f"norm {op.name} normalises across channels")
        elif op.kind == "elementwise" and self._reads_untraced(op):
            self.sp.mark_open(s, f"{op.name} reads a tensor the trace did not record (a parameter or buffer)")

    def _norm_is_per_channel(self, op: Op, s: int) -> bool:
        shape, c = op.input_shape, self.sp.size[s]
        if self.sp.axis[s] == 0:
            return len(shape) >= 1 and shape[0] == c      # BatchNorm on a (C, ...) map or (C,) features
        return len(shape) == 1 and shape[0] == c          # BatchNorm1d on features; LayerNorm on tokens is not

    def _same_size(self, op: Op) -> bool:
        """Every input holds as many elements as the output (a sum or product, not a concatenation)."""
        sizes = [_elements_out(self.ops[i]) for i in op.inputs if i in self.ops]
        return not op.elements_out or all(n is None or n == op.elements_out for n in sizes)

    def _reads_untraced(self, op: Op) -> bool:
        known = [_elements_out(self.ops[i]) if i in self.ops else self.input_elements for i in op.inputs]
        if any(k is None for k in known) or not op.elements_in:
            return False
        return op.elements_in > sum(known) + 1        # more than a scalar operand beyond its traced inputs


def channel_groups(workload: Workload) -> tuple[ChannelGroup, ...]:
    """The channel groups of `workload` (needs `Op.inputs`, as traced/catalog workloads have), in
    the order of their first producer."""
    if not any(o.inputs for o in workload.ops):
        raise GeometryError(f"workload {workload.name} has no op connectivity (inputs); regenerate or trace it "
                            "so the channel-coupling graph can be built")
    walk = _Walk(workload)
    sp = walk.sp
    members: dict[int, dict[str, list[str]]] = {}
    for s, name in walk.producer_of:
        members.setdefault(sp.find(s), {"p": [], "c": [], "f": []})["p"].append(name)
    for name, s, _ in walk.consumers:
        members[sp.find(s)]["c"].append(name)
    for name, s in walk.followers:
        members[sp.find(s)]["f"].append(name)
    return tuple(ChannelGroup(name=m["p"][0], channels=sp.size[r], axis=sp.axis[r], producers=tuple(m["p"]),
                              consumers=tuple(m["c"]), followers=tuple(m["f"]), open=bool(sp.reason[r]),
                              open_reason=sp.reason[r], gated=sp.merges.get(r) == {"product"})
                 for r, m in members.items())


def columns_per_channel(group: ChannelGroup, op: Op) -> int:
    """Input columns of consumer `op` per channel of `group` (1, or H·W after a flatten)."""
    return max(1, _channels_in(op) // group.channels)


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
                g.add_edge(p, c, group=grp.name, channels=grp.channels,
                           columns_per_channel=columns_per_channel(grp, ops[c]))
            for f in grp.followers:
                if ops[f].kind == "norm":
                    g.add_edge(p, f, group=grp.name, channels=grp.channels, columns_per_channel=1)
    return g

