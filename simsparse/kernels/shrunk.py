"""`shrunk`: dense GEMM on the rows (output channels) and columns (inputs) that are not all zero.

This is what channel-level sparsity (Chase) buys on any dense engine: a smaller dense GEMM plus
a gather of the kept input columns and a scatter of the kept output rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from simsparse.kernels.base import KERNELS, Kernel, check_inputs, check_x, masked_weight


@dataclass(frozen=True, eq=False)
class ShrunkPrepared:
    weight: torch.Tensor        # [rows_kept, cols_kept] float32
    rows: torch.Tensor | None   # int64 kept output rows; None when all are kept
    cols: torch.Tensor | None   # int64 kept input columns; None when all are kept
    n: int
    k: int


@KERNELS.register("shrunk")
class ShrunkKernel(Kernel):
    name = "shrunk"
    format = "shrunk"
    index_dtype = "int64"
    layout = "values [rows_kept, cols_kept] fp32 + kept row/col ids (int64); gather x cols, sgemm, scatter y rows"
    backend = "torch"

    @classmethod
    def prepare(cls, weight, mask) -> ShrunkPrepared:
        w, m = check_inputs(weight, mask)
        n, k = w.shape
        rows = np.flatnonzero(m.any(axis=1))
        cols = np.flatnonzero(m.any(axis=0))
        sub = masked_weight(w, m)[torch.from_numpy(rows)][:, torch.from_numpy(cols)].contiguous()
        return ShrunkPrepared(
            weight=sub,
            rows=None if rows.size == n else torch.from_numpy(rows.astype(np.int64)),
            cols=None if cols.size == k else torch.from_numpy(cols.astype(np.int64)),
            n=n, k=k)

    @classmethod
    def run(cls, prepared: ShrunkPrepared, x: torch.Tensor) -> torch.Tensor:
        x = check_x(x, prepared.k)
        if prepared.cols is not None:
            x = x.index_select(1, prepared.cols)
        y_kept = F.linear(x, prepared.weight)
        if prepared.rows is None:
            return y_kept
        y = x.new_zeros((x.shape[0], prepared.n))
        y.index_copy_(1, prepared.rows, y_kept)
        return y

    @classmethod
    def storage_bytes(cls, prepared: ShrunkPrepared) -> dict[str, int]:
        ids = sum(int(t.numel()) * 8 for t in (prepared.rows, prepared.cols) if t is not None)
        return {"values": int(prepared.weight.numel()) * 4, "indices": ids}
