"""`dense`: torch's GEMM on the masked weight (the baseline every sparse kernel must beat)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from simsparse.kernels import KERNELS, Kernel, check_inputs, check_x, masked_weight


@dataclass(frozen=True, eq=False)
class DensePrepared:
    weight: torch.Tensor  # [n, k] float32, zeros where masked out
    n: int
    k: int


@KERNELS.register("dense")
class DenseKernel(Kernel):
    name = "dense"
    layout = "values [n, k] fp32 (zeros stored); y = F.linear(x, W) -> MKL/oneDNN sgemm"
    backend = "torch"

    @classmethod
    def prepare(cls, weight, mask) -> DensePrepared:
        w, m = check_inputs(weight, mask)
        n, k = w.shape
        return DensePrepared(weight=masked_weight(w, m).contiguous(), n=n, k=k)

    @classmethod
    def run(cls, prepared: DensePrepared, x: torch.Tensor) -> torch.Tensor:
        return F.linear(check_x(x, prepared.k), prepared.weight)

    @classmethod
    def storage_bytes(cls, prepared: DensePrepared) -> dict[str, int]:
        return {"values": prepared.n * prepared.k * 4, "indices": 0}
