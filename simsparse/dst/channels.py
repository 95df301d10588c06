"""Which output channels Chase may remove, and what goes with them (the channel coupling).

Preferred source: simsparse.graph.coupling on the traced geometry (needs a sample input). Chase
keeps a coupling group when it has ONE producer (no residual add), is not open, feeds exactly one
consumer of the same kind (conv -> conv, linear -> linear) one input column per channel, and
carries at most one norm — the same rule as below.

Fallback rule (no sample input, or the coupling/tracing fails), on a torch.fx trace of the
model: a Conv/Linear weight (the producer, groups = 1) whose output reaches exactly ONE
Conv/Linear consumer (groups = 1, same channel count) through a single-user chain of at most one
BatchNorm and channel-wise ops (activations, dropout, pooling). Anything else — a residual add,
a concat, a flatten, two consumers (the ResNet stem), the classifier — stops the chain, so the
channel is not removable. This yields the first two convs of every bottleneck, the first conv of
every basic/WRN block, every VGG conv but the last, and the hidden neurons of an MLP.
A model that torch.fx cannot trace has no removable channels (Chase then runs as unstructured DST).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.fx
from torch import nn

_CHANNELWISE_MODULES = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Hardswish, nn.Tanh,
                        nn.Sigmoid, nn.Dropout, nn.Dropout2d, nn.Identity, nn.MaxPool1d, nn.MaxPool2d,
                        nn.AvgPool1d, nn.AvgPool2d)
_CHANNELWISE_FUNCTIONS = {torch.relu, torch.nn.functional.relu, torch.nn.functional.gelu, torch.nn.functional.silu,
                          torch.nn.functional.dropout, torch.nn.functional.max_pool2d, torch.nn.functional.avg_pool2d,
                          torch.tanh, torch.sigmoid}
_CHANNELWISE_METHODS = {"relu", "relu_", "sigmoid", "tanh"}
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_GEMMS = (nn.Conv1d, nn.Conv2d, nn.Linear)


@dataclass(frozen=True)
class ChannelGroup:
    """Output channels of `producer` whose removal also removes `consumer`'s input slices (dim 1)."""

    producer: str              # weight fqn; rows are the removable channels
    producer_bias: str | None  # parameter fqn zeroed with the channel
    norm: str | None           # BatchNorm module fqn between them (weight/bias/running stats zeroed)
    consumer: str              # weight fqn; dim 1 is sliced
    channels: int


def _out_channels(mod: nn.Module) -> int:
    return mod.out_features if isinstance(mod, nn.Linear) else mod.out_channels


def _in_channels(mod: nn.Module) -> int:
    return mod.in_features if isinstance(mod, nn.Linear) else mod.in_channels


def _grouped(mod: nn.Module) -> bool:
    return getattr(mod, "groups", 1) != 1


def _channelwise(node: torch.fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[node.target], _CHANNELWISE_MODULES)
    if node.op == "call_function":
        return node.target in _CHANNELWISE_FUNCTIONS
    return node.op == "call_method" and node.target in _CHANNELWISE_METHODS


def _follow(node: torch.fx.Node, modules: dict[str, nn.Module]) -> tuple[str | None, str | None]:
    """(norm fqn, consumer module fqn) reached from a producer node, or (None, None)."""
    norm = None
    while True:
        users = list(node.users)
        if len(users) != 1:
            return None, None
        node = users[0]
        if node.op == "call_module" and isinstance(modules[node.target], _GEMMS):
            return norm, str(node.target)
        if node.op == "call_module" and isinstance(modules[node.target], _NORMS) and norm is None:
            norm = str(node.target)
            continue
        if not _channelwise(node, modules) or node.target is operator.add:
            return None, None


def _from_coupling(model: nn.Module, *, sparsified: set[str], example_input: torch.Tensor) -> list[ChannelGroup]:
    """The Chase-removable groups of simsparse.graph.coupling on the traced model."""
    from simsparse.graph.coupling import channel_groups
    from simsparse.graph.tracing import trace
    workload = trace(model, (example_input[:1],), name=type(model).__name__)
    ops = {o.name: o for o in workload.ops}
    modules = dict(model.named_modules())
    out = []
    for g in channel_groups(workload):
        if g.open or len(g.producers) != 1 or len(g.consumers) != 1:
            continue
        prod_w, cons_w = g.producers[0], g.consumers[0]
        norms = [f for f in g.followers if ops[f].kind == "norm"]
        prod, cons = modules.get(prod_w.rsplit(".", 1)[0]), modules.get(cons_w.rsplit(".", 1)[0])
        if (len(norms) > 1 or prod is None or cons is None or type(prod) is not type(cons)
                or _in_channels(cons) != g.channels or _grouped(prod) or _grouped(cons)
                or prod_w not in sparsified or cons_w not in sparsified
                or (norms and not isinstance(modules.get(norms[0]), _NORMS))):
            continue
        bias = prod_w.rsplit(".", 1)[0] + ".bias" if getattr(prod, "bias", None) is not None else None
        out.append(ChannelGroup(producer=prod_w, producer_bias=bias, norm=norms[0] if norms else None,
                                consumer=cons_w, channels=g.channels))
    return out


def removable_channel_groups(model: nn.Module, *, sparsified: set[str],
                             example_input: torch.Tensor | None = None) -> list[ChannelGroup]:
    """Channel groups of `model`: from the coupling graph when possible, else the fx rule above."""
    if example_input is not None:
        try:
            return _from_coupling(model, sparsified=sparsified, example_input=example_input)
        except Exception:  # noqa: BLE001 - coupling unavailable or untraceable: use the fx rule
            pass
    return _fx_groups(model, sparsified=sparsified)


def _fx_groups(model: nn.Module, *, sparsified: set[str]) -> list[ChannelGroup]:
    """The fx rule of the module docstring (empty when the model cannot be traced)."""
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - untraceable models simply have no removable channels
        return []
    modules = dict(model.named_modules())
    groups = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], _GEMMS):
            continue
        prod = modules[node.target]
        norm, consumer_name = _follow(node, modules)
        if consumer_name is None or _grouped(prod):
            continue
        cons = modules[consumer_name]
        if _grouped(cons) or _in_channels(cons) != _out_channels(prod) or type(cons) is not type(prod):
            continue
        p_w, c_w = f"{node.target}.weight", f"{consumer_name}.weight"
        if p_w not in sparsified or c_w not in sparsified:
            continue
        bias = f"{node.target}.bias" if getattr(prod, "bias", None) is not None else None
        groups.append(ChannelGroup(producer=p_w, producer_bias=bias, norm=norm, consumer=c_w,
                                   channels=_out_channels(prod)))
    return groups
