"""Shared pieces of the checkpoint loaders: the raw-checkpoint record, the loader registry,
the rule for which tensors are masked weights, mask/weight validation, state-dict unwrapping.

Which tensors count as weights to mask (`is_maskable_weight`): floating-point tensors with
2 dims (Linear `[out, in]`) or 4 dims (Conv2d `[out, in, kh, kw]`) whose name's last dotted part
ends in "weight", except embeddings (any dotted part containing "embed", e.g. `embed.weight`,
`word_embeddings.weight`, `embed_tokens.weight`). Norms and biases are 1-D and never masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Mapping

import numpy as np
import torch

from simsparse.errors import CheckpointError
from simsparse.masks.safe_pickle import is_placeholder
from simsparse.records import LayerMask, MaskSet, Workload
from simsparse.registry import Registry

WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
STRIPPED_PREFIXES = ("module.", "_orig_mod.")  # DDP / DataParallel, torch.compile


@dataclass(frozen=True)
class RawCheckpoint:
    """A file's top-level object as read by its container reader, before any loader ran."""

    path: str
    container: str                     # torch-zip | torch-legacy | safetensors
    obj: Any
    foreign: tuple[str, ...] = ()      # globals turned into inert placeholders (never imported)
    metadata: Mapping[str, str] = field(default_factory=dict)  # safetensors header metadata
    keep_weights: bool = True          # whether loaders copy weights into MaskSet.weights


@dataclass(frozen=True)
class Loader:
    """One checkpoint format: `sniff(raw)` says whether it is this format, `load(raw)` reads it."""

    name: str
    sniff: Callable[[RawCheckpoint], bool]
    load: Callable[[RawCheckpoint], MaskSet]


LOADERS: Registry[Loader] = Registry("checkpoint loader")
# Tried in this order: specific formats before the generic state_dict.
ORDER = ("native", "compressed_tensors", "hf_directory", "torch_ao_sparsifier", "safetensors", "srigl", "chase",
         "prune", "parametrize", "asp", "state_dict")


def register(loader: Loader) -> Loader:
    return LOADERS.register(loader.name, loader)


# ----------------------------------------------------------------------------- tensors


def is_maskable_weight(name: str, value: Any) -> bool:
    """The documented rule (module docstring) for tensors that carry a mask."""
    if not isinstance(value, torch.Tensor) or value.ndim not in (2, 4) or not value.is_floating_point():
        return False
    parts = name.lower().split(".")
    return parts[-1].endswith("weight") and not any("embed" in p for p in parts)


def check_finite(weight: torch.Tensor, *, fqn: str, source: str) -> None:
    if weight.is_floating_point() and not bool(torch.isfinite(weight).all()):
        raise CheckpointError(f"{source}: weight {fqn!r} holds NaN or Inf values; "
                              "export the checkpoint from a healthy (non-diverged) run")


def mask_to_numpy(mask: Any, *, fqn: str, source: str) -> np.ndarray:
    """A bool numpy copy of a mask tensor/array whose values must all be 0 or 1."""
    if isinstance(mask, torch.Tensor):
        if mask.dtype == torch.bool:
            return mask.detach().cpu().numpy().astype(bool, copy=True)
        if mask.is_complex():
            raise CheckpointError(f"{source}: mask {fqn!r} is complex; masks hold only 0/1")
        values = mask.detach().cpu()
        ok = bool(((values == 0) | (values == 1)).all())
        out = (values != 0).numpy() if ok else None
    elif isinstance(mask, np.ndarray) and mask.dtype.kind in "biuf":
        ok = bool(np.isin(mask, (0, 1)).all())
        out = (mask != 0) if ok else None
    else:
        raise CheckpointError(f"{source}: mask {fqn!r} is a {type(mask).__name__}, not a tensor")
    if out is None:
        raise CheckpointError(f"{source}: mask {fqn!r} holds values other than 0/1 (NaN included); "
                              "store masks as bool tensors")
    return np.ascontiguousarray(out, dtype=bool)


def weight_to_numpy(weight: torch.Tensor) -> np.ndarray:
    return weight.detach().cpu().to(torch.float32).numpy().copy()


def check_shape(mask: np.ndarray, weight_shape: tuple[int, ...], *, fqn: str, source: str) -> None:
    if tuple(mask.shape) != tuple(weight_shape):
        raise CheckpointError(f"{source}: mask {fqn!r} has shape {tuple(mask.shape)} but its weight has "
                              f"{tuple(weight_shape)}; the mask belongs to another model or layer")


