"""Load trained masks from a checkpoint of any supported format, safely.

`load(path) -> MaskSet` reads the file's container (torch zip, legacy torch pickle, safetensors),
then tries the loaders of `LOADERS` in `ORDER` (native, safetensors, srigl, chase, prune,
parametrize, asp, state_dict); the first whose `sniff` accepts the object reads it. Every problem
with the file is a `CheckpointError` carrying one line: what is wrong and how to fix it.

Safety: nothing in a checkpoint is ever executed. torch files are read with
`torch.load(weights_only=True)`; a zip checkpoint that this refuses because its pickle names
foreign classes (omegaconf configs, pathlib paths, pickled modules) is read again with
`safe_pickle.load_torch_zip`, which turns every unknown global into an inert placeholder.
Legacy (pre-1.6) torch files get only the weights-only route. Sizes a file declares are checked
before they are allocated, and what it unpickled before any loader walks it (masks/bounds.py).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from simsparse.errors import CheckpointError
from simsparse.masks import coverage, loaders_foreign, loaders_hf, loaders_torch, native  # noqa: F401  (register loaders)
from simsparse.masks.bounds import check_object_graph, check_safetensors, check_zip
from simsparse.masks.loaders_common import LOADERS, ORDER, RawCheckpoint, unwrap_state_dict
from simsparse.masks.safe_pickle import UnsafePickleError, load_torch_zip
from simsparse.records import MaskSet

__all__ = ["LOADERS", "ORDER", "load", "load_state", "read_raw", "read_torch_file"]

CONTAINERS = ("torch zip", "torch legacy pickle", "safetensors")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:160]


def _check_file(path: Path) -> int:
    if not path.exists():
        raise CheckpointError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory; pass the checkpoint file inside it")
    if not os.access(path, os.R_OK):
        raise CheckpointError(f"{path}: file is not readable; check its permissions")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: file is empty; re-save or re-copy the checkpoint")
    return size


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return 0 < header_len <= size - 8 and head[8:9] == b"{"


def _read_safetensors(path: Path, keep_weights: bool) -> RawCheckpoint:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({_first_line(exc)}); "
                              "check the file is complete (re-copy or re-save it)") from exc
    return RawCheckpoint(path=str(path), container="safetensors", obj=tensors,
                         metadata={str(k): str(v) for k, v in metadata.items()}, keep_weights=keep_weights)


def _read_torch(path: Path, *, is_zip: bool, keep_weights: bool) -> RawCheckpoint:
    container = "torch-zip" if is_zip else "torch-legacy"
    try:
        with warnings.catch_warnings():  # damaged files make torch warn about odd pickle protocols
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        return RawCheckpoint(path=str(path), container=container, obj=obj, keep_weights=keep_weights)
    except Exception as exc:
        torch_error = exc
    if not is_zip:
        raise CheckpointError(f"{path}: cannot read this legacy (pre-1.6) torch pickle safely (it holds objects "
                              "other than tensors, or is damaged); re-save its state_dict with torch>=1.6") \
            from torch_error
    try:
        obj, foreign = load_torch_zip(str(path))
    except UnsafePickleError as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({exc}); check the file is complete "
                              "(re-copy or re-save it)") from torch_error
    return RawCheckpoint(path=str(path), container=container, obj=obj, foreign=tuple(foreign),
                         keep_weights=keep_weights)


def _checked(raw: RawCheckpoint) -> RawCheckpoint:
    check_object_graph(raw.obj, source=raw.path)
    return raw


def read_raw(path: str | os.PathLike, *, keep_weights: bool = True) -> RawCheckpoint:
    """The file's top-level object, read safely by container; no loader has run yet."""
    p = Path(path)
    size = _check_file(p)
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise CheckpointError(f"{p}: cannot read the file ({_first_line(exc)}); check the path") from exc
    if head.startswith(b"PK\x03\x04"):
        check_zip(p, size)
        return _checked(_read_torch(p, is_zip=True, keep_weights=keep_weights))
    if _is_safetensors(head, size):
        check_safetensors(p, size)
        return _read_safetensors(p, keep_weights)
    if head[:1] == b"\x80":
        return _checked(_read_torch(p, is_zip=False, keep_weights=keep_weights))
    raise CheckpointError(f"{p}: not a checkpoint (tried: {', '.join(CONTAINERS)}); pass a file written by "
                          "torch.save, safetensors or simsparse")


def read_torch_file(path: str | os.PathLike, *, what: str) -> object:
    """Any torch file (e.g. a training state) read weights-only within the same bounds as a checkpoint;
    CheckpointError naming `what` when it cannot be read."""
    p = Path(path)
    size = _check_file(p)
    with open(p, "rb") as fh:
        is_zip = fh.read(4) == b"PK\x03\x04"
    if is_zip:
        check_zip(p, size)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable content is the user's file, not our bug
        raise CheckpointError(f"{what} {p}: not a readable torch file ({type(exc).__name__}: {_first_line(exc)})") \
            from None
    check_object_graph(obj, source=f"{what} {p}")
    return obj


def load(path: str | os.PathLike, *, keep_weights: bool = True) -> MaskSet:
    """Per-layer masks (+ geometry, provenance, optional weights) of the checkpoint at `path`
    (a file, or a Hugging Face directory / sharded index: `loaders_hf.read_hf`)."""
    p = Path(path)
    if p.exists() and loaders_hf.is_hf_checkpoint(p):
        raw = loaders_hf.read_hf(p, keep_weights=keep_weights, read_file=lambda f: read_raw(f, keep_weights=keep_weights))
    else:
        raw = read_raw(path, keep_weights=keep_weights)
    for name in ORDER:
        loader = LOADERS.get(name)
        try:
            if loader.sniff(raw):
                return coverage.annotate(loader.load(raw), raw)
        except CheckpointError:
            raise
        except Exception as exc:  # malformed content the loader did not anticipate
            raise CheckpointError(f"{raw.path}: the {name} loader cannot read this file "
                                  f"({type(exc).__name__}: {_first_line(exc)}); the checkpoint is malformed") from exc
    held = f", it holds foreign objects: {', '.join(raw.foreign[:4])}" if raw.foreign else ""
    raise CheckpointError(f"{raw.path}: no loader recognises this {raw.container} file (tried: {', '.join(ORDER)}"
                          f"{held}); pass a checkpoint holding a model state_dict")


def load_state(path: str | os.PathLike) -> dict:
    """The whole tensor state of a checkpoint file, keyed as the model's state_dict: a native
    checkpoint's `state` table, or the state_dict inside a foreign one (read safely, as `load`)."""
    raw = read_raw(path)
    obj = raw.obj
    if isinstance(obj, dict) and obj.get("format") == native.FORMAT_NAME:
        state = obj.get("state")
        if not isinstance(state, dict) or not state:
            raise CheckpointError(f"{raw.path}: this native checkpoint holds only the masked weights, not the whole "
                                  "state_dict (norms, biases); re-save it with this simsparse (train writes it)")
        return dict(state)
    state = unwrap_state_dict(obj)
    if not state:
        raise CheckpointError(f"{raw.path}: no state_dict found; pass a checkpoint holding the model's tensors")
    return state
