"""GPU with 2:4 sparse tensor cores (A100, H100): `kind: gpu_sparse_tensor_core`.

Per layer the model decides the execution format the device can use for the measured mask:
  "2:4"    every group of 4 along K holds <= 2 nonzeros (tf32: every pair <= 1) -> the sparse
           back end (cuSPARSELt or CUTLASS, `software.backend`), weight compressed + metadata;
  "shrunk" all-zero output rows / input channels are removed -> the smaller dense GEMM;
  "dense"  otherwise (a non-compliant mask falls back to dense; the note gives the share of
           violating groups).
When both 2:4 and shrunk apply, the faster one (closed form) is taken and the choice noted.
Each GEMM becomes a library call: the library's padding and minimum shapes, the fastest tile
configuration (`gpu_kernel.best_config`), extra copy kernels, launch gaps and host overhead.
Non-GEMM ops are memory-bound kernels (bytes / bandwidth + launch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from simsparse.archs import ARCH_KINDS, ArchModel
from simsparse.archs.gpu_kernel import (KernelCall, KernelTiming, best_config, kernel_seconds,
                                        operand_a_bytes_per_element)
from simsparse.archs.gpu_spec import GPU_DTYPES, GpuSpec, KernelLibrary, parse_gpu_spec
from simsparse.errors import SimSparseError
from simsparse.records import ExecutionPlan, Gemm, LayerWork
from simsparse.units import dtype_bytes

KIND = "gpu_sparse_tensor_core"


@dataclass(frozen=True)
class CallCost:
    """Everything one library call costs besides the main kernel's own time."""

    library: str
    call: KernelCall
    kernel: KernelTiming
    pad_s: float             # copy kernels: padding the dense operand, copying the output back
    n_kernels: int           # kernels launched by the call
    launch_s: float          # launch gaps of those kernels
    host_s: float            # host time per call (0 when the spec excludes host overhead)

    def device_s(self, kernel_s: float) -> float:
        return kernel_s + self.kernel.reduction_s + self.pad_s + self.launch_s

    def latency_s(self, kernel_s: float) -> float:
        """Per-call time in a steady stream of calls: the slower of host and device."""
        return max(self.device_s(kernel_s), self.host_s)


def _round_up(x: int, multiple: int) -> int:
    return int(math.ceil(x / multiple) * multiple) if multiple > 1 else int(x)


def gpu_dtype(dtype: str) -> str:
    """PyTorch fp32 runs on tensor cores as tf32 (1:2 sparse); the other dtypes map to themselves."""
    dtype = "tf32" if dtype == "fp32" else dtype
    if dtype not in GPU_DTYPES:
        raise SimSparseError(f"dtype {dtype!r} is not supported by gpu tensor cores; use one of "
                             + ", ".join(GPU_DTYPES))
    return dtype


def library_call(spec: GpuSpec, lib: KernelLibrary, gemm: Gemm, *, sparse: bool) -> CallCost:
    """Pad `gemm` to the library's minimum shapes, pick its tile config and add call overheads."""
    dtype = gpu_dtype(gemm.dtype)
    sr, sc, dr, dc = lib.min_shapes.get(dtype, (1, 1, 1, 1))
    rows, k = _round_up(gemm.n, sr), _round_up(gemm.k, max(sc, dc))
    cols = _round_up(gemm.m, dr)
    call = KernelCall(rows=rows, cols=cols, k=k, count=gemm.count, dtype=dtype, sparse=sparse)
    kernel = best_config(spec, lib, call)
    n_kernels = 1 + lib.output_copies + (1 if kernel.split_k > 1 else 0)
    b = dtype_bytes(dtype)
    hbm_bytes_per_s = spec.hbm_bytes_per_s * spec.hbm_efficiency
    copy_bytes = lib.output_copies * 2.0 * gemm.m * gemm.n * b * gemm.count
    if (cols, k) != (gemm.m, gemm.k):
        copy_bytes += (gemm.m * gemm.k + cols * k) * b * gemm.count
        n_kernels += 1
    pad_s = copy_bytes / hbm_bytes_per_s
    host = lib.host_overhead_s if spec.include_host_overhead else 0.0
    return CallCost(library=lib.name, call=call, kernel=kernel, pad_s=pad_s, n_kernels=n_kernels,
                    launch_s=n_kernels * spec.launch_gap_s, host_s=host)


