"""`dense`: torch's GEMM on the masked weight (the baseline every sparse kernel must beat)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from simsparse.kernels.base import KERNELS, Kernel, check_inputs, check_x, masked_weight


@dataclass(frozen=True, eq=False)
class DensePrepared:
    weight: torch.Tensor  # [n, k] float32 (bfloat16 for dense_bf16), zeros where masked out
    n: int
    k: int


@KERNELS.register("dense")
class DenseKernel(Kernel):
    name = "dense"
    format = "dense"
    layout = "values [n, k] fp32 (zeros stored); y = F.linear(x, W) -> MKL/oneDNN sgemm"
    backend = "torch"
    torch_dtype = torch.float32

    @classmethod
    def prepare(cls, weight, mask) -> DensePrepared:
        w, m = check_inputs(weight, mask)
        n, k = w.shape
        return DensePrepared(weight=masked_weight(w, m).to(cls.torch_dtype).contiguous(), n=n, k=k)

    @classmethod
    def run(cls, prepared: DensePrepared, x: torch.Tensor) -> torch.Tensor:
        x = check_x(x, prepared.k)
        if cls.torch_dtype is torch.float32:
            return F.linear(x, prepared.weight)
        return F.linear(x.to(cls.torch_dtype), prepared.weight).float()

    @classmethod
    def storage_bytes(cls, prepared: DensePrepared) -> dict[str, int]:
        return {"values": prepared.n * prepared.k * prepared.weight.element_size(), "indices": 0}


@KERNELS.register("dense_bf16")
class DenseBf16Kernel(DenseKernel):
    """bf16 where it pays: torch's bf16 GEMM (oneDNN; AMX tiles on CPUs that have them).

    fp32 in and out, like every kernel: x is cast to bf16, y back to fp32, both inside the timed
    call. Measured here (2 threads, AMX-BF16 CPU, 768x3072 and 3072x768): 0.8-1.1x fp32 dense at
    batch 1 (the bf16 gemv does not halve the time its halved bytes would allow), 2.1-2.9x at
    batch 16, 3.1-4.5x at 64, 4.5-6.8x at 256. Not modelled by `cpu_simd` (no AMX term): it is a
    measured baseline, e.g. for where condensed stops beating dense in bf16 deployments."""

    name = "dense_bf16"
    value_dtype = "bf16"
    layout = "values [n, k] bf16 (zeros stored); y = F.linear(x.bfloat16(), W).float() -> oneDNN (AMX)"
    torch_dtype = torch.bfloat16
