"""Build small checkpoints of every format simsparse reads, so tests can compare recovered masks
with the masks written. Every `make_<format>(path, ...)` writes one file and returns the expected
masks {fqn: np bool array}.

The MLP (`TinyMLP`): an embedding (never masked), a LayerNorm, `fc1` [16, 32] with a 2:4 mask,
`fc2` [8, 16] with constant fan-in 4 (two rows ablated in the SRigL variant). The conv net
(`TinyConvNet`, Chase): `conv1` [8, 3, 3, 3] with output channels 1 and 5 removed (whole filter
zero, and the matching input slices of `conv2` zeroed), `conv2` [8, 8, 3, 3] unstructured, `fc` [4, 8].
"""

from __future__ import annotations

import os
import pathlib
import shlex
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

MLP_LAYERS = ("fc1.weight", "fc2.weight")
CONV_LAYERS = ("conv1.weight", "conv2.weight", "fc.weight")
CHASE_REMOVED = {"conv1.weight": [1, 5]}


class TinyMLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 32)
        self.norm = nn.LayerNorm(32)
        self.fc1 = nn.Linear(32, 16)
        self.fc2 = nn.Linear(16, 8)


class TinyConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)


# ----------------------------------------------------------------------------- masks


def nm_mask(rows: int, cols: int, *, n: int, m: int, seed: int) -> np.ndarray:
    """Exactly n nonzeros in every group of m consecutive columns."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((rows, cols), dtype=bool)
    for r in range(rows):
        for g in range(0, cols, m):
            mask[r, g + rng.choice(m, size=n, replace=False)] = True
    return mask


def fanin_mask(rows: int, cols: int, *, k: int, seed: int, ablated: tuple[int, ...] = ()) -> np.ndarray:
    """Exactly k nonzeros per active row; rows in `ablated` are all zero."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((rows, cols), dtype=bool)
    for r in range(rows):
        if r not in ablated:
            mask[r, rng.choice(cols, size=k, replace=False)] = True
    return mask


def mlp_masks(*, ablated: tuple[int, ...] = ()) -> dict[str, np.ndarray]:
    return {"fc1.weight": nm_mask(16, 32, n=2, m=4, seed=1),
            "fc2.weight": fanin_mask(8, 16, k=4, seed=2, ablated=ablated)}


def chase_masks() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    conv1 = rng.random((8, 3, 3, 3)) < 0.5
    conv1[CHASE_REMOVED["conv1.weight"]] = False
    conv1[0, 0, 0, 0] = True  # keep every other channel alive
    conv1[[2, 3, 4, 6, 7], 0, 1, 1] = True
    conv2 = rng.random((8, 8, 3, 3)) < 0.3
    conv2[:, CHASE_REMOVED["conv1.weight"]] = False
    conv2[:, 0, 1, 1] = True
    fc = rng.random((4, 8)) < 0.5
    fc[:, 0] = True
    return {"conv1.weight": conv1, "conv2.weight": conv2, "fc.weight": fc}


# ----------------------------------------------------------------------------- models


def _nonzero_weights(module: nn.Module, seed: int) -> None:
    """Weights away from 0 so that mask = weight != 0 is exact."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((torch.rand(p.shape, generator=gen) + 0.1) * torch.sign(torch.randn(p.shape, generator=gen) + 1e-3))


def masked_mlp(masks: dict[str, np.ndarray], *, seed: int = 0) -> TinyMLP:
    model = TinyMLP()
    _nonzero_weights(model, seed)
    with torch.no_grad():
        for fqn, m in masks.items():
            model.get_parameter(fqn).mul_(torch.from_numpy(m).float())
    return model


def masked_convnet(masks: dict[str, np.ndarray], *, seed: int = 0) -> TinyConvNet:
    model = TinyConvNet()
    _nonzero_weights(model, seed)
    with torch.no_grad():
        for fqn, m in masks.items():
            model.get_parameter(fqn).mul_(torch.from_numpy(m).float())
    return model


def _prefixed(sd: dict[str, torch.Tensor], prefix: str) -> "OrderedDict[str, torch.Tensor]":
    return OrderedDict((prefix + k, v) for k, v in sd.items())


# ----------------------------------------------------------------------------- formats


def make_native(path: str | os.PathLike, *, with_weights: bool = True, geometry: Any = None,
                meta: dict | None = None) -> dict[str, np.ndarray]:
    from simsparse.masks.native import save

    masks = mlp_masks()
    model = masked_mlp(masks)
    weights = {f: model.get_parameter(f).detach() for f in masks} if with_weights else None
    save(path, masks=masks, weights=weights, geometry=geometry,
         meta=meta if meta is not None else {"method": "test", "sparsity": 0.5})
    return masks


def make_state_dict(path: str | os.PathLike, *, wrapper: str | None = None, ddp: bool = False) -> dict[str, np.ndarray]:
    """Plain state_dict (zeros are the mask), optionally under `wrapper` and with `module.` prefixes."""
    masks = mlp_masks()
    sd = masked_mlp(masks).state_dict()
    if ddp:
        sd = _prefixed(sd, "module.")
    torch.save({wrapper: sd} if wrapper else sd, path)
    return masks


def make_prune(path: str | os.PathLike) -> dict[str, np.ndarray]:
    import torch.nn.utils.prune as prune

    masks = mlp_masks()
    model = TinyMLP()
    _nonzero_weights(model, 0)
    for fqn, m in masks.items():
        prune.custom_from_mask(model.get_submodule(fqn.rsplit(".", 1)[0]), "weight", torch.from_numpy(m))
    torch.save(model.state_dict(), path)
    return masks


class _MaskParam(nn.Module):
    """What torch.ao.pruning's FakeSparsity is: a `mask` buffer multiplied in."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask * x


