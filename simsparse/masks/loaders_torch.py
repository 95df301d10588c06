"""Loaders for flat PyTorch state dicts: plain (mask = weight != 0), torch.nn.utils.prune,
torch parametrizations (torch.ao sparsifier), NVIDIA ASP. One parser (`parse_flat`) reads all
four conventions, so a state dict that mixes them (some layers pruned, some plain) is read whole;
the loaders differ only in what they sniff and in the format name they report.

Key conventions (all keyed to the dense weight's name, `<module>.weight`):
  prune:        `<module>.weight_orig` + `<module>.weight_mask`
  parametrize:  `<module>.parametrizations.weight.original` + `<module>.parametrizations.weight.<i>.mask`
  ASP:          `<module>.weight` + bool buffer `<module>.__weight_mma_mask`
  plain:        `<module>.weight` (mask = weight != 0)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from simsparse.errors import CheckpointError
from simsparse.masks.loaders_common import (Loader, RawCheckpoint, build_maskset, check_finite, check_shape,
                                            is_maskable_weight, mask_to_numpy, register, unwrap_state_dict,
                                            weight_to_numpy)
from simsparse.records import MaskSet

_PARAM_ORIGINAL = re.compile(r"^(?P<base>.+)\.parametrizations\.(?P<p>[^.]+)\.original$")
_PARAM_MASK = re.compile(r"^(?P<base>.+)\.parametrizations\.(?P<p>[^.]+)\.(?P<i>\d+)\.mask$")
_ASP_MASK = re.compile(r"^(?:(?P<base>.+)\.)?__(?P<p>[A-Za-z0-9_]+?)_mma_mask$")


@dataclass(frozen=True)
class _Entry:
    fqn: str
    weight: torch.Tensor
    masks: tuple[torch.Tensor, ...]  # explicit masks (ANDed); empty -> weight != 0
    label: str                      # mask source for provenance


@dataclass(frozen=True)
class FlatMasks:
    masks: dict[str, np.ndarray]
    weights: dict[str, np.ndarray] | None
    mask_source: dict[str, str]
    notes: list[str]


def _prune_entries(sd: Mapping[str, torch.Tensor]) -> list[_Entry]:
    return [_Entry(key[:-5], sd[key[:-5] + "_orig"], (sd[key],), "prune buffer *_mask")
            for key in sd if key.endswith("_mask") and key[:-5] + "_orig" in sd]


def _param_entries(sd: Mapping[str, torch.Tensor]) -> list[_Entry]:
    masks: dict[str, list[tuple[int, torch.Tensor]]] = {}
    for key, value in sd.items():
        m = _PARAM_MASK.match(key)
        if m:
            masks.setdefault(f"{m['base']}.{m['p']}", []).append((int(m["i"]), value))
    out = []
    for key, value in sd.items():
        m = _PARAM_ORIGINAL.match(key)
        if m:
            fqn = f"{m['base']}.{m['p']}"
            found = tuple(t for _, t in sorted(masks.get(fqn, []), key=lambda it: it[0]))
            out.append(_Entry(fqn, value, found, "parametrization mask" if found else "weight != 0"))
    return out


def _asp_entries(sd: Mapping[str, torch.Tensor], *, source: str) -> list[_Entry]:
    out = []
    for key, value in sd.items():
        m = _ASP_MASK.match(key)
        if m:
            fqn = f"{m['base']}.{m['p']}" if m["base"] else m["p"]
            if fqn not in sd:
                raise CheckpointError(f"{source}: ASP mask {key!r} has no weight {fqn!r} beside it; "
                                      "save the full model state_dict")
            out.append(_Entry(fqn, sd[fqn], (value,), "ASP buffer __*_mma_mask"))
    return out


def _consumed(entry: _Entry, sd: Mapping[str, torch.Tensor]) -> set[str]:
    keys = {entry.fqn, entry.fqn + "_orig", entry.fqn + "_mask"}
    base, _, p = entry.fqn.rpartition(".")
    keys.add(f"{base}.__{p}_mma_mask" if base else f"__{p}_mma_mask")
    keys |= {k for k in sd if k.startswith(f"{base}.parametrizations.{p}.")}
    return keys


def _consumed_keys(entries: list[_Entry], sd: Mapping[str, torch.Tensor]) -> set[str]:
    keys: set[str] = set()
    for e in entries:
        keys |= _consumed(e, sd)
    return keys


def _resolve(entry: _Entry, *, source: str) -> tuple[np.ndarray, torch.Tensor]:
    """The entry's mask (bool numpy) and effective weight (weight * mask)."""
    check_finite(entry.weight, fqn=entry.fqn, source=source)
    if not entry.masks:
        return (entry.weight != 0).cpu().numpy(), entry.weight
    mask = np.ones(tuple(entry.weight.shape), dtype=bool)
    for m in entry.masks:
        arr = mask_to_numpy(m, fqn=entry.fqn, source=source)
        check_shape(arr, tuple(entry.weight.shape), fqn=entry.fqn, source=source)
        mask &= arr
    effective = entry.weight * torch.from_numpy(mask).to(entry.weight.dtype)
    return mask, effective


