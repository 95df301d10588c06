"""Read a torch zip checkpoint without executing anything from it.

`torch.load(weights_only=True)` refuses checkpoints whose pickle names classes outside its
allow-list (SRigL's omegaconf config, pathlib paths, a whole pickled `nn.Module`). This module
reads such a file with an allow-listing unpickler instead:

* the pickle's globals are looked up in `_ALLOWED`, a table of names -> functions written
  *here* (tensor rebuilds, OrderedDict, set, bytes); nothing named by the file is imported;
* every other global becomes a fresh `Placeholder` subclass that records what the pickle
  asks of it (REDUCE / NEWOBJ args, BUILD state, appended or set items) and does nothing else;
* storages are read with `zipfile` from `<archive>/data/<key>` records; only uncompressed
  records (what torch writes) are accepted, and sizes are checked before any view is made.

`load_torch_zip(path)` returns the unpickled object and the sorted list of foreign globals met.
Every failure is raised as `UnsafePickleError` (the caller turns it into a CheckpointError).
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import pickletools
import zipfile
from typing import Any

import torch


class UnsafePickleError(Exception):
    """The archive cannot be read safely (malformed, or asks for something not allowed)."""


# ----------------------------------------------------------------------------- placeholders


class Placeholder:
    """An inert stand-in for a class or function the checkpoint names but we never import.

    `Placeholder` subclasses are created per global name by `_placeholder_class`; calling
    one (pickle REDUCE) or `__new__` (NEWOBJ) makes an instance that only stores arguments.
    """

    foreign_name = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> "Placeholder":
        obj = object.__new__(cls)
        object.__setattr__(obj, "args", args)
        object.__setattr__(obj, "kwargs", kwargs)
        object.__setattr__(obj, "state", None)
        object.__setattr__(obj, "items", [])
        object.__setattr__(obj, "entries", {})
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # pickle never calls it; keep inert
        pass

    def __setstate__(self, state: Any) -> None:
        object.__setattr__(self, "state", state)

    def __setattr__(self, name: str, value: Any) -> None:  # BUILD's slot-state path
        self.entries[f"attr:{name}"] = value

    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Any) -> None:
        self.items.extend(list(items))

    def __setitem__(self, key: Any, value: Any) -> None:
        try:
            self.entries[key] = value
        except TypeError:  # unhashable key: keep it as an item pair
            self.items.append((key, value))

    def __call__(self, *args: Any, **kwargs: Any) -> "Placeholder":
        return _placeholder_class(f"{self.foreign_name}()")(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<foreign {self.foreign_name}>"


def _placeholder_class(qualname: str) -> type:
    return type("Placeholder", (Placeholder,), {"foreign_name": qualname, "__module__": __name__})


def is_placeholder(obj: Any) -> bool:
    return isinstance(obj, Placeholder)


# ----------------------------------------------------------------------------- allowed globals


class _StorageType:
    """What `torch.FloatStorage` etc. resolve to: only the dtype matters."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _storage_types() -> dict[str, _StorageType]:
    table = {"UntypedStorage": _StorageType(torch.uint8)}
    for dtype, name in torch.storage._dtype_to_storage_type_map().items():
        if not name.startswith("Q"):  # quantized storages are not rebuilt here
            table[name] = _StorageType(dtype)
    return table


_STORAGE_TYPES = _storage_types()
_DTYPES = {str(t.dtype).split(".")[-1]: t.dtype for t in _STORAGE_TYPES.values()}


def _as_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if isinstance(value, torch.Size):
        value = tuple(value)
    if not isinstance(value, tuple) or not all(type(v) is int for v in value):
        raise UnsafePickleError(f"tensor {what} is not a tuple of ints")
    return value


def _rebuild_tensor_v2(storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor) or storage.dim() != 1:
        raise UnsafePickleError("tensor rebuild without a storage")
    size_t = _as_int_tuple(size, "size")
    stride_t = _as_int_tuple(stride, "stride")
    if type(offset) is not int or len(size_t) != len(stride_t) or offset < 0:
        raise UnsafePickleError("tensor rebuild with a malformed offset/size/stride")
    if any(s < 0 for s in size_t) or any(s < 0 for s in stride_t):
        raise UnsafePickleError("tensor rebuild with a negative size or stride")
    if 0 not in size_t:
        last = offset + sum((n - 1) * s for n, s in zip(size_t, stride_t))
        if last >= storage.numel():
            raise UnsafePickleError("tensor extends past the end of its storage")
    return torch.as_strided(storage, size_t, stride_t, offset)


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    return data  # a Parameter is its data here: nothing trains on it


def _rebuild_from_type_v2(func: Any, _new_type: Any, args: Any, _state: Any) -> Any:
    if func is not _rebuild_tensor_v2 or not isinstance(args, tuple):
        return _placeholder_class("torch._tensor._rebuild_from_type_v2")(func, args)
    return _rebuild_tensor_v2(*args)


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("bytes encoded other than latin1")
    return text.encode("latin1")


