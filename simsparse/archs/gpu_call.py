"""One GEMM call of a GPU kernel library as launched (no timing), and the closed form of its time.

`library_call` is what the library does with a GEMM: pad it to its minimum shapes, pick its fastest
tile x split-K configuration (`gpu_kernel.best_config`: an autotuned library's heuristic, ranked by
the closed-form kernel time), and add copy kernels (padding the dense operand, copying the output
back). The result, `LibraryCall`, is plain data: the shape, the configuration, the kernels launched
and the bytes they copy.

`call_times_s` composes a call's (device, host) seconds from its main kernel's seconds: split-K
reduction, copy kernels and launch gaps on the device; the host time per call is the library's
under the spec's software stack. A steady stream of calls costs the slower of the two
(`call_latency_s`). The analytic engine feeds it the closed-form kernel time
(`closed_form_latency_s`), the cycle engine the simulated one; the arch model ranks formats (2:4,
dense, the CUDA-core formats) by the closed form, as PyTorch users pick the faster conversion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from simsparse.archs.gpu_kernel import KernelCall, KernelTiming, best_config, time_config
from simsparse.archs.gpu_software import GPU_DTYPES, KernelLibrary, TileConfig
from simsparse.archs.gpu_spec import GpuSpec
from simsparse.errors import SimSparseError
from simsparse.records import Gemm
from simsparse.units import dtype_bytes


@dataclass(frozen=True)
class LibraryCall:
    """One library call of a GEMM: what it launches, with no timing."""

    library: str             # cublas, cusparselt, cutlass (the spec's library name)
    call: KernelCall         # the GEMM as the library runs it (padded; sparse = on the sparse tensor cores)
    tile: TileConfig         # the library's chosen threadblock tile ...
    split_k: int             # ... and K-slices
    stream_k: bool           # ... and whether its partial last wave runs stream-K
    kernels_launched: int    # main kernel + split-K reduction + copy kernels
    pad_copy_bytes: float    # HBM bytes the copy kernels move (padding the dense operand, output copies)


def _round_up(x: int, multiple: int) -> int:
    return int(math.ceil(x / multiple) * multiple) if multiple > 1 else int(x)


def gpu_dtype(dtype: str) -> str:
    """PyTorch fp32 runs on tensor cores as tf32 (1:2 sparse); the other dtypes map to themselves."""
    dtype = "tf32" if dtype == "fp32" else dtype
    if dtype not in GPU_DTYPES:
        raise SimSparseError(f"dtype {dtype!r} is not supported by gpu tensor cores; use one of "
                             + ", ".join(GPU_DTYPES))
    return dtype


def library_of(spec: GpuSpec, call: KernelCall) -> KernelLibrary:
    """The library that runs `call`: the sparse back end for a sparse call, else the dense one."""
    return spec.sparse_library if call.sparse else spec.dense


def library_call(spec: GpuSpec, lib: KernelLibrary, gemm: Gemm, *, sparse: bool) -> LibraryCall:
    """Pad `gemm` to the library's minimum shapes, pick its tile config and count the extra kernels."""
    dtype = gpu_dtype(gemm.dtype)
    sr, sc, dr, dc = lib.min_shapes.get(dtype, (1, 1, 1, 1))
    rows, k = _round_up(gemm.n, sr), _round_up(gemm.k, max(sc, dc))
    cols = _round_up(gemm.m, dr)
    call = KernelCall(rows=rows, cols=cols, k=k, count=gemm.count, dtype=dtype, sparse=sparse)
    kernel = best_config(spec, lib, call)
    n_kernels = 1 + lib.output_copies + (1 if kernel.split_k > 1 else 0)
    b = dtype_bytes(dtype)
    copy_bytes = lib.output_copies * 2.0 * gemm.m * gemm.n * lib.output_bytes(dtype) * gemm.count
    if (cols, k) != (gemm.m, gemm.k):
        copy_bytes += (gemm.m * gemm.k + cols * k) * b * gemm.count
        n_kernels += 1
    return LibraryCall(library=lib.name, call=call, tile=kernel.tile, split_k=kernel.split_k, stream_k=kernel.stream_k,
                       kernels_launched=n_kernels, pad_copy_bytes=copy_bytes)


@lru_cache(maxsize=4096)
def _config_timing(spec: GpuSpec, lib: KernelLibrary, call: KernelCall, tile: TileConfig,
                   split_k: int, stream_k: bool) -> KernelTiming:
    return time_config(spec, lib, call, tile, split_k, stream_k=stream_k)


def config_timing(spec: GpuSpec, lc: LibraryCall) -> KernelTiming:
    """Closed-form tiles, waves, traffic and clocks of the call's main kernel (gpu_kernel.time_config);
    the library's own choice comes from best_config's memo, any other configuration is timed."""
    lib = library_of(spec, lc.call)
    chosen = best_config(spec, lib, lc.call)
    if (chosen.tile, chosen.split_k, chosen.stream_k) == (lc.tile, lc.split_k, lc.stream_k):
        return chosen
    return _config_timing(spec, lib, lc.call, lc.tile, lc.split_k, lc.stream_k)


def call_times_s(spec: GpuSpec, lc: LibraryCall, t: KernelTiming, *, kernel_s: float) -> tuple[float, float]:
    """(device, host) seconds of a call whose main kernel takes `kernel_s`: the device adds the split-K
    reduction, copies and launch gaps; the host time per call is its library's under the active stack."""
    pad_s = lc.pad_copy_bytes / (spec.hbm_bytes_per_s * spec.hbm_efficiency)
    device = kernel_s + t.reduction_s + pad_s + lc.kernels_launched * spec.launch_gap_s
    return device, library_of(spec, lc.call).host_overhead_s


def call_latency_s(spec: GpuSpec, lc: LibraryCall, t: KernelTiming, *, kernel_s: float) -> float:
    """Per-call time in a steady stream of calls: the slower of host and device."""
    return max(call_times_s(spec, lc, t, kernel_s=kernel_s))


def closed_form_latency_s(spec: GpuSpec, lc: LibraryCall) -> float:
    """The call's time with the closed-form main kernel (the analytic engine's answer)."""
    t = config_timing(spec, lc)
    return call_latency_s(spec, lc, t, kernel_s=t.kernel_clk / t.clock_hz)


def stream_kernel_s(spec: GpuSpec, stream_bytes: float) -> float:
    """A memory-bound kernel (norm, element-wise, ...): its bytes over achievable HBM bandwidth + latency."""
    return stream_bytes / (spec.hbm_bytes_per_s * spec.hbm_efficiency) + spec.latency_s
