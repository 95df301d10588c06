"""The native simsparse checkpoint: a `torch.save` of plain tensors and primitives only,
loadable with `torch.load(weights_only=True)`:

    {"format": "simsparse-masks", "version": 1,
     "masks":    {fqn: bool tensor},
     "weights":  {fqn: float tensor}            (optional, same shapes as the masks)
     "geometry": geometry_io.workload_to_dict(...)  (optional)
     "state":    {fqn: tensor}                  (optional: the model's whole state_dict, norms and
                                                 biases included, so the network can be rebuilt:
                                                 `simsparse shrink` reads and writes it)
     "meta":     {method, hyperparameters, accuracy, train FLOPs, provenance, history, ...}}

`meta` must be plain data (None/bool/int/float/str, lists/tuples, dicts with str keys);
numpy scalars are converted. Files are written atomically by simsparse.fileio.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from simsparse.errors import CheckpointError, GeometryError
from simsparse.fileio import atomic_writer
from simsparse.geometry_io import workload_from_dict, workload_to_dict
from simsparse.masks.loaders_common import (Loader, RawCheckpoint, build_maskset, check_finite, check_shape,
                                            mask_to_numpy, register, weight_to_numpy)
from simsparse.records import MaskSet, Workload

FORMAT_NAME = "simsparse-masks"
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------- save


def plain_meta(value: Any, *, where: str = "meta") -> Any:
    """`value` checked (and numpy scalars converted) as plain data; raises CheckpointError if not."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, (list, tuple)):
        return [plain_meta(v, where=f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise CheckpointError(f"{where} has a non-string key {k!r}; checkpoint meta keys must be strings")
            out[k] = plain_meta(v, where=f"{where}[{k!r}]")
        return out
    raise CheckpointError(f"{where} holds a {type(value).__name__}; checkpoint meta must be plain data "
                          "(None, bool, int, float, str, lists, dicts with str keys)")


def _as_tensor(value: Any, *, fqn: str, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    raise CheckpointError(f"{what} {fqn!r} is a {type(value).__name__}; pass a numpy array or torch tensor")


def _payload(masks: Mapping[str, Any], weights: Mapping[str, Any] | None,
             geometry: Workload | None, meta: dict | None, state: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if not masks:
        raise CheckpointError("no masks to save; pass at least one {fqn: mask}")
    out_masks: dict[str, torch.Tensor] = {}
    for fqn, m in masks.items():
        if not isinstance(fqn, str) or not fqn:
            raise CheckpointError(f"mask key {fqn!r} is not a tensor name; key masks by fully-qualified name")
        arr = mask_to_numpy(_as_tensor(m, fqn=fqn, what="mask"), fqn=fqn, source="save")
        out_masks[fqn] = torch.from_numpy(arr)
    payload: dict[str, Any] = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "masks": out_masks,
                               "meta": plain_meta(dict(meta or {}))}
    if weights is not None:
        out_w: dict[str, torch.Tensor] = {}
        for fqn, w in weights.items():
            if fqn not in out_masks:
                raise CheckpointError(f"weight {fqn!r} has no mask; save a mask for every weight")
            t = _as_tensor(w, fqn=fqn, what="weight").clone()
            check_shape(out_masks[fqn].numpy(), tuple(t.shape), fqn=fqn, source="save")
            check_finite(t, fqn=fqn, source="save")
            out_w[fqn] = t
        payload["weights"] = out_w
    if geometry is not None:
        payload["geometry"] = workload_to_dict(geometry)
    if state is not None:
        payload["state"] = {str(k): _as_tensor(v, fqn=str(k), what="state tensor").clone() for k, v in state.items()}
    return payload


def save(path: str | os.PathLike, *, masks: Mapping[str, np.ndarray | torch.Tensor],
         weights: Mapping[str, np.ndarray | torch.Tensor] | None = None,
         geometry: Workload | None = None, meta: dict | None = None,
         state: Mapping[str, np.ndarray | torch.Tensor] | None = None) -> None:
    """Write a native checkpoint atomically: a failure never leaves a partial file at `path`."""
    target = Path(path)
    if target.is_dir():
        raise CheckpointError(f"{target} is a directory; pass a file path such as {target / 'masks.pt'}")
    if not target.parent.is_dir():
        raise CheckpointError(f"folder {target.parent} does not exist; create it first")
    payload = _payload(masks, weights, geometry, meta, state)
    with atomic_writer(target, what="checkpoint") as fh:
        torch.save(payload, fh)


# ----------------------------------------------------------------------------- load


def _sniff(raw: RawCheckpoint) -> bool:
    return isinstance(raw.obj, Mapping) and raw.obj.get("format") == FORMAT_NAME


def _geometry(raw: RawCheckpoint, masks: Mapping[str, np.ndarray]) -> Workload | None:
    data = raw.obj.get("geometry")
    if data is None:
        return None
    try:
        workload = workload_from_dict(data, source=f"{raw.path}: geometry")
    except GeometryError as exc:
        raise CheckpointError(str(exc)) from None
    for op in workload.ops:
        if op.name in masks and op.weight_shape is not None:
            check_shape(masks[op.name], tuple(op.weight_shape), fqn=op.name, source=raw.path)
    return workload


META_VALUES = 200_000  # values native meta may hold once shared parts are written out (JSON renders it whole)


def _meta_copy(value: Any, *, source: str, budget: list[int] | None = None) -> Any:
    """An unshared copy of native meta, refused when it expands past META_VALUES values."""
    budget = [META_VALUES] if budget is None else budget
    budget[0] -= 1
    if budget[0] < 0:
        raise CheckpointError(f"{source}: its meta expands to more than {META_VALUES} values (shared lists "
                              "repeated many times?); re-save the checkpoint with simsparse")
    if isinstance(value, Mapping):
        return {str(k): _meta_copy(v, source=source, budget=budget) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_meta_copy(v, source=source, budget=budget) for v in value]
    return value


def _load(raw: RawCheckpoint) -> MaskSet:
    obj, src = raw.obj, raw.path
    version = obj.get("version")
    if type(version) is not int or version < 1:
        raise CheckpointError(f"{src}: native checkpoint has no valid version; re-save it with simsparse")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{src}: native format version {version} is newer than this simsparse "
                              f"reads ({FORMAT_VERSION}); upgrade simsparse")
    raw_masks, raw_weights = obj.get("masks"), obj.get("weights")
    if not isinstance(raw_masks, Mapping):
        raise CheckpointError(f"{src}: native checkpoint has no 'masks' table; re-save it with simsparse")
    if raw_weights is not None and not isinstance(raw_weights, Mapping):
        raise CheckpointError(f"{src}: 'weights' is not a table of tensors; re-save it with simsparse")
    masks = {str(k): mask_to_numpy(v, fqn=str(k), source=src) for k, v in raw_masks.items()}
    weights = None
    if raw_weights is not None:
        weights = {}
        for fqn, w in raw_weights.items():
            if fqn not in masks or not isinstance(w, torch.Tensor):
                raise CheckpointError(f"{src}: weight {fqn!r} has no mask or is not a tensor; re-save it")
            check_shape(masks[fqn], tuple(w.shape), fqn=fqn, source=src)
            check_finite(w, fqn=fqn, source=src)
            weights[fqn] = weight_to_numpy(w)
    meta = _meta_copy(obj.get("meta"), source=src) if isinstance(obj.get("meta"), Mapping) else {}
    return build_maskset(raw=raw, fmt="native", masks=masks,
                         weights=weights if raw.keep_weights else None,
                         mask_source={f: "native masks" for f in masks}, meta=dict(meta),
                         geometry=_geometry(raw, masks))


register(Loader("native", _sniff, _load))
