"""How much of a model a checkpoint's masks cover, said in one line that `inspect` and `evaluate`
print: "masks for 14 of 15 GEMM layers; dense: lm_head.weight; unread keys: ...".

Unread keys are the checkpoint's tensors of 2+ dims (or foreign objects in a state dict, e.g. a
torchao tensor subclass) that are neither a masked weight nor a known companion of one (prune,
parametrize, ASP, compressed-tensors parts), nor an embedding. A checkpoint that leaves most GEMM
layers without a mask is an error unless partial coverage is allowed: it usually means a shard
is missing or a format was not recognised, and treating the rest as dense would mislead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import torch

from simsparse.errors import CheckpointError
from simsparse.masks.loaders_common import RawCheckpoint, strip_prefixes, tensor_dict, unwrap_state_dict
from simsparse.masks.safe_pickle import is_placeholder
from simsparse.records import MaskSet

_COMPANIONS = ("_orig", "_mask", "_mma_mask")


@dataclass(frozen=True)
class Coverage:
    layers: int                          # GEMM layers (conv/linear weights) known
    masked: int                          # of which have a mask
    dense: tuple[str, ...]               # GEMM layers without a mask
    unread: tuple[str, ...]              # checkpoint keys nothing read

    def line(self, few: int = 4) -> str:
        def names(xs: Sequence[str]) -> str:
            return ", ".join(xs[:few]) + (f", ... ({len(xs)} in all)" if len(xs) > few else "")
        return (f"masks for {self.masked} of {self.layers} GEMM layers"
                + (f"; dense: {names(self.dense)}" if self.dense else "")
                + (f"; unread keys: {names(self.unread)}" if self.unread else ""))

    @property
    def mostly_missing(self) -> bool:
        return self.masked * 2 < self.layers


def _state(obj: Any) -> Mapping[str, Any]:
    if isinstance(obj, Mapping):
        inner = unwrap_state_dict(obj)
        candidates = [o for o in (obj.get("state_dict"), obj.get("model")) if isinstance(o, Mapping)]
        full = candidates[0] if candidates else obj
        return {**strip_prefixes({str(k): v for k, v in full.items()}), **(inner or {})}
    return {}


def unread_keys(raw: RawCheckpoint, maskset: MaskSet) -> list[str]:
    """Keys of the checkpoint's state dict that no loader consumed (see module docstring)."""
    sd = _state(raw.obj)
    consumed = set(maskset.provenance.get("consumed_keys", ()))
    out = []
    for key, value in sd.items():
        base = key.split(".parametrizations.")[0]
        if key in maskset.layers or key in consumed or ".parametrizations." in key and any(
                f.startswith(base + ".") for f in maskset.layers):
            continue
        if any(key.endswith(s) for s in _COMPANIONS) or "embed" in key.lower():
            continue
        if is_placeholder(value) or (isinstance(value, torch.Tensor) and value.ndim >= 2):
            out.append(key)
    return out


def foreign_weights(raw: RawCheckpoint) -> dict[str, str]:
    """{key: foreign class name} of the state-dict entries that are foreign objects (tensor subclasses
    such as torchao's)."""
    return {k: v.foreign_name for k, v in _state(raw.obj).items() if is_placeholder(v)}


def annotate(maskset: MaskSet, raw: RawCheckpoint) -> MaskSet:
    """The MaskSet with provenance "unread_keys" and, for foreign tensor subclasses, a note."""
    unread = unread_keys(raw, maskset)
    notes = list(maskset.provenance.get("notes", []))
    for key, cls in foreign_weights(raw).items():
        notes.append(f"{key}: a {cls} tensor subclass (e.g. torchao) that simsparse cannot read safely; its "
                     "layer is not in this report: save the plain weights (e.g. the dense or sparse tensor's to_dense()) to include it")
    return replace(maskset, provenance={**maskset.provenance, "unread_keys": unread, "notes": notes})


def of_checkpoint(maskset: MaskSet) -> Coverage:
    """Coverage of a checkpoint on its own: masked layers plus GEMM weights it holds but could not mask."""
    unread = tuple(maskset.provenance.get("unread_keys", ()))
    unmasked = tuple(maskset.provenance.get("unmasked_weights", ()))
    return Coverage(layers=len(maskset.layers) + len(unmasked), masked=len(maskset.layers), dense=unmasked,
                    unread=unread)


def of_binding(maskset: MaskSet, *, gemm_layers: Sequence[str], masked: Sequence[str],
               unmatched: Sequence[str] = ()) -> Coverage:
    """Coverage against a geometry: its conv/linear layers with and without a bound mask."""
    got = set(masked)
    return Coverage(layers=len(gemm_layers), masked=len(got), dense=tuple(n for n in gemm_layers if n not in got),
                    unread=tuple(maskset.provenance.get("unread_keys", ())) + tuple(unmatched))


def check(cov: Coverage, *, source: str, allow_partial: bool) -> None:
    if cov.mostly_missing and not allow_partial:
        raise CheckpointError(f"{source}: {cov.line()}; most GEMM layers have no mask (a missing shard or an "
                              "unrecognised format?); pass --allow-partial to run the rest dense")