def _torch_size(values: Any = ()) -> torch.Size:
    return torch.Size(_as_int_tuple(tuple(values) if isinstance(values, list) else values, "Size"))


def _safe_set(items: Any = ()) -> set:
    return set(items if isinstance(items, (list, tuple, set, frozenset)) else ())


def _safe_frozenset(items: Any = ()) -> frozenset:
    return frozenset(_safe_set(items))


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "Size"): _torch_size,
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "set"): _safe_set,
    ("__builtin__", "set"): _safe_set,
    ("builtins", "frozenset"): _safe_frozenset,
    ("__builtin__", "frozenset"): _safe_frozenset,
}
_ALLOWED.update({("torch", name): st for name, st in _STORAGE_TYPES.items()})
_ALLOWED.update({("torch", name): dtype for name, dtype in _DTYPES.items()})


# ----------------------------------------------------------------------------- unpickler


class _ZipStorages:
    """Reads `<prefix>/data/<key>` records of an open zip on demand (uncompressed only)."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str, archive_bytes: int) -> None:
        self.archive = archive
        self.prefix = prefix
        self.archive_bytes = archive_bytes
        self.cache: dict[str, torch.Tensor] = {}

    def raw(self, key: str) -> torch.Tensor:
        if key not in self.cache:
            name = f"{self.prefix}/data/{key}"
            try:
                info = self.archive.getinfo(name)
            except KeyError:
                raise UnsafePickleError(f"storage record {name!r} is missing") from None
            if info.compress_type != zipfile.ZIP_STORED:
                raise UnsafePickleError(f"storage record {name!r} is compressed (torch never writes that)")
            if info.file_size != info.compress_size or info.file_size > self.archive_bytes:
                raise UnsafePickleError(f"storage record {name!r} claims more bytes than the file holds")
            raw = torch.empty(info.file_size, dtype=torch.uint8)  # torch owns the memory
            with self.archive.open(info) as fh:
                if fh.readinto(raw.numpy()) != info.file_size or fh.read(1):
                    raise UnsafePickleError(f"storage record {name!r} has the wrong length")
            self.cache[key] = raw
        return self.cache[key]


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, stream: io.BytesIO, storages: _ZipStorages) -> None:
        super().__init__(stream)
        self.storages = storages
        self.foreign: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        qualname = f"{module}.{name}"
        self.foreign.add(qualname)
        return _placeholder_class(qualname)

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise UnsafePickleError("unknown persistent id in pickle")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or type(numel) is not int:
            raise UnsafePickleError("malformed storage reference in pickle")
        raw = self.storages.raw(key)
        itemsize = torch.empty(0, dtype=storage_type.dtype).element_size()
        if numel < 0 or raw.numel() < numel * itemsize:
            raise UnsafePickleError(f"storage {key!r} is shorter than its {numel} elements")
        return raw[: numel * itemsize].view(storage_type.dtype)


_REFUSED_OPCODES = {"BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"}  # protocol-5 out-of-band data


def _prescan(pkl: bytes) -> None:
    """Walk the opcodes without building anything: a truncated or lying stream (lengths past its
    end, unknown opcodes) fails here, before the unpickler allocates what the stream claims."""
    try:
        for opcode, _arg, _pos in pickletools.genops(pkl):
            if opcode.name in _REFUSED_OPCODES:
                raise UnsafePickleError(f"pickle uses {opcode.name}, which torch checkpoints never hold")
    except UnsafePickleError:
        raise
    except Exception as exc:
        raise UnsafePickleError(f"malformed pickle ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:160]


def _pickle_record(archive: zipfile.ZipFile) -> str:
    names = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(names) != 1:
        raise UnsafePickleError("zip archive has no single <name>/data.pkl: not a torch checkpoint")
    return names[0]


def load_torch_zip(path: str) -> tuple[Any, list[str]]:
    """Unpickle a torch zip checkpoint safely; returns (object, sorted foreign global names)."""
    try:
        with zipfile.ZipFile(path) as archive:
            record = _pickle_record(archive)
            prefix = record.rsplit("/", 1)[0]
            order = archive.read(f"{prefix}/byteorder").decode("ascii", "replace") \
                if f"{prefix}/byteorder" in archive.namelist() else "little"
            if order.strip() != "little":
                raise UnsafePickleError(f"byte order {order.strip()!r} is not supported")
            pkl = archive.read(record)
            _prescan(pkl)
            storages = _ZipStorages(archive, prefix, os.path.getsize(path))
            unpickler = _SafeUnpickler(io.BytesIO(pkl), storages)
            obj = unpickler.load()
            return obj, sorted(unpickler.foreign)
    except UnsafePickleError:
        raise
    except RecursionError:
        raise UnsafePickleError("pickle nests too deeply") from None
    except Exception as exc:  # malformed zip or pickle: every failure becomes one error type
        raise UnsafePickleError(f"{type(exc).__name__}: {_first_line(exc)}") from None
