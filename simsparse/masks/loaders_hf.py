"""Checkpoints as Hugging Face and the PyTorch pruning tools write them, read without importing
those libraries.

Containers (`read_hf`): a model directory (`config.json` + `*.safetensors` or `pytorch_model*.bin`
shards) or a sharded index (`model.safetensors.index.json` / `pytorch_model.bin.index.json`,
whose `weight_map` names the shard of every tensor). Every shard is read (a missing one, named by
the index or by the `-0000i-of-0000n` numbering of a directory without one, is an error, never
silently dense) and merged into one state dict; `config.json` rides along in the
metadata as `hf_config`.

Loaders:
- `compressed_tensors`: compressed-tensors `sparse-bitmask` (keys `<layer>.compressed` 1-D values,
  `<layer>.bitmask` uint8 [rows, ceil(cols/8)] packed little-endian along the last axis,
  `<layer>.shape` the dense shape, `<layer>.row_offsets` where each row starts in the values) and
  `sparse-24-bitmask` (values [rows, cols/2], the shape as a column, no row offsets). The mask is the
  unpacked bitmask; its population must equal the number of values (and the row offsets, when
  present, their running row counts). `sparsity_config` (`quantization_config.sparsity_config`
  or `compression_config.sparsity_config` of config.json) is kept as meta. Uncompressed layers
  (the `ignore` list, e.g. lm_head) are read as plain weights (mask = weight != 0).
- `hf_directory`: plain weights from a directory or index (mask = weight != 0, or any
  prune/parametrize/ASP convention `loaders_torch.parse_flat` reads).
- `torch_ao_sparsifier`: `BaseSparsifier.state_dict()` = {"state": {tensor_fqn: {"mask": ...}},
  "groups": [...]}, alone or under a "sparsifier" key beside the model's state dict ("model" /
  "state_dict"), whose `parametrizations.weight.original` give the shapes.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from simsparse.errors import CheckpointError
from simsparse.fileio import read_json
from simsparse.masks.loaders_common import (Loader, RawCheckpoint, build_maskset, mask_to_numpy, register,
                                            strip_prefixes, tensor_dict, unwrap_state_dict)
from simsparse.masks.loaders_torch import parse_flat
from simsparse.masks.safe_pickle import is_placeholder
from simsparse.parse import MAX_RANK
from simsparse.records import MaskSet

INDEX_SUFFIXES = (".safetensors.index.json", ".bin.index.json")
MAX_JSON_BYTES = 64 * 2**20     # a shard index or config.json (Llama-3-70B's index: ~60 kB)
MAX_SHARDS = 10_000
SHARD_GLOBS = ("*.safetensors", "pytorch_model*.bin")
_NUMBERED = re.compile(r"(?P<stem>.+)-(?P<i>[0-9]+)-of-(?P<n>[0-9]+)\.(?P<ext>safetensors|bin)")


def is_hf_checkpoint(path: Path) -> bool:
    return path.is_dir() or path.name.endswith(INDEX_SUFFIXES)


def _shards(path: Path) -> tuple[list[Path], Path]:
    """(shard files, folder) of a directory or index file."""
    index = path if path.is_file() else next((path / n for n in ("model.safetensors.index.json",
                                                                  "pytorch_model.bin.index.json")
                                              if (path / n).is_file()), None)
    folder = path.parent if path.is_file() else path
    if index is not None:
        data = read_json(index, max_bytes=MAX_JSON_BYTES, what="shard index", error=CheckpointError)
        try:
            weight_map = data["weight_map"]
            names = sorted(set(str(v) for v in weight_map.values()))
        except (KeyError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{index}: not a readable shard index ({type(exc).__name__}); "
                                  "re-download model.safetensors.index.json") from None
        if len(names) > MAX_SHARDS:
            raise CheckpointError(f"{index}: names {len(names)} shards (more than {MAX_SHARDS}); "
                                  "the index is damaged or hostile")
        missing = [n for n in names if "/" in n or not (folder / n).is_file()]
        if missing:
            raise CheckpointError(f"{index}: shard {missing[0]} is missing ({len(missing)} of {len(names)}); "
                                  "download every shard the index names")
        return [folder / n for n in names], folder
    files = sorted({f for g in SHARD_GLOBS for f in folder.glob(g)})
    if not files:
        raise CheckpointError(f"{path} is a directory without *.safetensors or pytorch_model*.bin files; "
                              "pass a Hugging Face model directory or the checkpoint file inside it")
    _check_numbered(files, folder)
    return files, folder


def _check_numbered(files: list[Path], folder: Path) -> None:
    """Shards named `<stem>-0000i-of-0000n.<ext>` without an index: every i of 1..n must be there."""
    found: dict[tuple[str, int, str, int], set[int]] = {}
    for f in files:
        m = _NUMBERED.fullmatch(f.name)
        if m:
            key = (m["stem"], len(m["i"]), m["ext"], int(m["n"]))
            found.setdefault(key, set()).add(int(m["i"]))
    for (stem, width, ext, n), have in found.items():
        missing = [i for i in range(1, min(n, MAX_SHARDS) + 1) if i not in have]
        if missing:
            name = f"{stem}-{missing[0]:0{width}d}-of-{n:0{width}d}.{ext}"
            raise CheckpointError(f"{folder}: shard {name} is missing ({len(missing)} of {n}); "
                                  "download every shard of the checkpoint")


def read_hf(path: Path, *, keep_weights: bool, read_file) -> RawCheckpoint:
    """One merged RawCheckpoint of every shard (read by `read_file(shard) -> RawCheckpoint`)."""
    files, folder = _shards(path)
    merged: dict[str, Any] = {}
    foreign: list[str] = []
    for f in files:
        raw = read_file(f)
        sd = raw.obj if raw.container == "safetensors" else unwrap_state_dict(raw.obj)
        if not isinstance(sd, Mapping):
            raise CheckpointError(f"{f}: shard holds no state dict; re-download it")
        clash = next((k for k in sd if k in merged), None)
        if clash is not None:
            raise CheckpointError(f"{f}: tensor {clash!r} is in two shards; the directory mixes two checkpoints")
        merged.update(sd)
        foreign += list(raw.foreign)
    metadata = {"shards": str(len(files))}
    cfg = folder / "config.json"
    if cfg.is_file():   # kept as text for the loaders (sparsity_config); read bounded, checked as JSON
        metadata["hf_config"] = json.dumps(read_json(cfg, max_bytes=MAX_JSON_BYTES, what="config.json",
                                                     error=CheckpointError))
    return RawCheckpoint(path=str(path), container="hf-directory", obj=merged, foreign=tuple(sorted(set(foreign))),
                         metadata=metadata, keep_weights=keep_weights)


def _config(raw: RawCheckpoint) -> dict:
    try:
        cfg = json.loads(raw.metadata.get("hf_config", "{}"))
    except ValueError:
        return {}
    return cfg if isinstance(cfg, dict) else {}


def sparsity_config(cfg: Mapping[str, Any]) -> dict:
    for section in ("quantization_config", "compression_config"):
        sub = cfg.get(section)
        if isinstance(sub, Mapping) and isinstance(sub.get("sparsity_config"), Mapping):
            return dict(sub["sparsity_config"])
    return {}


# ----------------------------------------------------------------------------- compressed-tensors

_CT_PARTS = ("compressed", "bitmask", "shape", "row_offsets")


def _ct_prefixes(sd: Mapping[str, Any]) -> list[str]:
    return [k[: -len(".bitmask")] for k in sd if k.endswith(".bitmask")
            and f"{k[:-len('.bitmask')]}.compressed" in sd and f"{k[:-len('.bitmask')]}.shape" in sd]


def unpack_bitmask(bitmask: torch.Tensor, shape: tuple[int, ...], *, fqn: str, source: str) -> np.ndarray:
    packed = bitmask.detach().cpu().numpy()
    rows, cols = shape[0], math.prod(shape[1:])
    if packed.dtype.itemsize != 1 or packed.shape != (rows, -(-cols // 8)):
        raise CheckpointError(f"{source}: {fqn}.bitmask has shape {tuple(packed.shape)}, expected "
                              f"({rows}, {-(-cols // 8)}) bytes for dense shape {shape}; the file is damaged")
    bits = np.unpackbits(packed.view(np.uint8), axis=-1, count=cols, bitorder="little")
    return bits.astype(bool).reshape(shape)


def _ct_mask(sd: Mapping[str, Any], prefix: str, *, source: str) -> np.ndarray:
    fqn = f"{prefix}.weight"
    declared = sd[f"{prefix}.shape"]
    if not isinstance(declared, torch.Tensor) or not 2 <= declared.numel() <= MAX_RANK:
        raise CheckpointError(f"{source}: {prefix}.shape is not a weight shape (2 to {MAX_RANK} sizes); damaged file")
    shape = tuple(int(x) for x in declared.flatten().tolist())
    if min(shape) < 1:
        raise CheckpointError(f"{source}: {prefix}.shape = {shape} is not a weight shape")
    # the declared dense shape against the real bytes: the bitmask (checked in unpack_bitmask before
    # anything is unpacked) holds ceil(cols / 8) bytes per row, so the mask is at most 8x its bytes
    mask = unpack_bitmask(sd[f"{prefix}.bitmask"], shape, fqn=prefix, source=source)
    values = int(sd[f"{prefix}.compressed"].numel())
    if int(mask.sum()) != values:
        raise CheckpointError(f"{source}: {prefix}.bitmask marks {int(mask.sum())} weights but "
                              f"{prefix}.compressed holds {values}; the file is damaged")
    offsets = sd.get(f"{prefix}.row_offsets")
    if isinstance(offsets, torch.Tensor):
        counts = mask.reshape(shape[0], -1).sum(axis=1)
        if not np.array_equal(offsets.flatten().cpu().numpy(), np.cumsum(counts) - counts):
            raise CheckpointError(f"{source}: {prefix}.row_offsets disagree with the bitmask's rows; damaged file")
    return mask


def _load_compressed_tensors(raw: RawCheckpoint) -> MaskSet:
    sd = strip_prefixes(tensor_dict(raw.obj) or {})
    prefixes = _ct_prefixes(sd)
    masks = {f"{p}.weight": _ct_mask(sd, p, source=raw.path) for p in prefixes}
    consumed = {f"{p}.{part}" for p in prefixes for part in _CT_PARTS}
    flat = parse_flat({k: v for k, v in sd.items() if k not in consumed}, source=raw.path,
                      keep_weights=raw.keep_weights)
    masks.update(flat.masks)
    source = {**{f: "compressed-tensors bitmask" for f in masks if f not in flat.masks}, **flat.mask_source}
    cfg = sparsity_config(_config(raw))
    fmt = cfg.get("format") if cfg.get("format") in ("sparse-bitmask", "sparse-24-bitmask") else "sparse-bitmask"
    return build_maskset(raw=raw, fmt=f"compressed-tensors {fmt}", masks=masks, weights=None, mask_source=source,
                         meta={"sparsity_config": cfg}, notes=flat.notes,
                         extra={"consumed_keys": sorted(consumed)})


register(Loader("compressed_tensors", lambda raw: bool(_ct_prefixes(tensor_dict(raw.obj) or {})),
                _load_compressed_tensors))


def _load_hf_directory(raw: RawCheckpoint) -> MaskSet:
    flat = parse_flat(strip_prefixes(tensor_dict(raw.obj) or {}), source=raw.path, keep_weights=raw.keep_weights)
    return build_maskset(raw=raw, fmt="hf-directory", masks=flat.masks, weights=flat.weights,
                         mask_source=flat.mask_source, notes=flat.notes,
                         meta={"shards": raw.metadata.get("shards"), "model_type": _config(raw).get("model_type")})


register(Loader("hf_directory", lambda raw: raw.container == "hf-directory", _load_hf_directory))

# ----------------------------------------------------------------------------- torch.ao sparsifier


def _state_of(obj: Any) -> tuple[Mapping[str, Any] | None, Any]:
    """(sparsifier state {fqn: {"mask": ...}}, the model state dict beside it or None)."""
    if not isinstance(obj, Mapping):
        return None, None
    sp = obj.get("sparsifier", obj)
    if is_placeholder(sp):
        sp = sp.state
    state = sp.get("state") if isinstance(sp, Mapping) else None
    if is_placeholder(state):   # a pickled defaultdict read inertly: its items hold the entries
        state = dict(state.entries) or dict(state.items)
    if not isinstance(state, Mapping) or not state or not all(
            isinstance(v, Mapping) and isinstance(v.get("mask"), torch.Tensor) for v in state.values()):
        return None, None
    model = {k: obj[k] for k in ("model", "state_dict") if k in obj and sp is not obj}
    return state, (unwrap_state_dict(model) if model else None)


def _load_sparsifier(raw: RawCheckpoint) -> MaskSet:
    state, model_sd = _state_of(raw.obj)
    masks, labels = {}, {}
    for fqn, entry in state.items():
        masks[str(fqn)] = mask_to_numpy(entry["mask"], fqn=str(fqn), source=raw.path)
        labels[str(fqn)] = "torch.ao sparsifier state mask"
    notes = []
    if model_sd:
        flat = parse_flat(model_sd, source=raw.path, keep_weights=False)
        for fqn, m in flat.masks.items():
            if fqn in masks and masks[fqn].shape != m.shape:
                raise CheckpointError(f"{raw.path}: sparsifier mask {fqn} has shape {masks[fqn].shape} but the "
                                      f"model's weight is {m.shape}; the two come from different models")
            if fqn not in masks:
                masks[fqn], labels[fqn] = m, flat.mask_source[fqn]
    else:
        notes.append("sparsifier state only: masks without the model's weights")
    return build_maskset(raw=raw, fmt="torch-ao-sparsifier", masks=masks, weights=None, mask_source=labels, notes=notes)


register(Loader("torch_ao_sparsifier", lambda raw: _state_of(raw.obj)[0] is not None, _load_sparsifier))
