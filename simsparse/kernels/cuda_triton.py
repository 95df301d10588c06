"""The condensed kernel as a Triton GPU kernel (imported only where CUDA and triton exist:
kernels/cuda.py imports this module lazily). Layout: kernels/cuda_condensed.py.

The structure the GPU model times as `condensed` (archs/gpu_cuda_core.py), i.e. SRigL's kernel:
one program = one warp = one stored row x 32 batch columns, one output per thread. For each fan-in
slot the program loads the row's index and value and gathers x^T[index, 32 batch columns] (x
pre-transposed: one coalesced line), accumulating in fp32; no software pipelining (num_stages=1),
so each slot waits for its gather: the chain of dependent round trips the model charges.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_B = 32          # batch columns per program: one warp, one output per thread


@triton.jit
def _condensed_kernel(values_ptr, indices_ptr, row_ids_ptr, xt_ptr, y_ptr, fan_in, batch, n_out,
                      BLOCK_B: tl.constexpr):
    r = tl.program_id(0)
    b = tl.program_id(1) * BLOCK_B + tl.arange(0, BLOCK_B)
    b_ok = b < batch
    acc = tl.zeros((BLOCK_B,), dtype=tl.float32)
    for j in range(0, fan_in):
        idx = tl.load(indices_ptr + r * fan_in + j).to(tl.int64)
        w = tl.load(values_ptr + r * fan_in + j).to(tl.float32)
        acc += w * tl.load(xt_ptr + idx * batch + b, mask=b_ok, other=0.0).to(tl.float32)
    out = tl.load(row_ids_ptr + r).to(tl.int64)
    tl.store(y_ptr + b.to(tl.int64) * n_out + out, acc.to(y_ptr.dtype.element_ty), mask=b_ok)


def condensed_matmul(values: torch.Tensor, indices: torch.Tensor, row_ids: torch.Tensor, xt: torch.Tensor,
                     n_out: int) -> torch.Tensor:
    """y [batch, n_out] from the condensed layout on the GPU and x^T [k, batch]."""
    rows, fan_in = values.shape
    batch = xt.shape[1]
    y = torch.zeros(batch, n_out, dtype=xt.dtype, device=xt.device)
    grid = (rows, triton.cdiv(batch, BLOCK_B))
    _condensed_kernel[grid](values, indices, row_ids, xt.contiguous(), y, fan_in, batch, n_out,
                            BLOCK_B=BLOCK_B, num_warps=1, num_stages=1)
    return y
