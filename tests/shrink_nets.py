"""Small networks and helpers for the shrinking tests: traced torch modules, channel-pruned weights
(the way Chase leaves them: producer rows, consumer input slices, biases and norm entries zero) and
the physically shrunk model."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from simsparse.graph.shrink import NetworkShrink, Removal, plan, removal_of_pattern
from simsparse.graph.shrink_state import bias_name, shrink_state
from simsparse.graph.synthetic import channel_network
from simsparse.graph.tracing import trace
from simsparse.masks.synthetic import parse_pattern
from simsparse.models import build_model
from simsparse.models.resize import fit_to_state
from simsparse.records import Workload


class FlattenNet(nn.Module):
    """conv 3->8 (3x3) -> BN -> ReLU -> flatten (8x4x4) -> Linear 128 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.bn(self.conv(x))), 1))


class DepthwiseNet(nn.Module):
    """MobileNet-like: 1x1 expand 8->16, BN, ReLU, 3x3 depthwise (16 groups), BN, ReLU, 1x1 project
    16->8, BN, global pool, Linear 8->4."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = nn.Conv2d(8, 16, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.project = nn.Conv2d(16, 8, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.relu(self.bn1(self.expand(x)))
        x = torch.relu(self.bn2(self.dw(x)))
        x = self.bn3(self.project(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def traced(model: nn.Module, x: torch.Tensor, name: str = "net") -> Workload:
    return trace(model.eval(), (x,), name=name)


def masks_of(model: nn.Module, workload: Workload) -> dict[str, np.ndarray]:
    """weight != 0 of every conv/linear op."""
    state = model.state_dict()
    return {o.name: (state[o.name] != 0).numpy() for o in workload.ops if o.kind in ("conv", "linear")}


def zero_removed(model: nn.Module, ns: NetworkShrink) -> None:
    """Zero what a channel-pruning trainer zeroes with a removed channel: the producer rows and bias,
    the consumers' input slices, the norm entries (weight, bias, running mean)."""
    state = model.state_dict()
    with torch.no_grad():
        for name, rec in ns.ops.items():
            if rec.kept_out is not None:
                gone = np.setdiff1d(np.arange(rec.channels), rec.kept_out)
                for key in (name, bias_name(name), f"{name}.weight", f"{name}.bias", f"{name}.running_mean"):
                    if key in state and state[key].shape[0] == rec.channels:
                        state[key][gone] = 0
            if rec.kept_in is not None and name in state:
                gone_in = np.setdiff1d(np.arange(state[name].shape[1]), rec.kept_in)
                state[name][:, gone_in] = 0
    model.load_state_dict(state)


def channel_pruned(model: nn.Module, workload: Workload, pattern: str, *, seed: int = 1,
                   policy: str = "prune-skip") -> NetworkShrink:
    """Prune `model` in place to the channel network `pattern` describes; the plan of its shrink."""
    patterns = channel_network(workload, parse_pattern(pattern), seed=seed, policy=policy)
    ns = plan(workload, {n: removal_of_pattern(p) for n, p in patterns.items()}, policy=policy)
    zero_removed(model, ns)
    return ns


def physically_shrunk(model: nn.Module, ns: NetworkShrink, rebuild) -> nn.Module:
    """A fresh model from `rebuild()` fitted to and loaded with the shrunk state of `model`."""
    small = shrink_state(model.state_dict(), ns)
    out = fit_to_state(rebuild(), small).eval()
    out.load_state_dict(small)
    return out


def registered(name: str, shape, **options):
    """A factory of the registered model `name` (10 classes)."""
    return lambda: build_model(name, num_classes=10, input_shape=shape, **options).eval()


__all__ = ["DepthwiseNet", "FlattenNet", "Removal", "channel_pruned", "masks_of", "physically_shrunk",
           "registered", "traced", "zero_removed"]
