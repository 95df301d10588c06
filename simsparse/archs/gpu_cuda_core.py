"""The GPU kind's formats beside 2:4 / dense: what runs an unstructured mask for real.

  condensed    SRigL's constant-fan-in kernel on the CUDA cores (their FixedFanIn CUDA op): values
               [rows_active, K] + narrow indices, ablated (all-zero) rows dropped, rows padded to the
               largest fan-in (a RigL mask) and to the vector width. One thread per output row x
               batch column, a warp = 32 batch columns of one row: with the input pre-transposed
               (x^T [k, m]) a warp's gather of x^T[idx, b..b+31] is one coalesced line. Each fan-in
               step waits one round trip for its gather (a dependent chain per thread), so the
               kernel is latency-bound until the SMs' resident warps saturate a resource.
  csr          cuSPARSE SpMM as `F.linear(x, W_csr)` runs it: the dense operand is x^T, column-major,
               for which cuSPARSE walks the columns one by one (CSR_ALG1): one warp per sparse row,
               per column the row's nonzeros in chunks of 32 (a coalesced value/index load, then the
               gather it indexes: two dependent round trips) and a warp-shuffle reduction.
  blocked-ell  cuSPARSE Blocked-ELL SpMM on the tensor cores: a tensor-core GEMM over the occupied
               b x b blocks, each block row padded to the widest (ELL), at a main-loop share of the
               dense library's (indirect block-column loads). Only where the mask has block structure.
  dense        on the CUDA cores (cuBLAS SIMT SGEMM) for fp32 under `fp32_matmul_precision: highest`.

Plans decide from `work.pattern` only. `candidates` builds every CUDA-core plan a mask allows;
`choose` ranks them with the tensor-core plan by the closed form (gpu_cuda_timing / gpu_call) and
records each alternative's time. A spec without a `cuda_cores` block offers none of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from simsparse.archs.gpu_call import LibraryCall, call_times_s, config_timing, library_call
from simsparse.archs.gpu_cuda_spec import CudaCoreSpec
from simsparse.archs.gpu_cuda_timing import (LINE_BYTES, SECTOR_BYTES, WARP, WarpChains, chain_timing,
                                             gather_latency_clk, library_spec, occupancy_blocks, simt_spec)
from simsparse.archs.gpu_kernel import KernelCall, best_config
from simsparse.archs.gpu_spec import GpuSpec
from simsparse.errors import PatternError
from simsparse.records import ExecutionPlan, Gemm, LayerWork, Pattern
from simsparse.units import dtype_bytes

KIND = "gpu_sparse_tensor_core"
CUDA_CORE_FORMATS = ("condensed", "csr", "blocked-ell")
# dtypes the CUDA-core formats run: fp8 has no CUDA-core arithmetic, and neither SRigL's kernel nor
# cuSPARSE's SpMM takes it (an fp8 mask runs 2:4 or dense on the tensor cores)
CUDA_CORE_DTYPES = ("fp32", "tf32", "fp16", "bf16", "int8")
CSR_INDEX_BYTES = 4


@dataclass(frozen=True)
class CudaCorePlan:
    """Payload of a CUDA-core plan: warp chains (condensed, csr) or one library call (SIMT SGEMM,
    Blocked-ELL), plus the extra copy kernels and the host time of the call. No timing."""

    kernel: str                          # condensed | csr | blocked-ell | sgemm
    chains: WarpChains | None = None
    library: str = ""                    # cublas-sgemm | cusparse-blocked-ell (with `call`)
    call: LibraryCall | None = None
    copy_bytes: float = 0.0              # extra kernels' HBM bytes (transposing x for condensed)
    kernels_launched: int = 1
    host_overhead_s: float = 0.0


# ----------------------------------------------------------------------------- shapes from the pattern


@dataclass(frozen=True)
class _Rows:
    """Per-GEMM row statistics of the mask (a grouped conv's pattern spans all groups' rows)."""

    active: int
    fan_in_max: int
    nnz: int


def _groups(pattern: Pattern, gemm: Gemm) -> int:
    """GEMMs whose rows the pattern stacks (a grouped conv's groups; 1 when every GEMM shares the mask)."""
    return max(1, pattern.rows // max(1, gemm.n))


def _rows(work: LayerWork) -> _Rows:
    p = work.pattern
    return _Rows(active=math.ceil((p.rows - p.rows_removed) / _groups(p, work.gemm)),
                 fan_in_max=p.fan_in.max, nnz=math.ceil(work.nnz_per_gemm))


def _plan(work: LayerWork, arch: str, fmt: str, payload: CudaCorePlan, *, macs_issued: int,
          by_level: dict[str, float], metadata_bytes: float, notes: tuple[str, ...],
          padded: Gemm | None = None) -> ExecutionPlan[CudaCorePlan]:
    g = work.gemm
    return ExecutionPlan(layer=work.name, arch=arch, kind=KIND, format=fmt, gemm=g, padded=padded or g, macs_dense=g.macs,
                         macs_effective=round(g.m * work.nnz_per_gemm * g.count), macs_issued=int(macs_issued),
                         bytes_by_level=by_level, metadata_bytes=metadata_bytes, payload=payload, notes=notes)


def _chain_levels(spec: GpuSpec, c: WarpChains, copy_bytes: float) -> dict[str, float]:
    steps = c.warps * c.steps
    return {"hbm": c.hbm_bytes + copy_bytes, "l2": steps * c.l2_bytes_per_step,
            "l1": steps * c.wavefronts_per_step * LINE_BYTES}


# ----------------------------------------------------------------------------- condensed


def condensed_plan(spec: GpuSpec, work: LayerWork, *, arch: str) -> ExecutionPlan[CudaCorePlan]:
    cc: CudaCoreSpec = spec.cuda_cores
    k_spec = cc.condensed
    g, p = work.gemm, work.pattern
    rows = _rows(work)
    vb, ib = dtype_bytes(g.dtype), k_spec.index_bytes if g.k <= 2 ** 15 else 4
    fan_in = math.ceil(rows.fan_in_max / k_spec.vector_width) * k_spec.vector_width
    lanes = min(g.m, WARP)
    if k_spec.input == "row_major":             # each lane gathers from another row of x
        gather_lines, gather_sectors = float(lanes), float(lanes)
    else:                                       # x^T[idx, b..b+31]: one coalesced request
        gather_lines = math.ceil(lanes * vb / LINE_BYTES)
        gather_sectors = math.ceil(lanes * vb / SECTOR_BYTES)
    stored = rows.active * fan_in * g.count
    x_bytes, y_bytes = g.m * g.k * vb * g.count, g.m * rows.active * vb * g.count
    operands = stored * (vb + ib) + rows.active * 4 * g.count
    step = gather_latency_clk(spec, cc, x_bytes + operands) + cc.fma_latency_clk
    blocks = occupancy_blocks(spec, cc, threads_per_block=k_spec.threads_per_block,
                              registers_per_thread=k_spec.registers_per_thread)
    chains = WarpChains(
        warps=rows.active * math.ceil(g.m / WARP) * g.count, warps_per_block=k_spec.threads_per_block // WARP,
        blocks_per_sm=blocks, steps=fan_in, step_clk=step, fixed_clk=cc.l2_latency_clk,
        wavefronts_per_step=gather_lines + 2.0 / k_spec.vector_width,
        l2_bytes_per_step=(gather_sectors + 2.0 / k_spec.vector_width) * SECTOR_BYTES,
        fma_lanes_per_step=WARP, hbm_bytes=x_bytes + operands + y_bytes)
    copy = 2.0 * x_bytes if k_spec.input == "transpose" else 0.0
    payload = CudaCorePlan(kernel="condensed", chains=chains, copy_bytes=copy,
                           kernels_launched=2 if copy else 1, host_overhead_s=k_spec.host_overhead_s)
    notes = [f"condensed: {rows.active} active rows x fan-in {fan_in} ({ib}-byte indices), "
             f"{chains.warps} warps of 32 batch columns, {blocks} block(s) of {k_spec.threads_per_block} "
             f"threads per SM; input {k_spec.input}"]
    if rows.active < g.n:
        notes.append(f"condensed drops {g.n - rows.active} ablated (all-zero) rows")
    if not p.fan_in.constant and rows.nnz:
        notes.append(f"fan-in not constant: rows padded to the max {rows.fan_in_max} "
                     f"({stored / g.count / max(1, rows.nnz) - 1:.0%} extra slots)")
    return _plan(work, arch, "condensed", payload, macs_issued=g.m * stored,
                 by_level=_chain_levels(spec, chains, copy), metadata_bytes=stored * ib + rows.active * 4 * g.count,
                 notes=tuple(notes))


# ----------------------------------------------------------------------------- csr


def csr_plan(spec: GpuSpec, work: LayerWork, *, arch: str) -> ExecutionPlan[CudaCorePlan]:
    cc: CudaCoreSpec = spec.cuda_cores
    g = work.gemm
    rows = _rows(work)
    vb = dtype_bytes(g.dtype)
    chunks = max(1, math.ceil(rows.fan_in_max / WARP))
    mean_row = rows.nnz / max(1, rows.active)
    # lines of x^T's column that 32 consecutive nonzeros of a row touch (sorted column indices)
    span_lines = math.ceil(WARP * (g.k / max(1.0, mean_row)) * vb / LINE_BYTES)
    gather_lines = float(min(WARP, max(1, span_lines)))
    value_index = WARP * (vb + CSR_INDEX_BYTES)
    x_bytes, y_bytes = g.m * g.k * vb * g.count, g.m * g.n * vb * g.count
    operands = rows.nnz * (vb + CSR_INDEX_BYTES) * g.count + (g.n + 1) * CSR_INDEX_BYTES * g.count
    latency = gather_latency_clk(spec, cc, x_bytes + operands)
    blocks = occupancy_blocks(spec, cc, threads_per_block=cc.csr.threads_per_block,
                              registers_per_thread=cc.csr.registers_per_thread)
    chains = WarpChains(
        warps=rows.active * g.count, warps_per_block=cc.csr.threads_per_block // WARP, blocks_per_sm=blocks,
        steps=g.m * chunks, step_clk=2.0 * latency + cc.fma_latency_clk,
        fixed_clk=g.m * math.log2(WARP) * cc.shuffle_latency_clk,
        wavefronts_per_step=gather_lines + value_index / LINE_BYTES,
        l2_bytes_per_step=gather_lines * SECTOR_BYTES + value_index,
        fma_lanes_per_step=WARP, hbm_bytes=x_bytes + operands + y_bytes)
    payload = CudaCorePlan(kernel="csr", chains=chains, host_overhead_s=cc.csr.host_overhead_s)
    note = (f"csr: cuSPARSE SpMM with x^T column-major, one warp per row ({rows.active} rows), the {g.m} "
            f"batch columns in turn, {chunks} chunk(s) of 32 nonzeros per column (longest row {rows.fan_in_max})")
    return _plan(work, arch, "csr", payload, macs_issued=g.m * rows.nnz * g.count,
                 by_level=_chain_levels(spec, chains, 0.0), metadata_bytes=operands - rows.nnz * vb * g.count,
                 notes=(note,))


# ----------------------------------------------------------------------------- blocked-ell


def _ell_shape(spec: GpuSpec, pattern: Pattern, gemm: Gemm) -> tuple[int, int, int] | None:
    """(block size b, block rows, ELL width in blocks) storing the fewest elements, or None when the
    pattern measures no block fill at the spec's block sizes or no block row could skip a block
    (then Blocked-ELL is a dense GEMM with extra indexing). Occupied blocks come from the block
    fill (nnz / (blocks b^2)); they are assumed spread evenly over the block rows (the Pattern has
    no per-block-row histogram), so the ELL width is their mean per block row."""
    best = None
    for b in spec.cuda_cores.blocked_ell.block_sizes:
        fill = pattern.block.get(b)
        if not fill:
            continue
        occupied = pattern.nnz / (fill * b * b)
        block_rows, block_cols = math.ceil(pattern.rows / b), math.ceil(pattern.cols / b)
        width = min(block_cols, max(1, math.ceil(occupied / block_rows)))
        if width >= block_cols:                 # no empty block to skip: a slower dense GEMM
            continue
        if best is None or block_rows * width * b * b < best[1] * best[2] * best[0] ** 2:
            best = (b, block_rows, width)
    return best


def blocked_ell_plan(spec: GpuSpec, work: LayerWork, *, arch: str) -> ExecutionPlan[CudaCorePlan]:
    g, p = work.gemm, work.pattern
    if fp32_on_cuda_cores(spec, g.dtype):
        raise PatternError(f"layer {work.name}: blocked-ell runs on the tensor cores; IEEE fp32 "
                           "(fp32_matmul_precision highest) has none: use fp16/bf16 or precision high (TF32)")
    shape = _ell_shape(spec, p, g)
    if shape is None:
        raise PatternError(f"layer {work.name}: blocked-ell needs empty blocks at block sizes "
                           f"{spec.cuda_cores.blocked_ell.block_sizes} (block fill {dict(p.block)}): use csr "
                           "or condensed for a mask without block structure")
    b, block_rows, width = shape
    group_block_rows = math.ceil(block_rows / _groups(p, g))      # one GEMM's (one group's) block rows
    n_eff = group_block_rows * b
    equivalent = Gemm(m=g.m, n=n_eff, k=width * b, dtype=g.dtype, count=g.count)
    lspec = library_spec(spec, "cusparse-blocked-ell")
    lc = library_call(lspec, lspec.dense, equivalent, sparse=False)
    t = best_config(lspec, lspec.dense, lc.call)
    meta = group_block_rows * width * CSR_INDEX_BYTES * g.count
    payload = CudaCorePlan(kernel="blocked-ell", library="cusparse-blocked-ell", call=lc,
                           kernels_launched=lc.kernels_launched, host_overhead_s=lspec.dense.host_overhead_s)
    note = (f"blocked-ell: {b}x{b} blocks, ELL width {width} of {math.ceil(g.k / b)} block columns "
            f"(block fill {p.block[b]:.0%}); a tensor-core GEMM of {g.m}x{n_eff}x{width * b}")
    return _plan(work, arch, "blocked-ell", payload, macs_issued=t.macs_issued,
                 by_level={"hbm": t.hbm_bytes + meta, "l2": t.l2_bytes, "smem": t.smem_bytes},
                 metadata_bytes=meta, notes=(note,), padded=equivalent)


# ----------------------------------------------------------------------------- dense on CUDA cores


def fp32_on_cuda_cores(spec: GpuSpec, dtype: str) -> bool:
    """An fp32 GEMM runs as IEEE fp32 on the CUDA cores (precision `highest`, or no TF32 tensor cores)."""
    cc = spec.cuda_cores
    return dtype == "fp32" and cc is not None and (cc.fp32_on_cuda_cores or "tf32" not in spec.tensor_dtypes)


def sgemm_plan(spec: GpuSpec, work: LayerWork, gemm: Gemm, *, arch: str, fmt: str) -> ExecutionPlan[CudaCorePlan]:
    """`gemm` as cuBLAS SIMT SGEMM on the CUDA cores (IEEE fp32)."""
    sspec = simt_spec(spec)
    call = KernelCall(rows=gemm.n, cols=gemm.m, k=gemm.k, count=gemm.count, dtype="fp32", sparse=False)
    t = best_config(sspec, sspec.dense, call)
    lc = LibraryCall(library="cublas-sgemm", call=call, tile=t.tile, split_k=t.split_k, stream_k=t.stream_k,
                     kernels_launched=1 + (1 if t.split_k > 1 else 0), pad_copy_bytes=0.0)
    payload = CudaCorePlan(kernel="sgemm", library="cublas-sgemm", call=lc, kernels_launched=lc.kernels_launched,
                           host_overhead_s=sspec.dense.host_overhead_s)
    note = "fp32 on the CUDA cores (fp32_matmul_precision highest): cuBLAS SIMT SGEMM, no TF32"
    return _plan(work, arch, fmt, payload, macs_issued=t.macs_issued,
                 by_level={"hbm": t.hbm_bytes, "l2": t.l2_bytes, "smem": t.smem_bytes}, metadata_bytes=0.0,
                 notes=(note,), padded=gemm)


# ----------------------------------------------------------------------------- timing and choice


def cuda_core_times_s(spec: GpuSpec, payload: CudaCorePlan, *, kernel_clk: float | None = None) -> tuple[float, float]:
    """(device seconds, host seconds) of one call: the main kernel in closed form, or `kernel_clk`
    simulated clocks of it (cycle engine; a library kernel's at its own, possibly power-limited,
    clock), plus copies and the active software stack's launch gaps; the host time per call is the
    stack's for that kernel (`cuda_cores` block plus `software.profiles.NAME.cuda_cores`)."""
    if payload.call is not None:
        lspec = library_spec(spec, payload.library)
        t = config_timing(lspec, payload.call)
        clk = t.kernel_clk if kernel_clk is None else kernel_clk
        return call_times_s(lspec, payload.call, t, kernel_s=clk / (t.clock_hz or lspec.clock_hz))
    clk = chain_timing(spec, spec.cuda_cores, payload.chains).kernel_clk if kernel_clk is None else kernel_clk
    device = (clk / spec.clock_hz + payload.copy_bytes / (spec.hbm_bytes_per_s * spec.hbm_efficiency)
              + payload.kernels_launched * spec.launch_gap_s)
    return device, payload.host_overhead_s


def cuda_core_latency_s(spec: GpuSpec, payload: CudaCorePlan, *, kernel_clk: float | None = None) -> float:
    """Per-call seconds in a steady stream of calls: the slower of device and host."""
    return max(cuda_core_times_s(spec, payload, kernel_clk=kernel_clk))


BUILDERS: dict[str, Callable[..., ExecutionPlan[CudaCorePlan]]] = {
    "condensed": condensed_plan, "csr": csr_plan, "blocked-ell": blocked_ell_plan}


def forced_plan(spec: GpuSpec, work: LayerWork, kernel: str, *, arch: str) -> ExecutionPlan[CudaCorePlan]:
    """The CUDA-core format `kernel` for this mask (PatternError when it cannot run it)."""
    if spec.cuda_cores is None:
        raise PatternError(f"kernel {kernel} needs the spec's cuda_cores block; {arch} has none")
    if work.pattern is None:
        raise PatternError(f"layer {work.name}: kernel {kernel} needs a mask (the layer is dense)")
    if work.gemm.dtype not in CUDA_CORE_DTYPES:
        raise PatternError(f"layer {work.name}: kernel {kernel} has no {work.gemm.dtype} version (the CUDA-core "
                           f"formats run {', '.join(CUDA_CORE_DTYPES)}); use --dtype fp16 or bf16")
    return _conv_note(work, BUILDERS[kernel](spec, work, arch=arch))


def candidates(spec: GpuSpec, work: LayerWork, *, arch: str) -> list[ExecutionPlan[CudaCorePlan]]:
    """Every CUDA-core plan this mask allows (none without a cuda_cores block, none for fp8)."""
    if (spec.cuda_cores is None or work.pattern is None or work.pattern.nnz == 0
            or work.gemm.dtype not in CUDA_CORE_DTYPES):
        return []
    out = []
    for fmt, build in BUILDERS.items():
        try:
            out.append(_conv_note(work, build(spec, work, arch=arch)))
        except PatternError:
            continue
    return out


def _conv_note(work: LayerWork, plan: ExecutionPlan[CudaCorePlan]) -> ExecutionPlan[CudaCorePlan]:
    if work.op_kind != "conv" or plan.format == "blocked-ell":
        return plan
    return replace(plan, notes=plan.notes + ("conv timed as its im2col GEMM: the unfolded input (m x k) is "
                                             "assumed to exist; unfolding it is not charged",))


def choose(plans: list[ExecutionPlan], latency_s: Callable[[ExecutionPlan], float], *,
           keep: ExecutionPlan | None = None) -> ExecutionPlan:
    """The fastest plan by the closed form (or `keep`, the plan the layer is converted to whatever
    the others cost), its notes naming each alternative's time and its `alternatives` holding them
    ({format: latency_s})."""
    timed = sorted(((latency_s(p), i, p) for i, p in enumerate(plans)), key=lambda t: (t[0], t[1]))
    best = keep if keep is not None else timed[0][2]
    alternatives = {p.format: s for s, _, p in timed}
    ranking = ", ".join(f"{p.format} {s * 1e6:.1f} us" for s, _, p in timed)
    how = "kept: a 2:4 mask runs 2:4" if keep is not None else "closed form"
    return replace(best, alternatives=alternatives, notes=best.notes + (f"format choice ({how}): {ranking}",))
