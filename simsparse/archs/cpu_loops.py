"""Inner-loop throughput models of the real CPU kernels (simsparse/kernels), one function each.

Each function says what one call of the kernel does, as phases run one after the other (the
records, with the execution ports a phase's cycles are counted on, are in archs/cpu_phases.py).

The loops modelled (see the kernels' own docstrings):
  dense     torch F.linear: MKL sgemv at batch 1 (weights streamed once, bandwidth-bound); sgemm
            above it: the weights are packed (read + write + read in L2), then FMAs (compute-bound).
  csr       torch CSR: MKL sparse mv at batch 1 (gather per nonzero), sparse.mm above it
            (x^T copied, one contiguous row of x^T per nonzero, accumulators in registers):
            ~0.8 clk/nnz at batch 1, ~1.5 clk/nnz scalar work at batch 2..16, then bound by the
            x^T rows' cache level (~64 B per nonzero and 16 columns at L2 bandwidth; LLC when
            x^T outgrows L2).
  condensed numba, rows stored in slices of 64 (SELL-64): batch 1..8, per slice 64 gather-dots
            side by side (one gathered x element per entry and column, the values and indices
            loaded once per slice and reused for every column, no horizontal sums, the padding
            rows of the last slice computed too); above, x^T rows scaled into a stack
            accumulator per block of 64 columns, the
            accumulator loaded/stored once per 8 nonzeros (its round trip bounds a group),
            and each row's outputs stored contiguously into y^T [n, m] (y is its transposed view).
  nm        row-major: a gather-dot per row at batch 1, once per column at 2..4, blocked above (as
            condensed's), N slots per group of M, the column computed from a uint8 offset.
  shrunk    dense GEMM on the kept rows/cols + index_select of x + zeros + index_copy of y.
"""

from __future__ import annotations

import math

from simsparse.archs.cpu_phases import LoopProfile, Phase, PortCycles, Shape, Stream, row_line_bytes
from simsparse.archs.cpu_spec import CpuSpec
from simsparse.masks.formats import (BLOCK_BATCH, CONDENSED_COLUMNS_MAX_BATCH, CONDENSED_ROW_ID_BYTES,
                                     CONDENSED_SLICE_ROWS, CSR_INDEX_BYTES, NM_COLUMNS_MAX_BATCH, NM_OFFSET_BYTES,
                                     condensed_index_bytes, condensed_size, condensed_stored_rows, csr_size, nm_size,
                                     nm_slots_per_row, shrunk_size)

TORCH_PARALLEL_GRAIN = 32768   # elements below which torch's element-wise ops stay on one thread
GROUP_OVERHEAD_CLK = 30.0      # numba blocked path: per group of 8 nonzeros (loop set-up, 8 slice views, 8
                               # strided value/index loads from the 64-row slices). Measured 1 thread,
                               # x^T in L2: 45-49 clk per group at batch 16, 52-64 at 32, 63-74 at 48,
                               # 73-87 at 64 (3072x768/77, 768x3072/307, 2048x1024/51): ~38 + 5 per 8-lane chunk
BLOCKED_OPS_PER_ENTRY = 1.5    # vector ops per stored entry and chunk in the product tree (8 mul/fma + 4 adds
                               # per 8 entries), i.e. ~5-6 clk per chunk and group on 2 ports (measured above)
CSR_NNZ_CLK = 1.85             # MKL CSR spmm: scalar work per nonzero (column index + value load, broadcast,
                               # row-of-x^T address); measured 1.81-1.86 clk/nnz at batch 1-3, 2.0 at 5-6
CSR_NNZ_CLK_FAST = 1.2         # ... and ~1/1.5 of that at batch 4 and 8 (whole-call ratio batch 2 / batch 4 = 1.3-1.7,
                               # median 1.5, over 5 shapes at 10-30 % density): MKL has a specialised loop for those widths
CSR_FAST_WIDTHS = (4, 8)       # (2048x1024, fan-in 154, x^T in L1, 1 thread; benchmarks/bench_kernels.py)
DENSE_STREAM_MAX_M = 2         # MKL sgemm with m <= 2 rows streams the weights once without packing
                               # (measured: m = 2 costs what m = 1 does; m = 4 costs ~2x)


def _lanes(spec: CpuSpec, vb: int) -> int:
    return spec.fp32_lanes * (2 if vb == 2 and spec.bf16 else 1)


def _jit_lanes(spec: CpuSpec, vb: int) -> int:
    """Lanes of the numba kernels' vector code (LLVM may prefer narrower vectors than the ISA has)."""
    return spec.jit_lanes * (2 if vb == 2 and spec.bf16 else 1)