def make_parametrize(path: str | os.PathLike) -> dict[str, np.ndarray]:
    from torch.nn.utils import parametrize

    masks = mlp_masks()
    model = TinyMLP()
    _nonzero_weights(model, 0)
    for fqn, m in masks.items():
        parametrize.register_parametrization(model.get_submodule(fqn.rsplit(".", 1)[0]), "weight",
                                             _MaskParam(torch.from_numpy(m)))
    torch.save(model.state_dict(), path)
    return masks


def make_asp(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """NVIDIA ASP: weights pruned in place plus a bool buffer `__weight_mma_mask` per module."""
    masks = mlp_masks()
    model = masked_mlp(masks)
    for fqn, m in masks.items():
        model.get_submodule(fqn.rsplit(".", 1)[0]).register_buffer("__weight_mma_mask", torch.from_numpy(m))
    torch.save(model.state_dict(), path)
    return masks


def make_srigl(path: str | os.PathLike, *, cfg: Any = None, ddp: bool = False,
               regrown_zero: int = 0) -> dict[str, np.ndarray]:
    """SRigL repo layout; `regrown_zero` active weights of fc2 are set to exactly 0 (just regrown)."""
    masks = mlp_masks(ablated=(2, 5))
    model = masked_mlp(masks)
    if regrown_zero:
        rows, cols = np.nonzero(masks["fc2.weight"])
        with torch.no_grad():
            model.fc2.weight[rows[:regrown_zero], cols[:regrown_zero]] = 0.0
    sd = model.state_dict()
    if ddp:
        sd = _prefixed(sd, "module.")
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    pruner = {"dense_allocation": 0.25, "S": [0.5, 0.75], "N": [512, 128],
              "hyperparams": {"delta_T": 100, "alpha": 0.3, "T_end": 750, "ignore_linear_layers": False,
                              "static_topo": False, "sparsity_distribution": "erk", "grad_accumulation_n": 1},
              "step": 1000, "rigl_steps": 7,
              "backward_masks": [torch.from_numpy(masks["fc1.weight"]), torch.from_numpy(masks["fc2.weight"])],
              "_linear_layers_mask": [True, True]}
    torch.save({"run_id": "abc123", "cfg": cfg if cfg is not None else pathlib.PurePosixPath("/cfg/config.yaml"),
                "model": sd, "optimizer": opt.state_dict(), "scheduler": {"last_epoch": 3}, "pruner": pruner,
                "epoch": 3, "step": 1000, "best_acc": 0.91, "current_acc": 0.9, "is_best": True,
                "checkpoint_dir": pathlib.PurePosixPath("/artifacts/checkpoints/run"),
                "f_name": "checkpoint.pt.tar"}, path)
    return masks


def make_chase(path: str | os.PathLike, *, imagenet: bool = False) -> dict[str, np.ndarray]:
    masks = chase_masks()
    model = masked_convnet(masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sd = model.state_dict()
    if imagenet:
        state = {"epoch": 90, "arch": "resnet50", "state_dict": _prefixed(sd, "module."),
                 "best_prec1": 74.03, "optimizer": opt.state_dict()}
    else:
        state = {"epoch": 160, "state_dict": sd, "optimizer": opt.state_dict()}
    torch.save(state, path)
    return masks


def make_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    from safetensors.torch import save_file

    masks = mlp_masks()
    sd = {k: v.contiguous() for k, v in masked_mlp(masks).state_dict().items()}
    save_file(sd, str(path), metadata={"format": "pt", "method": "test"})
    return masks


# ----------------------------------------------------------------------------- hostile files


class RunsCommand:
    """Pickles as a call to os.system(command): loading it blindly would run the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class EvalsCode:
    """Pickles as builtins.eval(source)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self):
        import builtins

        return (builtins.eval, (self.source,))


def touch_command(marker: str | os.PathLike) -> str:
    return f"touch {shlex.quote(str(marker))}"


def make_malicious(path: str | os.PathLike, *, marker: str | os.PathLike, placement: str = "beside",
                   legacy: bool = False, via: str = "system") -> dict[str, np.ndarray]:
    """A state_dict checkpoint whose pickle would create `marker` if code from it ran.

    placement: "beside" (extra top-level key), "top" (the whole file is the payload),
    "inside" (a value inside the state_dict). via: "system" (os.system) or "eval" (builtins.eval).
    """
    payload = (RunsCommand(touch_command(marker)) if via == "system" else
               EvalsCode(f"open({str(marker)!r}, 'w').close()"))
    masks = mlp_masks()
    sd = masked_mlp(masks).state_dict()
    if placement == "top":
        obj: Any = payload
    elif placement == "inside":
        sd["fc2.extra"] = payload
        obj = {"state_dict": sd}
    else:
        obj = {"state_dict": sd, "hook": payload}
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return masks


ALL_FORMATS = {
    "native": make_native, "state_dict": make_state_dict, "prune": make_prune, "parametrize": make_parametrize,
    "asp": make_asp, "srigl": make_srigl, "chase": make_chase, "safetensors": make_safetensors,
}


def torch_load_trusted(path: str | os.PathLike) -> Any:
    """Reload a checkpoint this factory wrote (trusted: built by the test itself) to edit it."""
    return torch.load(path, map_location="cpu", weights_only=False)