def parse_flat(sd: Mapping[str, torch.Tensor], *, source: str, keep_weights: bool) -> FlatMasks:
    """Masks of every maskable weight of a flat state dict, whatever convention each layer uses."""
    order = {k: i for i, k in enumerate(sd)}
    entries = _prune_entries(sd) + _param_entries(sd) + _asp_entries(sd, source=source)
    position: dict[str, int] = {}
    for e in entries:
        position[e.fqn] = min(order[k] for k in _consumed(e, sd) if k in order)
    consumed = _consumed_keys(entries, sd)
    entries += [_Entry(k, v, (), "weight != 0") for k, v in sd.items()
                if k not in consumed and is_maskable_weight(k, v)]
    masks: dict[str, np.ndarray] = {}
    weights: dict[str, np.ndarray] = {}
    labels: dict[str, str] = {}
    notes: list[str] = []
    for e in entries:
        if e.weight.ndim not in (2, 4) or not e.weight.is_floating_point():
            notes.append(f"skipped {e.fqn}: masks are read for 2-D/4-D float weights only")
            continue
        mask, effective = _resolve(e, source=source)
        masks[e.fqn] = np.ascontiguousarray(mask, dtype=bool)
        labels[e.fqn] = e.label
        if keep_weights:
            weights[e.fqn] = weight_to_numpy(effective)
    bare = [e.fqn for e in entries if e.label == "weight != 0" and f"{e.fqn.rpartition('.')[0]}.parametrizations."
            f"{e.fqn.rpartition('.')[2]}.original" in sd]
    if bare:   # torch.ao's FakeSparsity keeps its mask out of state_dict(): the weights here are unmasked
        notes.append(f"{len(bare)} parametrized weights ({bare[0]}, ...) carry no mask, so density is read from "
                     "weight != 0: call squash_mask() before saving, or save sparsifier.state_dict() too")
    ranked = sorted(masks, key=lambda f: position.get(f, order.get(f, len(order))))  # state-dict order
    return FlatMasks(masks={f: masks[f] for f in ranked},
                     weights={f: weights[f] for f in ranked} if keep_weights else None,
                     mask_source={f: labels[f] for f in ranked}, notes=notes)


# ----------------------------------------------------------------------------- loaders


def _flat(raw: RawCheckpoint) -> dict[str, torch.Tensor] | None:
    return unwrap_state_dict(raw.obj)


def _load_as(fmt: str):
    def load(raw: RawCheckpoint) -> MaskSet:
        sd = _flat(raw)
        if sd is None:
            raise CheckpointError(f"{raw.path}: no tensors found; pass a checkpoint holding a state_dict")
        flat = parse_flat(sd, source=raw.path, keep_weights=raw.keep_weights)
        return build_maskset(raw=raw, fmt=fmt, masks=flat.masks, weights=flat.weights,
                             mask_source=flat.mask_source, notes=flat.notes)
    return load


def _sniff_keys(predicate):
    def sniff(raw: RawCheckpoint) -> bool:
        sd = _flat(raw)
        return sd is not None and any(predicate(k, sd) for k in sd)
    return sniff


register(Loader("prune", _sniff_keys(lambda k, sd: k.endswith("_mask") and k[:-5] + "_orig" in sd),
                _load_as("prune")))
register(Loader("parametrize", _sniff_keys(lambda k, sd: bool(_PARAM_ORIGINAL.match(k))), _load_as("parametrize")))
register(Loader("asp", _sniff_keys(lambda k, sd: bool(_ASP_MASK.match(k))), _load_as("asp")))
register(Loader("state_dict", lambda raw: _flat(raw) is not None, _load_as("state_dict")))
