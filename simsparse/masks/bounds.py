"""Resource bounds for untrusted checkpoint files, checked before anything large is allocated.

The guarantee: any file up to 1 MB is read or refused within 1 GB of memory and 10 s; larger
files cost memory linear in their real tensor bytes. To that end:

* zip (torch) archives: the entry count is capped and every entry's declared inflated size is
  checked against the archive's size (a stored entry cannot exceed it; compressed entries together
  may inflate to at most INFLATE_RATIO x the archive) before torch reads any of them;
* safetensors: the header length, its JSON, every dtype/shape and every data offset are checked
  against the file's length before the library maps it;
* the unpickled object graph is walked once (each container once, however often it is shared):
  at most MAX_OBJECTS objects, MAX_DEPTH levels and MAX_CONTAINER items per container; every tensor
  must be a non-overlapping view of its storage (no stride-0 expansions), and the bytes all tensor
  references name may exceed the distinct storages they share (each counted once) only by
  ALIAS_FACTOR, plus ALIAS_SLACK_BYTES (tied weights are fine, 600 names on one storage are not).

Every violation raises CheckpointError with one line naming the file and the fix.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch

from simsparse.errors import CheckpointError
from simsparse.masks.safe_pickle import is_placeholder

MAX_ZIP_ENTRIES = 100_000
INFLATE_RATIO = 64
MAX_SAFETENSORS_HEADER = 64 * 2**20
MAX_OBJECTS = 2_000_000
MAX_DEPTH = 128
MAX_CONTAINER = 10_000_000
MAX_EXPANDED = 20_000_000     # values once shared containers are written out every time they are referenced
ALIAS_FACTOR = 4
ALIAS_SLACK_BYTES = 64 * 2**20
SAFETENSORS_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
                        "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def _refuse(path: Path | str, what: str, fix: str = "the file is malformed or hostile; re-save it") -> CheckpointError:
    return CheckpointError(f"{path}: {what}; {fix}")


# ----------------------------------------------------------------------------- containers


def check_zip(path: Path, size: int) -> None:
    """Entry count and declared inflated sizes of a zip archive, before torch reads it."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    # zipfile raises NotImplementedError for a central directory claiming a newer zip version or an
    # unknown feature, struct.error for a short record: damaged bytes, like BadZipFile
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, struct.error, OSError, ValueError,
            EOFError) as exc:
        raise _refuse(path, f"not a readable zip archive ({exc})", "check the file is complete") from None
    if len(infos) > MAX_ZIP_ENTRIES:
        raise _refuse(path, f"the archive holds {len(infos)} entries (more than {MAX_ZIP_ENTRIES})")
    inflated = 0
    for info in infos:
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size > size or info.file_size != info.compress_size:
                raise _refuse(path, f"zip entry {info.filename!r} declares {info.file_size} bytes stored in a "
                                    f"file of {size} bytes")
        else:
            inflated += info.file_size
    if inflated > INFLATE_RATIO * size:
        raise _refuse(path, f"its compressed zip entries inflate to {inflated} bytes, over {INFLATE_RATIO}x the "
                            f"{size}-byte file (a zip bomb?)", "re-save it with torch.save (uncompressed)")


def check_safetensors(path: Path, size: int) -> None:
    """Header length, JSON, dtypes, shapes and data offsets of a safetensors file vs its length."""
    with path.open("rb") as fh:
        header_len = struct.unpack("<Q", fh.read(8))[0]
        if header_len > min(size - 8, MAX_SAFETENSORS_HEADER):
            raise _refuse(path, f"safetensors header claims {header_len} bytes in a {size}-byte file")
        raw = fh.read(header_len)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise _refuse(path, "safetensors header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _refuse(path, "safetensors header is not a table of tensors")
    body = size - 8 - header_len
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        _check_safetensors_entry(path, name, entry, body)


def _check_safetensors_entry(path: Path, name: str, entry: Any, body: int) -> None:
    if not isinstance(entry, dict):
        raise _refuse(path, f"safetensors entry {name!r} is not a tensor description")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in SAFETENSORS_ITEMSIZE:
        raise _refuse(path, f"safetensors tensor {name!r} has unknown dtype {str(dtype)[:20]!r}")
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        raise _refuse(path, f"safetensors tensor {name!r} has a malformed shape")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)):
        raise _refuse(path, f"safetensors tensor {name!r} has malformed data offsets")
    begin, end = offsets
    nbytes = math.prod(shape) * SAFETENSORS_ITEMSIZE[dtype]
    if not 0 <= begin <= end <= body or end - begin != nbytes:
        raise _refuse(path, f"safetensors tensor {name!r} ({dtype} {shape}) declares bytes {begin}..{end} but the "
                            f"file holds {body} data bytes", "check the file is complete (re-copy or re-save it)")


