"""SRigL's condensed layout for the GPU kernel (kernels/cuda_triton.py), built and checked on the CPU.

    layout = condensed_layout(weight, mask)        # numpy: values, indices, row_ids
    y = condensed_reference(layout, x)             # numpy: what the GPU kernel computes

The layout is what archs/gpu_cuda_core.py times as `condensed`: the active (non-ablated) rows
only (`row_ids`, int32), each row's nonzero values and their column indices in ascending order,
padded with zero weights (index 0) to the largest fan-in rounded up to `vector_width` (a constant
fan-in SRigL mask pads only to the vector width). Indices are int16 while k <= 32767 (SRigL's
benchmark), else int32. The kernel reads x pre-transposed (x^T [k, batch], contiguous along the
batch) so that a warp of batch columns gathers one line per index; ablated rows stay zero in y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simsparse.errors import PatternError

INT16_MAX_K = 2 ** 15 - 1


@dataclass(frozen=True, eq=False)
class CondensedLayout:
    values: np.ndarray      # [rows_active, fan_in_padded], the weight's dtype
    indices: np.ndarray     # [rows_active, fan_in_padded], int16 or int32
    row_ids: np.ndarray     # [rows_active] int32: output row of each stored row
    n: int                  # output rows of the dense layer
    k: int                  # reduction length

    @property
    def fan_in(self) -> int:
        return int(self.values.shape[1])


def condensed_layout(weight: np.ndarray, mask: np.ndarray, *, vector_width: int = 4) -> CondensedLayout:
    """The condensed storage of `weight * mask` ([n, k], GEMM orientation)."""
    mask = np.asarray(mask, dtype=bool)
    weight = np.asarray(weight)
    if mask.ndim != 2 or weight.shape != mask.shape:
        raise PatternError(f"condensed layout needs a 2-D mask and a weight of its shape; got {mask.shape} "
                           f"and {weight.shape}")
    n, k = mask.shape
    counts = mask.sum(axis=1)
    row_ids = np.flatnonzero(counts).astype(np.int32)
    if row_ids.size == 0:
        raise PatternError("condensed layout of an all-zero mask: the layer has no weights left")
    width = int(-(-counts.max() // vector_width) * vector_width)
    index_dtype = np.int16 if k <= INT16_MAX_K else np.int32
    values = np.zeros((row_ids.size, width), dtype=weight.dtype)
    indices = np.zeros((row_ids.size, width), dtype=index_dtype)
    rows, cols = np.nonzero(mask[row_ids])                 # row-major: columns ascending per row
    slot = np.arange(rows.size) - np.concatenate([[0], np.cumsum(counts[row_ids])[:-1]])[rows]
    values[rows, slot] = weight[row_ids][rows, cols]
    indices[rows, slot] = cols
    return CondensedLayout(values=values, indices=indices, row_ids=row_ids, n=n, k=k)


def condensed_reference(layout: CondensedLayout, x: np.ndarray) -> np.ndarray:
    """y [batch, n] = x [batch, k] @ (weight * mask).T from the layout, in numpy (the kernel's oracle)."""
    gathered = x[:, layout.indices.astype(np.int64)]       # [batch, rows_active, fan_in]
    y = np.zeros((x.shape[0], layout.n), dtype=np.result_type(x, layout.values))
    y[:, layout.row_ids] = np.einsum("brf,rf->br", gathered, layout.values)
    return y
