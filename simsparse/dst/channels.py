"""Which output channels Chase may remove, and what goes with them: `graph.coupling`'s one rule.

The model is traced once (`graph.tracing.trace`, on a sample input) and `graph.coupling.pair_groups` gives
the channel spaces that one producer and one consumer can shrink alone: the first two convs of every
bottleneck, the first conv of every basic/WRN block, every VGG conv but the last, the hidden
neurons of an MLP. Residual spaces, the stem feeding them and the classifier's inputs are not
removable. Here each such group is bound to the model's modules (the producer's bias and the norm
module whose per-channel entries are zeroed with the channel) and kept when both weights are masked.

A model that cannot be traced raises `ChannelTracingError` (a GeometryError naming the model and
the cause); the caller decides to stop or to run without channel removal and record that it did.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from simsparse.errors import GeometryError
from simsparse.graph.coupling import pair_groups
from simsparse.graph.tracing import trace

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class ChannelTracingError(GeometryError):
    """The channel coupling of a model could not be traced."""


@dataclass(frozen=True)
class RemovableChannels:
    """Output channels of `producer` whose removal also removes `consumer`'s input slices (dim 1)."""

    producer: str              # weight fqn; rows are the removable channels
    producer_bias: str | None  # parameter fqn zeroed with the channel
    norm: str | None           # norm module fqn between them (weight/bias/running mean zeroed)
    consumer: str              # weight fqn; dim 1 is sliced
    channels: int


def removable_channel_groups(model: nn.Module, *, sparsified: set[str],
                             example_input: torch.Tensor) -> list[RemovableChannels]:
    """The removable channel groups of `model` (ChannelTracingError when it cannot be traced)."""
    name = type(model).__name__
    try:
        workload = trace(model, (example_input[:1],), name=name)
        groups = pair_groups(workload)
    except GeometryError as exc:
        raise ChannelTracingError(f"cannot trace the channel coupling of {name}: {str(exc).splitlines()[0]}") from None
    modules = dict(model.named_modules())
    kinds = {o.name: o.kind for o in workload.ops}
    out = []
    for g in groups:
        prod_w, cons_w = g.producers[0], g.consumers[0]
        norms = [f for f in g.followers if kinds[f] == "norm"]
        if prod_w not in sparsified or cons_w not in sparsified:
            continue
        if norms and not isinstance(modules.get(norms[0]), _NORMS):
            continue  # a norm that mixes channels (LayerNorm, GroupNorm) cannot lose one channel alone
        prod = modules[prod_w.rsplit(".", 1)[0]]
        bias = prod_w.rsplit(".", 1)[0] + ".bias" if getattr(prod, "bias", None) is not None else None
        out.append(RemovableChannels(producer=prod_w, producer_bias=bias, norm=norms[0] if norms else None,
                                     consumer=cons_w, channels=g.channels))
    return out