# ----------------------------------------------------------------------------- dense GEMM (torch)


def dense_phases(spec: CpuSpec, *, m: int, n: int, k: int, vb: int, threads: int,
                 prefix: str = "") -> list[Phase]:
    """torch F.linear on an [n, k] weight: MKL sgemv (m = 1) or packed sgemm (m > 1)."""
    L = _lanes(spec, vb)
    w_bytes = float(n) * k * vb
    ws = w_bytes / threads + (m * k + m * n) * vb
    x = Stream(prefix + "x", m * k * vb, m * k * vb)
    y = Stream(prefix + "y", m * n * vb, m * n * vb / threads, first_touch=False)
    if m <= DENSE_STREAM_MAX_M:
        chunks = n * math.ceil(k / L)
        return [Phase(prefix + "gemv", PortCycles(fma=m * chunks / spec.fma_ports, load=chunks / spec.load_ports),
                      (Stream(prefix + "weights", w_bytes, ws), x, y), parallel=True, units=n, params="dense")]
    l2 = spec.levels[1].bytes if len(spec.levels) > 2 else spec.levels[0].bytes
    pack_ws = min(w_bytes / threads, 0.5 * l2)
    pack = Phase(prefix + "pack", PortCycles(load=n * math.ceil(k / L) / spec.load_ports), batched=True,
                 streams=
                 (Stream(prefix + "weights", w_bytes, ws),
                  Stream(prefix + "packed", 2.0 * w_bytes, pack_ws, first_touch=False)),
                 parallel=True, units=n, params="dense")
    fmas = m * n * math.ceil(k / L)
    compute = Phase(prefix + "gemm", PortCycles(fma=fmas / spec.fma_ports), (x, y), parallel=True,
                    units=max(1, n // 16) * max(1, m // 8), params="dense", batched=True)
    return [pack, compute]


def dense_profile(spec: CpuSpec, s: Shape, threads: int) -> LoopProfile:
    return LoopProfile(kernel="dense", phases=tuple(dense_phases(spec, m=s.m, n=s.n, k=s.k, vb=s.value_bytes,
                                                                 threads=threads)),
                       calls=1, threaded=True, macs_issued=s.m * s.n * s.k, metadata_bytes=0.0)


def shrunk_profile(spec: CpuSpec, s: Shape, threads: int) -> LoopProfile:
    """Dense on the kept rows/cols, plus the torch ops that gather x and scatter y."""
    vb, rows, cols = s.value_bytes, max(1, s.rows_active), max(1, s.cols_active)
    phases, calls = [], 1
    if s.cols_active < s.k:
        calls += 1
        el = s.m * cols
        phases.append(Phase("index_select", PortCycles(load=el / spec.load_ports, store=el / spec.store_ports),
                            (Stream("x", s.m * s.k * vb, s.m * (s.k + cols) * vb),
                             Stream("x_kept", el * vb, s.m * cols * vb, first_touch=False)),
                            parallel=el > TORCH_PARALLEL_GRAIN, units=s.m))
    phases += dense_phases(spec, m=s.m, n=rows, k=cols, vb=vb, threads=threads, prefix="")
    if s.rows_active < s.n:
        calls += 2
        el = s.m * s.n
        copy = PortCycles(store=(el + s.m * rows) / (spec.store_ports * _lanes(spec, vb)),
                          load=s.m * rows / spec.load_ports)
        phases.append(Phase("zeros_index_copy", copy,
                            (Stream("y", (el + 2 * s.m * rows) * vb, el * vb, first_touch=False),),
                            parallel=el > TORCH_PARALLEL_GRAIN, units=s.m))
    meta = shrunk_size(rows=s.n, cols=s.k, rows_kept=rows, cols_kept=cols, value_bytes=vb).metadata_bytes
    return LoopProfile(kernel="shrunk", phases=tuple(phases), calls=calls, threaded=True,
                       macs_issued=s.m * rows * cols, metadata_bytes=meta)


# ----------------------------------------------------------------------------- sparse kernels


def _gather_dot(spec: CpuSpec, *, rows: int, per_row: int, vb: int, ib: float, alu_per_elem: float) -> PortCycles:
    """Cycles of a gather-dot over `per_row` stored entries in each of `rows` rows (batch 1).
    The compiler vectorises the row (a masked / narrower vector for the tail), so a row costs
    ceil(per_row / lanes) vector loads and FMAs, one gathered element per entry, and a horizontal
    sum; rows are independent, so out-of-order execution overlaps their sums (throughput cost)."""
    L = spec.jit_lanes
    vec = rows * math.ceil(per_row / L)
    return PortCycles(gather=rows * per_row / spec.gather_elements_per_clk,
                      load=vec * (1 + ib / vb) / spec.load_ports,
                      fma=vec / spec.fma_ports,
                      alu=vec * alu_per_elem / 2.0,
                      serial=rows * (spec.hsum_clk + spec.row_overhead_clk))


def _sparse_streams(*, m: int, n: int, k: int, rows: int, per_row: int, vb: int, ib: float,
                    extra_meta: float, threads: int) -> tuple[Stream, ...]:
    stored = rows * per_row * (vb + ib) + extra_meta
    x_ws = k * m * vb
    ws = stored / threads + x_ws + m * n * vb / threads
    out = [Stream("values+indices", stored, ws, gather_loop=m == 1),
           Stream("x" if m == 1 else "x_t rows", rows * per_row * row_line_bytes(m * vb) if m > 1 else k * vb,
                  x_ws, first_touch=m == 1, gathered_rows=m > 1, row_bytes=m * vb if m > 1 else 0.0),
           Stream("y", m * n * vb, m * n * vb / threads, first_touch=False)]
    return tuple(out)


TRANSPOSE_CLK_PER_ELEM = 1.5  # torch x.t().contiguous(): measured 0.55-0.7 ns per element at 2.7 GHz for
                               # [16..64, 768..3072], the same at 1 and 2 threads (torch runs this copy serially)


def _transpose_phase(spec: CpuSpec, *, m: int, k: int, vb: int) -> Phase:
    el = m * k
    return Phase("x_transpose", PortCycles(serial=el * TRANSPOSE_CLK_PER_ELEM),
                 (Stream("x", el * vb, 2 * el * vb), Stream("x_t", el * vb, el * vb, first_touch=False)),
                 parallel=False, units=1, params="dense")   # a torch op: timed on torch's (dense) efficiencies,
                                                            # not the sparse loop's fitted ones


def _remote_xt_phase(*, m: int, k: int, nnz: int, vb: int, threads: int) -> list[Phase]:
    """On > 1 thread: x^T was just written by one core (the serial transpose), so every other
    thread first pulls the x^T lines its rows touch out of that core's cache (a coherence
    transfer, ~8-14 GB/s measured here against ~29 GB/s LLC reads: sparse.mm on a reused x^T
    gains 1.7-2x from the 2nd thread, on a fresh x.t() it gains 0.9-1.5x). The threads pull in
    parallel; each touches 1 - exp(-nnz / (threads k)) of the k rows (uniform columns)."""
    if threads <= 1 or k <= 0:
        return []
    touched = 1.0 - math.exp(-nnz / float(threads * k))
    b = k * touched * row_line_bytes(m * vb)
    return [Phase("x_t_remote", PortCycles(), (Stream("x_t lines from the writing core", b, b, first_touch=False,
                                            cross_core=True),), parallel=False, units=1, batched=True)]


def _csr_spmm(spec: CpuSpec, *, nnz: int, rows: int, m: int, vb: int) -> PortCycles:
    """Cycles of MKL's CSR spmm on a row-major x^T [k, m] (batch m > 1): per nonzero a scalar part
    (CSR_NNZ_CLK) and ceil(m / lanes) vector loads of its x^T row + FMAs into register accumulators;
    per output row the accumulators are stored once. The x^T row loads are the memory side (its
    gathered-row stream): L2-resident x^T costs ~64 B / L2 bandwidth per chunk, as measured."""
    ch = math.ceil(m / _lanes(spec, vb))
    return PortCycles(load=nnz * (2 + ch) / spec.load_ports, fma=nnz * ch / spec.fma_ports,
                      alu=nnz * (CSR_NNZ_CLK_FAST if m in CSR_FAST_WIDTHS else CSR_NNZ_CLK),
                      store=2 * rows * ch / spec.store_ports, serial=rows * (spec.row_overhead_clk + 2 * ch))


def csr_profile(spec: CpuSpec, s: Shape, threads: int) -> LoopProfile:
    vb, ib, rows = s.value_bytes, CSR_INDEX_BYTES, s.n
    per_row = s.nnz / max(1, rows)
    meta = csr_size(rows=s.n, nnz=s.nnz, value_bytes=vb).metadata_bytes
    streams = _sparse_streams(m=s.m, n=s.n, k=s.k, rows=1, per_row=s.nnz, vb=vb, ib=ib,
                              extra_meta=(s.n + 1) * CSR_INDEX_BYTES, threads=threads)
    if s.m == 1:
        cycles = _gather_dot(spec, rows=rows, per_row=int(round(per_row)), vb=vb, ib=ib, alu_per_elem=0.0)
        phases = (Phase("spmv", cycles, streams, parallel=True, units=rows),)
        calls = 1
    else:
        cycles = _csr_spmm(spec, nnz=s.nnz, rows=rows, m=s.m, vb=vb)
        # the [n, m] result is zero-filled, then each row's accumulators are added into it
        streams = tuple(Stream(st.name, 2.0 * st.bytes, st.working_set_bytes, first_touch=False)
                        if st.name == "y" else st for st in streams)
        phases = (_transpose_phase(spec, m=s.m, k=s.k, vb=vb),
                  *_remote_xt_phase(m=s.m, k=s.k, nnz=s.nnz, vb=vb, threads=threads),
                  Phase("spmm", cycles, streams, parallel=True, units=rows, batched=True))
        calls = 2
    return LoopProfile(kernel="csr", phases=phases, calls=calls, threaded=True,
                       macs_issued=s.m * s.nnz, metadata_bytes=meta)


def numba_batch_constants(kernel: str) -> tuple[int, int]:
    """(last batch of the per-column gather-dot path, batch columns per block) of a numba kernel."""
    return (NM_COLUMNS_MAX_BATCH if kernel == "nm" else CONDENSED_COLUMNS_MAX_BATCH), BLOCK_BATCH


def _sliced_gather_dot(spec: CpuSpec, *, rows: int, per_row: int, m: int, vb: int, ib: float) -> PortCycles:
    """Cycles of condensed's sliced gather-dot at batch m <= COLUMNS_MAX_BATCH: per slice of S rows
    and stored entry, one vector load each of S values and S indices (widened), then per batch
    column S gathered elements and S/lanes FMAs into register accumulators; per slice, loop set-up
    and the scattered store of S x m outputs. Padding rows of the last slice cost like real ones."""
    S, L = CONDENSED_SLICE_ROWS, spec.jit_lanes
    slices = math.ceil(rows / S)
    entries = slices * S * per_row                     # stored entries, padding included
    vec = entries / L
    return PortCycles(gather=m * entries / spec.gather_elements_per_clk,
                      load=vec * (1 + ib / vb) / spec.load_ports,
                      fma=m * vec / spec.fma_ports,
                      alu=vec * (ib / vb) / 2.0,              # index widening (vpmovzxwd)
                      serial=slices * spec.row_overhead_clk + rows * m / spec.store_ports)


def _blocked(spec: CpuSpec, *, rows: int, per_row: int, m: int, vb: int, alu: float, block: int,
             group: int = 8) -> PortCycles:
    """Cycles of the blocked path: per row and block of <= `block` batch columns, each group of
    `group` stored entries (8 in condensed, 4 in nm) scales that many row slices of x^T into a
    stack accumulator loaded/stored once (a tree of products); the accumulator round trip (adds +
    store forwarding) bounds a group. The per_row % group tail entries each do their own, shorter
    round trip; measured, a tail of t entries costs about t/group of a group (7 tail entries ~ one
    group of 8), so a row is charged per_row / group groups: smooth and monotone in the fan-in
    (the kernel itself is within ~5-15 % of that at fan-ins just below a multiple of 8)."""
    L = _jit_lanes(spec, vb)
    out = {"load": 0.0, "store": 0.0, "fma": 0.0, "alu": 0.0, "chain": 0.0, "serial": 0.0}
    entries = rows * per_row
    groups = rows * per_row / float(group)
    tree = math.log2(group)
    for w in [block] * (m // block) + ([m % block] if m % block else []):
        ch = math.ceil(w / L)
        out["load"] += (entries * (2 + ch) + groups * ch) / spec.load_ports
        out["store"] += groups * ch / spec.store_ports
        out["fma"] += entries * ch * BLOCKED_OPS_PER_ENTRY / spec.fma_ports
        out["alu"] += entries * (1 + alu) / 4.0
        out["chain"] += groups * (tree * spec.fma_latency_clk + spec.store_forward_clk)
        # loop set-up + `group` x^T slice views per group; per row, its outputs go to a row of y^T:
        # ch contiguous vector stores (the kernels used to scatter w strided stores per row into y
        # [m, n], ~8-9 clk each: 1.3-1.85x slower at batch 64-512 on 3072x768)
        out["store"] += rows * ch / spec.store_ports
        out["serial"] += groups * GROUP_OVERHEAD_CLK * group / 8.0 + rows * (spec.row_overhead_clk + ch)
    return PortCycles(**out)


def _numba_profile(spec: CpuSpec, s: Shape, threads: int, *, kernel: str, rows: int, per_row: int,
                   ib: float, alu: float, extra_meta: float, group: int, metadata_bytes: float) -> LoopProfile:
    """condensed / nm: gather-dot at batch 1, once per column up to COLUMNS_MAX_BATCH, blocked above."""
    vb = s.value_bytes
    cols_max, block = numba_batch_constants(kernel)
    if s.m <= cols_max and kernel == "condensed":
        stored_rows = condensed_stored_rows(rows)
        streams = _sparse_streams(m=1, n=s.n, k=s.k, rows=stored_rows, per_row=per_row, vb=vb, ib=ib,
                                  extra_meta=extra_meta, threads=threads)
        # the slices are read as contiguous vectors (prefetch-friendly, unlike a gather-dot per
        # row): the values+indices stream is an ordinary one; x and y scale with the columns
        streams = tuple(Stream(st.name, st.bytes * (s.m if st.name in ("x", "y") else 1),
                               st.working_set_bytes * (s.m if st.name in ("x", "y") else 1), st.first_touch)
                        for st in streams)
        cycles = _sliced_gather_dot(spec, rows=rows, per_row=per_row, m=s.m, vb=vb, ib=ib)
        phases = (Phase("sliced_gather_dot", cycles, streams, parallel=True,
                        units=math.ceil(rows / CONDENSED_SLICE_ROWS),
                        batched=s.m > 1),)
        calls = 1
    elif s.m <= cols_max:
        streams = _sparse_streams(m=1, n=s.n, k=s.k, rows=rows, per_row=per_row, vb=vb, ib=ib,
                                  extra_meta=extra_meta, threads=threads)
        cyc = _gather_dot(spec, rows=rows, per_row=per_row, vb=vb, ib=ib, alu_per_elem=alu)
        cycles = cyc.scaled(s.m)
        streams = tuple(Stream(st.name, st.bytes * s.m, st.working_set_bytes * (s.m if st.name == "x" else 1),
                               st.first_touch, gather_loop=st.gather_loop) for st in streams)
        phases = (Phase("gather_dot" if s.m == 1 else "gather_dot_columns", cycles, streams, parallel=True,
                        units=rows, batched=s.m > 1),)
        calls = 1
    else:
        streams = _sparse_streams(m=s.m, n=s.n, k=s.k, rows=rows, per_row=per_row, vb=vb, ib=ib,
                                  extra_meta=extra_meta, threads=threads)
        cycles = _blocked(spec, rows=rows, per_row=per_row, m=s.m, vb=vb, alu=alu, block=block,
                          group=group)
        phases = (_transpose_phase(spec, m=s.m, k=s.k, vb=vb),
                  *_remote_xt_phase(m=s.m, k=s.k, nnz=rows * per_row, vb=vb, threads=threads),
                  Phase("blocked", cycles, streams, parallel=True, units=rows, batched=True))
        calls = 2
    return LoopProfile(kernel=kernel, phases=phases, calls=calls, threaded=True,
                       macs_issued=s.m * rows * per_row, metadata_bytes=metadata_bytes)


def condensed_profile(spec: CpuSpec, s: Shape, threads: int) -> LoopProfile:
    size = condensed_size(rows_active=s.rows_active, fan_in=s.fan_in, cols=s.k, value_bytes=s.value_bytes)
    return _numba_profile(spec, s, threads, kernel="condensed", rows=s.rows_active, per_row=s.fan_in,
                          ib=condensed_index_bytes(s.k), alu=0.0,
                          extra_meta=CONDENSED_ROW_ID_BYTES * s.rows_active, group=8,
                          metadata_bytes=size.metadata_bytes)


def nm_profile(spec: CpuSpec, s: Shape, threads: int) -> LoopProfile:
    n_keep, group_m = s.nm if s.nm is not None else (s.k, s.k)
    size = nm_size(rows=s.n, cols=s.k, n_keep=n_keep, group_m=group_m, value_bytes=s.value_bytes)
    alu = 2.0 if n_keep & (n_keep - 1) == 0 else 8.0        # shift+madd, or an integer division
    return _numba_profile(spec, s, threads, kernel="nm", rows=s.n, per_row=nm_slots_per_row(s.k, n_keep, group_m),
                          ib=NM_OFFSET_BYTES, alu=alu, extra_meta=0.0, group=4, metadata_bytes=size.metadata_bytes)


PROFILES = {"dense": dense_profile, "csr": csr_profile, "condensed": condensed_profile,
            "nm": nm_profile, "shrunk": shrunk_profile}
