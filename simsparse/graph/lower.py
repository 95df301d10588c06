"""Lowering ops to GEMMs `C[m, n] = A[m, k] · W[n, k]^T` (`count` times) for a batch size.

- conv (any spatial rank, stride/padding/dilation/groups, depthwise too): m = batch·Ho·Wo,
  n = Cout/groups, k = Cin/groups·kh·kw, count = groups. Ho/Wo come from the input size and
  the conv parameters: Ho = floor((H + 2p − d·(kh − 1) − 1)/s) + 1.
- linear: m = batch·tokens, n = out_features, k = in_features.
- matmul (attention Q·K^T, A·V): the per-sample (m, n, k) with m = tokens, count = batch·heads
  (each head of each sample is its own GEMM; the batch is not folded into m).
- everything else: no GEMM; `layer_works` makes it a "memory" LayerWork moving
  (elements_in + elements_out)·batch·dtype bytes, with elements = elements_out·batch.

For a masked layer `LayerWork.mask` is the `[rows, k]` GEMM-oriented bool matrix
(`masks.patterns.as_matrix`: Cin innermost; for grouped convs the groups' rows are stacked, so
rows = groups·n) and `pattern` its `Pattern`, measured once here (`gemm_work`, `masked_work`). An
unmasked layer is dense: mask and pattern None (`plain_work`); a synthetic layer may carry only a
closed-form pattern (`graph.synthetic`). Removing channels is not lowering's business: `graph.shrink`
shrinks the network (coupled across producers and consumers) and the shrunk ops lower like any other.

Masks reach `layer_works` already bound to op names (`graph.bind.bind`, run once by the caller).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from simsparse.errors import GeometryError
from simsparse.masks.patterns import analyze, analyze_rows, as_matrix, from_gemm_rows, to_bool_array
from simsparse.records import Gemm, LayerWork, Op, Workload
from simsparse.units import dtype_bytes

GEMM_KINDS = ("conv", "linear", "matmul")


def conv_output_hw(op: Op) -> tuple[int, ...]:
    """Output spatial size of a conv op from its input size, kernel, stride, padding, dilation."""
    w = op.weight_shape or ()
    nd = len(w) - 2
    spatial_in = tuple(op.input_shape[1:1 + nd])
    if nd < 1 or len(spatial_in) != nd:
        raise GeometryError(f"conv {op.name}: input_shape {op.input_shape} does not fit weight {w}")

    def per_dim(v: tuple[int, ...], default: int) -> tuple[int, ...]:
        return tuple(v) if len(v) == nd else (tuple(v) * nd)[:nd] if v else (default,) * nd

    stride, pad, dil = per_dim(op.stride, 1), per_dim(op.padding, 0), per_dim(op.dilation, 1)
    out = tuple((h + 2 * p - d * (k - 1) - 1) // s + 1
                for h, p, d, k, s in zip(spatial_in, pad, dil, w[2:], stride))
    if min(out) < 1:
        raise GeometryError(f"conv {op.name}: input {spatial_in} is smaller than the kernel {tuple(w[2:])}")
    return out


def op_gemm(op: Op, *, batch: int, dtype: str = "fp16") -> Gemm | None:
    """The GEMM of one op for `batch` samples, or None for non-GEMM ops."""
    if op.kind == "conv":
        w = op.weight_shape
        g = max(1, op.groups)
        return Gemm(m=batch * math.prod(conv_output_hw(op)), n=w[0] // g, k=math.prod(w[1:]), dtype=dtype, count=g)
    if op.kind == "linear":
        w = op.weight_shape
        return Gemm(m=batch * op.tokens, n=w[0], k=w[1], dtype=dtype)
    if op.kind == "matmul":
        m, n, k = op.gemm_mnk
        return Gemm(m=m, n=n, k=k, dtype=dtype, count=batch * op.count)
    return None


def lower(workload: Workload, *, batch: int, dtype: str = "fp16") -> list[tuple[Op, Gemm | None]]:
    """Every op of `workload` with its GEMM for `batch` samples (None for non-GEMM ops)."""
    if batch < 1:
        raise GeometryError(f"batch must be >= 1, got {batch}")
    return [(op, op_gemm(op, batch=batch, dtype=dtype)) for op in workload.ops]


def dense_macs_per_sample(workload: Workload) -> int:
    """Dense multiply-accumulates of all conv/linear/matmul ops for one sample."""
    return sum(g.macs for _, g in lower(workload, batch=1) if g is not None)


def _weight_mask(op: Op, mask: np.ndarray) -> np.ndarray:
    """The weight-shaped bool mask of `op` (a `[rows, k]` GEMM-oriented matrix is accepted too)."""
    w = tuple(op.weight_shape or ())
    arr = to_bool_array(mask, name=f"mask of {op.name}")
    if arr.shape == w:
        return arr
    if len(w) > 2 and arr.shape == (w[0], math.prod(w[1:])):
        return from_gemm_rows(arr, w)
    raise GeometryError(f"mask for layer {op.name} has shape {arr.shape} but the layer's weight is {w}; "
                        "use the mask of this layer (weight-shaped)")


def gemm_work(*, name: str, gemm: Gemm, mask: np.ndarray | None = None, op_kind: str = "linear") -> LayerWork:
    """One GEMM layer; `mask` ([rows, k] GEMM-oriented bool, None = dense) is measured into its Pattern
    here, once (an all-ones mask stays a mask: the archs must cost it exactly as the dense layer)."""
    if mask is None:
        return LayerWork(name=name, kind="gemm", op_kind=op_kind, gemm=gemm, dtype=gemm.dtype)
    mat = to_bool_array(mask, name=f"mask of {name}")
    pattern = analyze(mat, name=name)
    return LayerWork(name=name, kind="gemm", op_kind=op_kind, gemm=gemm, mask=mat, pattern=pattern,
                     dtype=gemm.dtype)


def plain_work(op: Op, gemm: Gemm | None, *, batch: int, dtype: str) -> LayerWork:
    """The LayerWork of an op without a mask: memory work for non-GEMM ops, else the dense GEMM."""
    if gemm is None:
        elems = (op.elements_in + op.elements_out) * batch
        return LayerWork(name=op.name, kind="memory", op_kind=op.kind, bytes_moved=elems * dtype_bytes(dtype),
                         elements=op.elements_out * batch, dtype=dtype)
    return LayerWork(name=op.name, kind="gemm", op_kind=op.kind, gemm=gemm, dtype=dtype)


def masked_work(op: Op, gemm: Gemm, mask: np.ndarray, *, dtype: str) -> LayerWork:
    """The LayerWork of a GEMM op with its mask (weight-shaped or `[rows, k]`), measured once."""
    wmask = _weight_mask(op, mask)
    mat = as_matrix(wmask)
    return LayerWork(name=op.name, kind="gemm", op_kind=op.kind, gemm=gemm, mask=mat,
                     pattern=analyze_rows(mat, wmask.shape), dtype=dtype)


def layer_works(workload: Workload, *, batch: int, dtype: str,
                masks: Mapping[str, np.ndarray]) -> list[LayerWork]:
    """One LayerWork per op: GEMM ops with their mask (absent = dense), other ops as memory work.

    `masks` are weight-shaped (a `[rows, k]` GEMM-oriented matrix is accepted too) and keyed by op
    name, as `graph.bind.bind` returns them or `graph.synthetic.synthetic_masks` makes them.
    """
    known = {op.name for op in workload.ops}
    stray = sorted(set(masks) - known)
    if stray:
        raise GeometryError(f"masks {', '.join(stray[:4])} name no op of workload {workload.name}; "
                            "bind checkpoint masks to the workload first (graph.bind.bind)")
    out: list[LayerWork] = []
    for op, gemm in lower(workload, batch=batch, dtype=dtype):
        mask = masks.get(op.name) if gemm is not None and op.kind != "matmul" else None
        out.append(plain_work(op, gemm, batch=batch, dtype=dtype) if mask is None
                   else masked_work(op, gemm, mask, dtype=dtype))
    return out