# ----------------------------------------------------------------------------- object graph


def _children(obj: Any) -> list[Any] | None:
    """The values a container holds (keys too), or None for a leaf."""
    if isinstance(obj, Mapping):
        try:
            return [x for kv in obj.items() for x in kv]
        except Exception:  # noqa: BLE001 - a mapping-like placeholder that cannot list itself: a leaf
            return []
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if is_placeholder(obj):
        return [obj.args, obj.kwargs, obj.state, obj.items, obj.entries]
    return None


def _size(obj: Any) -> int:
    return len(obj) if isinstance(obj, (Mapping, list, tuple, set, frozenset)) else 0


def check_object_graph(obj: Any, *, source: str) -> None:
    """Walk what a checkpoint unpickled (iteratively, each container once) and enforce the module's bounds."""
    walk = _Walk(source)
    walk.run(obj)
    real = sum(walk.storages.values())
    if walk.tensor_bytes > ALIAS_FACTOR * real + ALIAS_SLACK_BYTES:
        raise _refuse(source, f"its tensors name {walk.tensor_bytes} bytes but share {real} bytes of storage "
                              "(one storage aliased behind many weights)", "save each weight's own data")


class _Walk:
    """Post-order walk: distinct objects, depth, container sizes, expanded size (shared parts counted
    every time they are referenced, as any reader that copies or prints them would), and every
    reference to a tensor (each container is walked once, each of its tensor references counted)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.expanded: dict[int, int] = {}
        self.tensor_bytes = 0
        self.storages: dict[int, int] = {}
        self.objects = 0

    def run(self, root: Any) -> None:
        active: set[int] = set()
        keep: list[Any] = []  # holds every walked object so that ids stay unique during the walk
        stack: list[tuple[Any, int, list | None]] = [(root, 0, None)]
        while stack:
            item, depth, children = stack.pop()
            if children is not None:  # second visit: all children are done
                active.discard(id(item))
                size = 1 + sum(self.expanded.get(id(c), 1) for c in children)
                if size > MAX_EXPANDED:
                    raise _refuse(self.source, f"its pickled data expands to more than {MAX_EXPANDED} values "
                                               "(shared lists repeated many times: a 'billion laughs')")
                self.expanded[id(item)] = size
                continue
            if id(item) in self.expanded or id(item) in active:
                continue
            self._count()
            if isinstance(item, torch.Tensor):
                self.tensor_bytes += _check_tensor(item, source=self.source, storages=self.storages)
                continue
            kids = _children(item)
            if kids is None:
                continue
            if depth >= MAX_DEPTH:
                raise _refuse(self.source, f"its pickled data nests deeper than {MAX_DEPTH} levels")
            if _size(item) > MAX_CONTAINER:
                raise _refuse(self.source, f"a pickled container holds {_size(item)} items (more than {MAX_CONTAINER})")
            keep.append(item)
            active.add(id(item))
            stack.append((item, depth, kids))
            stack.extend((c, depth + 1, None) for c in kids)

    def _count(self) -> None:
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            raise _refuse(self.source, f"the pickle holds more than {MAX_OBJECTS} objects")


def _check_tensor(t: torch.Tensor, *, source: str, storages: dict[int, int]) -> int:
    """Bytes this tensor reference stands for; refuses overlapping (stride-0) views."""
    if t.is_sparse or t.layout != torch.strided or t.device.type != "cpu":
        return 0
    logical = t.numel() * t.element_size()
    storage = t.untyped_storage()
    if logical > storage.nbytes():
        raise _refuse(source, f"a tensor of shape {tuple(t.shape)} is an overlapping view (stride "
                              f"{tuple(t.stride())}) of {storage.nbytes()} bytes of storage",
                      "save it with .contiguous() or .clone()")
    storages[storage.data_ptr()] = max(storages.get(storage.data_ptr(), 0), storage.nbytes())
    return logical