def call_latency_s(spec: GpuSpec, cost: CallCost) -> float:
    return cost.latency_s(cost.kernel.kernel_clk / spec.clock_hz)


# ----------------------------------------------------------------------------- mask analysis


def _compliance(work: LayerWork, dtype: str) -> tuple[bool, float, object]:
    """(2:4-compliant for this dtype, share of violating groups, pattern) measured from the mask."""
    from simsparse.masks.patterns import analyze, pattern_violating_share, violating_group_share

    pattern = work.pattern if work.pattern is not None else analyze(work.mask, name=work.name)
    n_keep, group = (1, 2) if dtype == "tf32" else (2, 4)
    ok = pattern.is_nm(n_keep, group)
    share = 0.0 if ok else pattern_violating_share(pattern, n_keep, group)
    if share is None:
        share = violating_group_share(np.asarray(work.mask, dtype=bool), n_keep, group)
    return ok, share, pattern


def _shrunk_gemm(work: LayerWork, pattern) -> Gemm | None:
    if pattern.rows_removed == 0 and pattern.cols_removed == 0:
        return None
    if work.shrunk is not None:
        return work.shrunk
    g = work.gemm
    k = g.k - pattern.cols_removed * max(1, pattern.reduction_per_channel)
    return Gemm(m=g.m, n=g.n - pattern.rows_removed, k=k, dtype=g.dtype, count=g.count)


