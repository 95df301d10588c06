"""Loaders for checkpoints of other DST code bases and for safetensors files.

SRigL (calgaryml/condensed-sparsity, `Checkpoint.get_state()`): {'model': state_dict,
'pruner': {'backward_masks': [mask | None, ...] in get_W (module DFS) order, 'hyperparams', ...},
'cfg': pickled omegaconf object, 'checkpoint_dir'/'parent_dir': pathlib paths, 'epoch', ...}.
Masks come from weight != 0 (the robust route). The pruner's masks are then aligned to the
weights in state-dict order by shape; where one covers every nonzero weight of its layer it is
used instead (RigL regrows weights at exactly 0, which weight != 0 would miss), otherwise the
disagreement is noted and weight != 0 is kept.

Chase (Yin et al. repo): {'epoch', 'state_dict', 'optimizer'} (CIFAR) or with 'arch',
'best_prec1' and `module.` prefixes (ImageNet). No masks are saved: mask = weight != 0, and an
output channel whose whole filter is zero is reported under provenance 'removed_channels'.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from simsparse.errors import CheckpointError
from simsparse.masks.loaders_common import (Loader, RawCheckpoint, build_maskset, mask_to_numpy, plain, register,
                                            scalar_meta, strip_prefixes, unwrap_state_dict)
from simsparse.masks.loaders_torch import parse_flat
from simsparse.masks.safe_pickle import is_placeholder
from simsparse.records import MaskSet

# ----------------------------------------------------------------------------- SRigL


def _pruner_state(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    pruner = obj.get("pruner")
    if is_placeholder(pruner):
        pruner = pruner.state
    return pruner if isinstance(pruner, Mapping) else {}


def _sniff_srigl(raw: RawCheckpoint) -> bool:
    obj = raw.obj
    return (isinstance(obj, Mapping) and "model" in obj and "pruner" in obj
            and unwrap_state_dict({"model": obj["model"]}) is not None)


def _align(masks: Mapping[str, np.ndarray], backward: list[Any]) -> list[tuple[str, Any]]:
    """Pair the pruner's non-None masks with weights (state-dict order) by shape, greedily."""
    names = list(masks)
    pairs, j = [], 0
    for m in backward:
        if not isinstance(m, torch.Tensor):
            continue
        while j < len(names) and tuple(masks[names[j]].shape) != tuple(m.shape):
            j += 1
        if j == len(names):
            break
        pairs.append((names[j], m))
        j += 1
    return pairs


def _cross_check(masks: dict[str, np.ndarray], labels: dict[str, str], backward: list[Any], *,
                 source: str) -> list[str]:
    notes = []
    pairs = _align(masks, backward)
    n_masks = sum(isinstance(m, torch.Tensor) for m in backward)
    if len(pairs) < n_masks:
        notes.append(f"only {len(pairs)} of {n_masks} pruner.backward_masks line up with weights by shape")
    for fqn, m in pairs:
        pruner_mask = mask_to_numpy(m, fqn=f"pruner.backward_masks[{fqn}]", source=source)
        outside = int(np.count_nonzero(masks[fqn] & ~pruner_mask))
        if outside:
            notes.append(f"{fqn}: {outside} nonzero weights lie outside pruner.backward_masks; used weight != 0")
            continue
        zero_inside = int(np.count_nonzero(pruner_mask & ~masks[fqn]))
        if zero_inside:
            notes.append(f"{fqn}: {zero_inside} active positions hold weights of exactly 0 (regrown)")
        masks[fqn] = pruner_mask
        labels[fqn] = "pruner.backward_masks"
    return notes


def _load_srigl(raw: RawCheckpoint) -> MaskSet:
    obj = raw.obj
    sd = unwrap_state_dict({"model": obj["model"]})
    flat = parse_flat(sd, source=raw.path, keep_weights=raw.keep_weights)
    pruner = _pruner_state(obj)
    backward = pruner.get("backward_masks")
    notes = list(flat.notes)
    if isinstance(backward, (list, tuple)):
        notes += _cross_check(flat.masks, flat.mask_source, list(backward), source=raw.path)
    else:
        notes.append("no pruner.backward_masks list; masks are weight != 0")
    meta = scalar_meta(obj, ("run_id", "epoch", "step", "best_acc", "current_acc"))
    meta["pruner"] = {k: plain(pruner[k]) for k in ("dense_allocation", "hyperparams", "step", "rigl_steps")
                      if k in pruner}
    return build_maskset(raw=raw, fmt="srigl", masks=flat.masks, weights=flat.weights,
                         mask_source=flat.mask_source, meta=meta, notes=notes)


register(Loader("srigl", _sniff_srigl, _load_srigl))

# ----------------------------------------------------------------------------- Chase

_CHASE_KEYS = ("epoch", "optimizer", "best_prec1", "arch")


def _sniff_chase(raw: RawCheckpoint) -> bool:
    obj = raw.obj
    return (isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping)
            and any(k in obj for k in _CHASE_KEYS) and "pruner" not in obj)


def removed_channels(masks: Mapping[str, np.ndarray]) -> dict[str, list[int]]:
    """Output channels (rows / conv filters) whose whole mask is zero, per layer that has any."""
    out = {}
    for fqn, m in masks.items():
        rows = np.flatnonzero(~m.reshape(m.shape[0], -1).any(axis=1))
        if rows.size:
            out[fqn] = [int(r) for r in rows]
    return out


def _load_chase(raw: RawCheckpoint) -> MaskSet:
    sd = unwrap_state_dict({"state_dict": raw.obj["state_dict"]})
    if sd is None:
        raise CheckpointError(f"{raw.path}: 'state_dict' holds no tensors; pass the trained checkpoint")
    flat = parse_flat(sd, source=raw.path, keep_weights=raw.keep_weights)
    removed = removed_channels(flat.masks)
    # a trainer checkpoint {epoch, arch, state_dict, optimizer} is Chase's only with Chase's own key or
    # removed channels; otherwise it is read the same way but called what it is
    fmt = "chase" if "best_prec1" in raw.obj or removed else "trainer-checkpoint"
    return build_maskset(raw=raw, fmt=fmt, masks=flat.masks, weights=flat.weights,
                         mask_source=flat.mask_source, notes=flat.notes,
                         meta=scalar_meta(raw.obj, ("epoch", "arch", "best_prec1")),
                         extra={"removed_channels": removed})


register(Loader("chase", _sniff_chase, _load_chase))

# ----------------------------------------------------------------------------- safetensors


def _load_safetensors(raw: RawCheckpoint) -> MaskSet:
    sd = strip_prefixes(raw.obj)
    flat = parse_flat(sd, source=raw.path, keep_weights=raw.keep_weights)
    return build_maskset(raw=raw, fmt="safetensors", masks=flat.masks, weights=flat.weights,
                         mask_source=flat.mask_source, notes=flat.notes, meta=dict(raw.metadata))


register(Loader("safetensors", lambda raw: raw.container == "safetensors", _load_safetensors))
