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


@dataclass(frozen=True, eq=False)
class DenseBf16Prepared:
    weight: torch.Tensor  # [n, k] bfloat16, zeros where masked out
    n: int
    k: int


@KERNELS.register("dense_bf16")
class DenseBf16Kernel(Kernel):
    """bf16 where it pays: torch's bf16 GEMM (oneDNN; AMX tiles on CPUs that have them).

    fp32 in and out, like every kernel: x is cast to bf16, y back to fp32, both inside the timed
    call. Measured here (2 threads, AMX-BF16 CPU, 768x3072 and 3072x768): 1.1x fp32 dense at
    batch 1 (the bf16 gemv does not halve the time its halved bytes would allow), 2.3-2.9x at
    batch 16, 3.1-3.3x at 64, 4.6-5.5x at 256. Not modelled by `cpu_simd` (no AMX term): it is
    a measured baseline, e.g. for where condensed stops beating dense in bf16 deployments."""

    name = "dense_bf16"
    value_dtype = "bf16"
    layout = "values [n, k] bf16 (zeros stored); y = F.linear(x.bfloat16(), W).float() -> oneDNN (AMX)"
    backend = "torch"

    @classmethod
    def prepare(cls, weight, mask) -> DenseBf16Prepared:
        w, m = check_inputs(weight, mask)
        n, k = w.shape
        return DenseBf16Prepared(weight=masked_weight(w, m).to(torch.bfloat16).contiguous(), n=n, k=k)

    @classmethod
    def run(cls, prepared: DenseBf16Prepared, x: torch.Tensor) -> torch.Tensor:
        return F.linear(check_x(x, prepared.k).to(torch.bfloat16), prepared.weight).float()

    @classmethod
    def storage_bytes(cls, prepared: DenseBf16Prepared) -> dict[str, int]:
        return {"values": prepared.n * prepared.k * 2, "indices": 0}