@ARCH_KINDS.register(KIND)
class GpuSparseTensorCore(ArchModel):
    """A GPU whose tensor cores run 2:4 sparse GEMMs through a chosen back end."""

    kind = KIND
    spec: GpuSpec
    plans_from_pattern = True

    parse_spec = staticmethod(parse_gpu_spec)

    def default_dtype(self) -> str:
        return "fp16"

    def supported_dtypes(self) -> tuple[str, ...]:
        return GPU_DTYPES + ("fp32",)

    # ------------------------------------------------------------------ planning

    def plan(self, work: LayerWork, *, dense: bool = False) -> ExecutionPlan:
        if work.kind == "memory":
            return self._plan_memory(work)
        if work.gemm is None:
            raise SimSparseError(f"layer {work.name}: a gemm layer needs its GEMM geometry")
        if dense or (work.mask is None and work.pattern is None):
            return self._plan_gemm(work, work.gemm, fmt="dense", notes=())
        return self._plan_masked(work)

    def _plan_masked(self, work: LayerWork) -> ExecutionPlan:
        dtype = gpu_dtype(work.gemm.dtype)
        ok, share, pattern = _compliance(work, dtype)
        rule = "1:2" if dtype == "tf32" else "2:4"
        shrunk = _shrunk_gemm(work, pattern)
        if ok:
            sparse_plan = self._plan_gemm(work, work.gemm, fmt="2:4", notes=(), pattern=pattern)
            if shrunk is None:
                return self._flag_slower_than_dense(work, sparse_plan, rule=rule)
            shrunk_plan = self._plan_gemm(work, shrunk, fmt="shrunk", notes=(), pattern=pattern)
            best, other = sorted([sparse_plan, shrunk_plan], key=lambda p: p.details["latency_s"])
            note = (f"both {rule} and shrunk ({shrunk.n}x{shrunk.k}) apply; {best.format} is faster "
                    f"({best.details['latency_s'] * 1e6:.1f} us vs {other.details['latency_s'] * 1e6:.1f} us)")
            return replace(best, notes=best.notes + (note,))
        if pattern.nnz == pattern.rows * pattern.cols:
            notes: tuple[str, ...] = ("mask is fully dense",)
        else:
            notes = (f"mask is not {rule}: {share:.1%} of groups along K hold too many nonzeros; "
                     "dense fallback" + (" (shrunk to the live channels)" if shrunk else ""),)
        if shrunk is not None:
            return self._plan_gemm(work, shrunk, fmt="shrunk", notes=notes, pattern=pattern)
        return self._plan_gemm(work, work.gemm, fmt="dense", notes=notes, pattern=pattern)

    def _flag_slower_than_dense(self, work: LayerWork, plan: ExecutionPlan, *, rule: str) -> ExecutionPlan:
        """Keep the sparse plan (it is what converting the layer does) but say when dense is faster."""
        dense_s = self._plan_gemm(work, work.gemm, fmt="dense", notes=()).details["latency_s"]
        sparse_s = plan.details["latency_s"]
        if sparse_s <= dense_s:
            return plan
        note = (f"{rule} runs {dense_s / sparse_s:.2f}x of dense here ({sparse_s * 1e6:.1f} us vs "
                f"{dense_s * 1e6:.1f} us: padding/overhead dominate); keeping this layer dense would be faster")
        return replace(plan, notes=plan.notes + (note,))

    def _plan_gemm(self, work: LayerWork, gemm: Gemm, *, fmt: str, notes: tuple[str, ...],
                   pattern=None) -> ExecutionPlan:
        spec = self.spec
        sparse = fmt == "2:4"
        lib = spec.sparse_library if sparse else spec.dense
        cost = library_call(spec, lib, gemm, sparse=sparse)
        t = cost.kernel
        orig = work.gemm
        nnz = pattern.nnz if pattern is not None else (orig.n * orig.k if work.mask is None else work.nnz)
        call = cost.call
        meta = call.rows * call.k * call.count / 8.0 if sparse else 0.0
        pad_note = () if (call.rows, call.cols, call.k) == (gemm.n, gemm.m, gemm.k) else (
            f"{lib.name} pads {gemm.m}x{gemm.n}x{gemm.k} to {call.cols}x{call.rows}x{call.k}",)
        tiles = {"library": lib.name, "tile_rows": t.tile.rows, "tile_cols": t.tile.cols,
                 "stages": t.tile.stages, "split_k": t.split_k, "ctas_per_sm": t.ctas_per_sm,
                 "tiles": t.tiles, "waves": round(t.waves, 3)}
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format=fmt, gemm=orig,
            padded=Gemm(m=call.cols, n=call.rows, k=call.k, dtype=call.dtype, count=call.count),
            tiles=tiles, macs_dense=orig.macs, macs_effective=orig.m * nnz * orig.count,
            macs_issued=int(t.macs_issued),
            bytes_by_level={"hbm": t.hbm_bytes, "l2": t.l2_bytes, "smem": t.smem_bytes},
            metadata_bytes=meta, notes=notes + pad_note,
            details={"cost": cost, "latency_s": call_latency_s(spec, cost),
                     "density": nnz / max(1, orig.n * orig.k),
                     "a_bytes_per_element": operand_a_bytes_per_element(call.dtype, sparse)})

    def _plan_memory(self, work: LayerWork) -> ExecutionPlan:
        spec = self.spec
        kernel_s = work.bytes_moved / (spec.hbm_bytes_per_s * spec.hbm_efficiency) + spec.latency_s
        host = spec.dense.host_overhead_s if spec.include_host_overhead else 0.0
        latency = max(kernel_s + spec.launch_gap_s, host)
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format="memory", gemm=None, padded=None,
            tiles={}, macs_dense=0, macs_effective=0, macs_issued=0,
            bytes_by_level={"hbm": float(work.bytes_moved)}, metadata_bytes=0.0, notes=(),
            details={"memory_kernel_s": kernel_s, "launch_s": spec.launch_gap_s, "host_s": host,
                     "latency_s": latency, "elements": work.elements})


# engines of this kind register themselves on import
from simsparse.engines import gpu_analytic as _gpu_analytic  # noqa: E402,F401
from simsparse.engines import gpu_event as _gpu_event  # noqa: E402,F401