# ----------------------------------------------------------------------------- state dicts


def tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """`obj` as {str: tensor} (non-tensor values dropped) if it is a mapping holding a tensor."""
    if not isinstance(obj, Mapping):
        return None
    out = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    return out or None


def module_state(obj: Any, prefix: str = "", depth: int = 0, seen: set[int] | None = None) -> dict[str, torch.Tensor]:
    """Parameters and buffers of a pickled `nn.Module` read as inert placeholders (a module shared
    under several names is read once, so shared structures cannot multiply the walk)."""
    seen = set() if seen is None else seen
    state = obj.state if is_placeholder(obj) else None
    if not isinstance(state, Mapping) or depth > 64 or id(obj) in seen:
        return {}
    seen.add(id(obj))
    out: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (tensor_dict(state.get(group)) or {}).items():
            out[prefix + name] = value
    children = state.get("_modules")
    if isinstance(children, Mapping):
        for name, child in children.items():
            out.update(module_state(child, f"{prefix}{name}.", depth + 1, seen))
    return out


def unwrap_state_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """The flat {fqn: tensor} inside `obj`: follows `state_dict`/`model` wrappers (a few levels),
    reads a pickled nn.Module, and strips `module.` / `_orig_mod.` prefixes."""
    for _ in range(4):
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in WRAPPER_KEYS if k in obj and (isinstance(obj[k], Mapping) or
                                                                     is_placeholder(obj[k]))), None)
        if inner is None:
            break
        obj = inner
    flat = module_state(obj) if is_placeholder(obj) else tensor_dict(obj)
    return strip_prefixes(flat) if flat else None


def strip_prefixes(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = dict(sd)
    for prefix in STRIPPED_PREFIXES:
        if out and all(k.startswith(prefix) for k in out):
            out = {k[len(prefix):]: v for k, v in out.items()}
    return out


PLAIN_NODES = 4096  # values one `plain` copy may hold: metadata is for display, never expanded whole


def plain(value: Any, depth: int = 0, budget: list[int] | None = None) -> Any:
    """A JSON-friendly, bounded copy of checkpoint metadata (at most PLAIN_NODES values, 8 levels,
    64 items per container; a shared structure costs each time it is shown); tensors and foreign
    objects become strings."""
    budget = [PLAIN_NODES] if budget is None else budget
    budget[0] -= 1
    if depth > 8 or budget[0] < 0:
        return "..."
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, str) else value[:1000]
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else f"<tensor {tuple(value.shape)}>"
    if isinstance(value, Mapping):
        return {str(k)[:200]: plain(v, depth + 1, budget) for k, v in islice(value.items(), 64)}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1, budget) for v in value[:64]]
    return repr(value)[:120]


def scalar_meta(obj: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """Plain scalar entries of a foreign checkpoint's top level (epoch, accuracy, arch, ...)."""
    if not isinstance(obj, Mapping):
        return {}
    return {k: plain(obj[k]) for k in keys if k in obj}


# ----------------------------------------------------------------------------- the record


def build_maskset(*, raw: RawCheckpoint, fmt: str, masks: Mapping[str, np.ndarray],
                  weights: Mapping[str, np.ndarray] | None, mask_source: Mapping[str, str],
                  meta: Mapping[str, Any] | None = None, geometry: Workload | None = None,
                  notes: list[str] | None = None, extra: Mapping[str, Any] | None = None) -> MaskSet:
    """The MaskSet every loader returns; refuses an empty one."""
    if not masks:
        raise CheckpointError(f"{raw.path}: no conv/linear weight tensors found (looked for 2-D/4-D float "
                              "tensors named *weight); pass a checkpoint of the trained model")
    layers = {fqn: LayerMask(fqn=fqn, weight_shape=tuple(int(d) for d in m.shape), mask=m)
              for fqn, m in masks.items()}
    notes = list(notes or [])
    if raw.foreign:
        notes.append("foreign objects were read as inert placeholders (never imported or run): "
                     + ", ".join(raw.foreign[:8]))
    provenance: dict[str, Any] = {"format": fmt, "container": raw.container, "path": raw.path,
                                  "meta": dict(meta or {}), "mask_source": dict(mask_source),
                                  "foreign_objects": list(raw.foreign), "notes": notes}
    provenance.update(extra or {})
    return MaskSet(layers=layers, geometry=geometry, provenance=provenance, weights=weights)
