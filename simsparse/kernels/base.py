"""The kernel contract and the registry of real CPU kernels (each kernel module registers itself).

Contract (every kernel, fp32): a class registered in `KERNELS` whose classmethods are

    prepare(weight [n, k] float32, mask [n, k] bool) -> Prepared   # builds the storage format
    run(prepared, x [batch, k] float32) -> y [batch, n]             # y = x @ (weight * mask).T
    storage_bytes(prepared) -> {"values": B, "indices": B, ...}     # what the format holds
    warm_up() -> None                                               # JIT compile outside timing

and class attributes describing the implementation for the CPU model (`format`: its storage
format in simsparse.masks.formats, `value_dtype`, `index_dtype`, `layout`, `threaded`, `backend`,
`batch_paths`). `prepare` raises `PatternError` (a
`SimSparseError`) with one line when the mask does not suit the format.

    from simsparse.kernels import KERNELS
    kern = KERNELS.get("condensed")
    y = kern.run(kern.prepare(weight, mask), x)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch

from simsparse.errors import GeometryError
from simsparse.registry import Registry


class Kernel(ABC):
    """One storage format + its y = x @ W.T routine. Stateless: everything lives in Prepared."""

    name: ClassVar[str]
    format: ClassVar[str]                      # its storage format (simsparse.masks.formats.FORMATS)
    value_dtype: ClassVar[str] = "fp32"
    index_dtype: ClassVar[str | None] = None   # e.g. "int16|int32" (narrowest that fits k)
    layout: ClassVar[str] = ""                 # one line: what is stored
    threaded: ClassVar[bool] = True            # honours the thread count of the harness
    backend: ClassVar[str] = ""                # torch / mkl / numba / scipy
    batch_paths: ClassVar[dict] = {"library": (1, None)}   # code path -> (first batch, last batch|None)

    @classmethod
    def matches(cls, y: torch.Tensor, reference: torch.Tensor) -> bool:
        """y close to the fp32 reference, at this kernel's precision (bf16: ~3 significant digits)."""
        if cls.value_dtype == "bf16":
            scale = float(reference.abs().max()) if reference.numel() else 0.0
            return bool(torch.allclose(y, reference, rtol=2e-2, atol=2e-2 * scale + 1e-6))
        return bool(torch.allclose(y, reference, rtol=1e-4, atol=1e-3))

    @classmethod
    @abstractmethod
    def prepare(cls, weight: torch.Tensor, mask: np.ndarray | torch.Tensor) -> Any:
        """Build this kernel's storage from the masked weight."""

    @classmethod
    @abstractmethod
    def run(cls, prepared: Any, x: torch.Tensor) -> torch.Tensor:
        """y[batch, n] = x[batch, k] @ (weight * mask).T."""

    @classmethod
    @abstractmethod
    def storage_bytes(cls, prepared: Any) -> dict[str, int]:
        """Bytes of each stored stream (values, indices/metadata, ...)."""

    @classmethod
    def warm_up(cls) -> None:
        """Compile / initialise whatever the first call would (no-op for torch kernels)."""


KERNELS: Registry[type[Kernel]] = Registry("kernel")


def check_inputs(weight: torch.Tensor, mask: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """Validate and normalise (weight, mask): float32 contiguous [n, k] tensor, bool [n, k] array."""
    if not isinstance(weight, torch.Tensor):
        weight = torch.as_tensor(np.asarray(weight))
    mask_np = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if weight.dim() != 2:
        raise GeometryError(f"kernel weight must be 2-D [n, k], got shape {tuple(weight.shape)}; "
                            "reshape convs to [Cout, Cin*kh*kw] first")
    if tuple(mask_np.shape) != tuple(weight.shape):
        raise GeometryError(f"mask shape {tuple(mask_np.shape)} does not match weight shape "
                            f"{tuple(weight.shape)}; pass the mask of this weight")
    return weight.detach().to(torch.float32).contiguous(), mask_np.astype(bool, copy=False)


def check_x(x: torch.Tensor, k: int) -> torch.Tensor:
    """Validate activations [batch, k] and return them float32 contiguous."""
    if x.dim() != 2 or x.shape[1] != k:
        raise GeometryError(f"activations must be [batch, {k}], got shape {tuple(x.shape)}")
    if x.dtype is torch.float32 and not x.requires_grad and x.is_contiguous():
        return x                     # the common case, without ~2 us of no-op conversions
    return x.detach().to(torch.float32).contiguous()


def masked_weight(weight: torch.Tensor, mask_np: np.ndarray) -> torch.Tensor:
    return weight * torch.from_numpy(mask_np)

