"""Closed-form timing of one (sparse) tensor-core GEMM kernel: tiles, K-loop, waves, traffic.

The GEMM is seen as PyTorch runs a sparse Linear: y = x·Wᵀ is computed transposed, so the
weight W [rows=n, k] is the (sparse) A operand and the activations xᵀ [k, cols=m] the dense B
operand. A kernel launches threadblock tiles (rows x cols) over the output; each CTA runs a
K-loop whose stages load `k_step` slices of A and B into shared memory while the tensor cores
issue MMAs (`mma.sp` at `sparse_speedup` x the dense rate on half the A values plus metadata).
Tiles run in waves of `sms x ctas_per_sm`; a wave is bounded by the slowest of compute, the
per-SM load port, L2 bandwidth, HBM bandwidth (operand panels reused through L2) and the K-loop's
memory-level parallelism (Little's law: a CTA keeps `stages - 1` stages in flight, so one K-step
takes at least latency / (stages - 1)), plus a pipeline fill (memory latency and the first stage)
and an exposed epilogue that writes the call's output dtype (int8 GEMMs write int32 or bf16).
The kernel runs at the clock its power limit allows (`gpu_power`: a launch that keeps every SM
busy may run below `clock_hz`); every clock count here is at that clock (`KernelTiming.clock_hz`).

Everything here is a pure function of (spec, library, call, tile, split_k); the arch model uses
it to pick the library's fastest configuration (an autotuned library's heuristic), the analytic
engine to time it, and the cycle engine replays the same quantities event by event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from simsparse.archs.gpu_power import sustained_clock_hz
from simsparse.archs.gpu_software import KernelLibrary, TileConfig
from simsparse.archs.gpu_spec import GpuSpec
from simsparse.errors import SimSparseError
from simsparse.units import dtype_bytes

METADATA_BYTES_PER_DENSE_ELEMENT = 1.0 / 8.0  # 2-bit index per kept value, one value kept of two
ACCUM_BYTES = 4                               # fp32 (int32) split-K partials
ACCUM_REGISTER_SHARE = 0.5                    # prior: fp32 accumulators hold ~half a CTA's registers (the
                                              # rest: operand fragments, addresses), so a 128x256 tile (128 KB
                                              # of accumulators) runs one CTA per 256 KB register file
OVERLAP_P = 6.0                               # smooth-max exponent (2^(1/6) = +12 % at the ridge)
MAX_AUTO_STAGES = 16                          # deepest pipeline an auto-staged kernel builds


@dataclass(frozen=True)
class KernelCall:
    """One GEMM call as the library sees it (after the library's padding)."""

    rows: int        # weight rows n (the sparse A operand's rows)
    cols: int        # tokens m (dense B operand's columns)
    k: int
    count: int
    dtype: str
    sparse: bool


@dataclass(frozen=True)
class WaveWork:
    """What one wave does: `tiles` CTAs, `per_sm` of them on the busiest SM, the HBM bytes of its
    operand reads, and the share of its C-tile stores that reach HBM (the rest stay in a warm L2)."""

    tiles: int
    per_sm: int
    active_sms: int
    hbm_bytes: float
    hbm_store_share: float = 1.0


@dataclass(frozen=True)
class KernelTiming:
    tile: TileConfig
    split_k: int
    ctas_per_sm: int
    tiles: int
    slots: int
    k_split: int
    k_steps: int
    tile_compute_clk: float
    tile_load_bytes: float
    tile_store_bytes: float
    fill_clk: float
    epilogue_clk: float
    full_waves: float            # whole waves (fractional under stream-K: the tail spread over all SMs)
    full_wave: WaveWork | None
    last_wave: WaveWork | None
    wave_clk_full: float
    wave_clk_last: float
    compute_clk: float           # sum over waves of the compute term
    memory_clk: float            # sum over waves of the largest memory term
    kernel_clk: float            # main kernel, all waves
    reduction_s: float           # split-K reduction kernel / stream-K fix-up traffic (0 without either)
    hbm_bytes: float
    l2_bytes: float
    smem_bytes: float
    macs_issued: float           # MACs the tensor cores issue (tile padding included; halved for 2:4)
    tile_l2_bytes: float = 0.0   # L2 egress per tile (tile_load_bytes / the library's cluster multicast)
    tile_latency_clk: float = 0.0  # a CTA's K-loop floor from its in-flight stages (Little's law)
    clock_hz: float = 0.0        # the clock the kernel runs at (power-limited; 0: the spec's clock_hz)
    busy_sms: float = 0.0        # SMs the launch keeps busy on average (what the power limit sees)
    stream_k: bool = False       # the partial last wave runs stream-K

    @property
    def waves(self) -> float:
        return self.tiles / self.slots


def operand_a_bytes_per_element(dtype: str, sparse: bool) -> float:
    """HBM/L2 bytes per dense-equivalent element of the weight operand (values + metadata)."""
    b = dtype_bytes(dtype)
    return b / 2.0 + METADATA_BYTES_PER_DENSE_ELEMENT if sparse else float(b)


def _ctas_per_sm(spec: GpuSpec, tile: TileConfig, a_step: float, b_step: float) -> int:
    smem_per_cta = tile.stages * (a_step + b_step)
    regs_per_cta = tile.rows * tile.cols * ACCUM_BYTES / ACCUM_REGISTER_SHARE
    return max(1, min(spec.max_ctas_per_sm, int(spec.smem_bytes_per_sm // max(1.0, smem_per_cta)),
                      int(spec.registers_bytes_per_sm // regs_per_cta)))


def stages_in_flight(spec: GpuSpec, lib: KernelLibrary, tile: TileConfig, ctas: int, stage_bytes: float) -> int:
    """Pipeline stages a CTA keeps in flight: the tile's own count, or, for a library that sizes
    its pipeline to the shared memory (`auto_stages`: CUTLASS 3 / sm90 StageCountAuto), as many
    stages as the SM's shared memory holds for its co-resident CTAs (capped at MAX_AUTO_STAGES)."""
    if not lib.auto_stages:
        return tile.stages
    fit = int(spec.smem_bytes_per_sm // max(1.0, ctas * stage_bytes))
    return max(tile.stages, min(MAX_AUTO_STAGES, fit))


def l2_hit_share(spec: GpuSpec, call: KernelCall, *, a_elem: float, out_bytes: int) -> float:
    """Share of a call's operand and output bytes a warm L2 serves: repeated calls on the same
    tensors without an L2 flush (the `warm_l2` software stacks, as the dev corpora were timed) find
    them in the L2 when they fit in its resident share; a larger working set keeps that fraction."""
    if not spec.profile.warm_l2:
        return 0.0
    total = (call.rows * call.k * a_elem + call.cols * call.k * dtype_bytes(call.dtype)
             + call.rows * call.cols * out_bytes) * call.count
    return min(1.0, spec.l2_bytes * spec.l2_resident_share / max(total, 1.0))


def _wave_hbm_bytes(spec: GpuSpec, call: KernelCall, tile: TileConfig, k_split: int, w: int,
                    tiles_total: int, a_elem: float) -> float:
    """HBM bytes of the operands a wave of `w` tiles reads from a cold L2 (reused through L2;
    outputs excluded)."""
    b = dtype_bytes(call.dtype)
    a_total = call.rows * call.k * a_elem
    b_total = call.cols * call.k * b
    if a_total + b_total <= 0.5 * spec.l2_bytes:          # operands stay in L2: read once
        return (a_total + b_total) * call.count * w / tiles_total
    grid_r = math.ceil(call.rows / tile.rows)
    grid_c = math.ceil(call.cols / tile.cols)
    wr = min(grid_r, max(1, math.ceil(math.sqrt(w))))      # swizzled raster: a near-square block
    wc = min(grid_c, math.ceil(w / wr))
    panels = wr * tile.rows * k_split * a_elem + wc * tile.cols * k_split * b
    return max(panels, (a_total + b_total) * call.count * w / tiles_total)


def prologue_clk(spec: GpuSpec, tile: TileConfig, stage_bytes: float) -> float:
    """Clocks before a CTA's first MMA: a multistage K-loop issues the loads of `stages - 1`
    stages up front and waits for the first of them (memory latency + those bytes through the
    SM's load port). Fewer, longer stages (the sparse kernels' K=64 stages) expose more of it."""
    in_flight = max(1, tile.stages - 1)
    return spec.latency_s * spec.clock_hz + in_flight * stage_bytes / spec.sm_load_bytes_per_clk


def epilogue_wave_clk(spec: GpuSpec, wave: WaveWork, *, tile_store_bytes: float, epilogue_clk: float) -> float:
    """Exposed epilogue of a wave: the tiles of a wave finish together and their C tiles leave
    each SM through its store port into the write-back L2. L2 drains them to HBM while the next
    wave's K-loops run, so the L2 and HBM traffic of the stores are bandwidth terms of the main
    loop (`wave_terms`); only the per-SM store is exposed here."""
    return epilogue_clk + wave.per_sm * tile_store_bytes / spec.sm_load_bytes_per_clk


def soft_max(a: float, b: float) -> float:
    """max(a, b) smoothed: when compute and loads co-limit, queueing on the shared links costs
    extra (the event engine shows it); far from the ridge it is the plain max."""
    hi = max(a, b)
    if hi <= 0.0:
        return 0.0
    return hi * ((a / hi) ** OVERLAP_P + (b / hi) ** OVERLAP_P) ** (1.0 / OVERLAP_P)


def wave_terms(spec: GpuSpec, wave: WaveWork, *, tile_compute_clk: float, tile_load_bytes: float,
               tile_l2_bytes: float | None = None, tile_store_bytes: float = 0.0,
               tile_latency_clk: float = 0.0) -> tuple[float, float, float, float]:
    """(compute, port, l2, hbm) clocks of one wave's main loop. `tile_l2_bytes` is what a tile
    draws from L2 (less than what it loads when a cluster multicasts shared operand tiles); the
    HBM term carries the operand reads and the write-back of the wave's C tiles; the port term
    is the slower of the SM's load port and the K-loop's latency floor `tile_latency_clk` (the
    co-resident CTAs of an SM wait out their latencies together)."""
    compute = wave.per_sm * tile_compute_clk
    port = max(wave.per_sm * tile_load_bytes / spec.sm_load_bytes_per_clk, tile_latency_clk)
    l2_bytes = tile_load_bytes if tile_l2_bytes is None else tile_l2_bytes
    l2 = wave.tiles * (l2_bytes + tile_store_bytes) / spec.l2_bytes_per_clk
    hbm = wave.hbm_bytes + wave.tiles * tile_store_bytes * wave.hbm_store_share
    return compute, port, l2, hbm / spec.hbm_bytes_per_clk


def wave_clk(spec: GpuSpec, wave: WaveWork, *, tile_compute_clk: float, tile_load_bytes: float,
             tile_store_bytes: float, fill_clk: float, epilogue_clk: float,
             tile_l2_bytes: float | None = None, tile_latency_clk: float = 0.0) -> tuple[float, float, float]:
    """(total, compute, memory) clocks of one wave: fill + softmax(compute, loads) + epilogue."""
    compute, port, l2, hbm = wave_terms(spec, wave, tile_compute_clk=tile_compute_clk,
                                        tile_load_bytes=tile_load_bytes, tile_l2_bytes=tile_l2_bytes,
                                        tile_store_bytes=tile_store_bytes, tile_latency_clk=tile_latency_clk)
    memory = max(port, l2, hbm)
    epilogue = epilogue_wave_clk(spec, wave, tile_store_bytes=tile_store_bytes, epilogue_clk=epilogue_clk)
    return fill_clk + soft_max(compute, memory) + epilogue, compute, memory


def _waves(spec: GpuSpec, call: KernelCall, tile: TileConfig, k_split: int, tiles: int, slots: int,
           a_elem: float, *, stream_k: bool = False, l2_hit: float = 0.0
           ) -> tuple[float, WaveWork | None, WaveWork | None]:
    """(number of full waves, a full wave, the partial last wave). Under stream-K scheduling a
    grid larger than one wave has no partial wave: its tail is split along K over all SMs, so
    the kernel runs tiles/slots (fractional) full waves. Operand HBM bytes are those of a wave of
    the machine's size (or the whole grid, if smaller), shared out per tile: a kernel's total then
    never grows when more SMs run it."""
    full, rem = divmod(tiles, slots)
    wave_tiles = min(slots, tiles)
    per_tile = _wave_hbm_bytes(spec, call, tile, k_split, wave_tiles, tiles, a_elem) / wave_tiles * (1.0 - l2_hit)

    def mk(w: int) -> WaveWork:
        return WaveWork(tiles=w, per_sm=math.ceil(w / spec.sms), active_sms=min(spec.sms, w),
                        hbm_bytes=per_tile * w, hbm_store_share=1.0 - l2_hit)

    if stream_k and full and rem:
        return tiles / slots, mk(slots), None
    return full, (mk(slots) if full else None), (mk(rem) if rem else None)


def _kernel_clk(spec: GpuSpec, full: float, wfull: WaveWork | None, wlast: WaveWork | None, kw: dict) -> float:
    """Main-kernel clocks: per-wave fills and epilogues, plus the K-loops bounded over the whole
    kernel: the bandwidth resources by their totals over all waves (waves are not barriers), the
    CTAs' latency-bound K-loops by their chain (a wave's K-loop takes at least its compute and its
    latency floor combined like any co-limiting pair, and waves follow each other on an SM)."""
    totals = [0.0, 0.0, 0.0, 0.0]
    fixed, chain = 0.0, 0.0
    for wave, times in ((wfull, full), (wlast, 1)):
        if wave is None or times == 0:
            continue
        terms = wave_terms(spec, wave, tile_compute_clk=kw["tile_compute_clk"], tile_load_bytes=kw["tile_load_bytes"],
                           tile_l2_bytes=kw["tile_l2_bytes"], tile_store_bytes=kw["tile_store_bytes"])
        totals = [t + times * x for t, x in zip(totals, terms)]
        chain += times * soft_max(terms[0], kw["tile_latency_clk"])
        fixed += times * (kw["fill_clk"] + epilogue_wave_clk(spec, wave, tile_store_bytes=kw["tile_store_bytes"],
                                                             epilogue_clk=kw["epilogue_clk"]))
    return fixed + max(soft_max(totals[0], max(totals[1:])), chain)


def mainloop_rate(spec: GpuSpec, lib: KernelLibrary, call: KernelCall) -> float:
    """Dense-equivalent MACs per clock per SM the library's K-loop sustains for this call."""
    eff = lib.mainloop_efficiency.get(call.dtype)
    if eff is None:
        raise SimSparseError(f"{lib.name} on {spec.name} has no {call.dtype} kernels (its mainloop_efficiency "
                             f"lists {', '.join(lib.mainloop_efficiency)}); use another dtype or back end")
    rate = spec.dense_fma_per_clk_per_sm[call.dtype] * eff
    return rate * spec.sparse_speedup if call.sparse else rate


def busy_sms(full: float, wfull: WaveWork | None, wlast: WaveWork | None) -> float:
    """SMs a launch keeps busy, averaged over its waves."""
    waves = full + (1 if wlast else 0)
    busy = full * (wfull.active_sms if wfull else 0) + (wlast.active_sms if wlast else 0)
    return busy / waves if waves else 0.0


@lru_cache(maxsize=1024)
def at_clock(spec: GpuSpec, clock_hz: float) -> GpuSpec:
    """The spec seen at another clock (every per-clock rate and latency rescales)."""
    return spec if clock_hz == spec.clock_hz else replace(spec, clock_hz=clock_hz)


def time_config(spec: GpuSpec, lib: KernelLibrary, call: KernelCall, tile: TileConfig,
                split_k: int, *, stream_k: bool | None = None) -> KernelTiming:
    """Closed-form timing of `call` run with threadblock `tile` and `split_k` K-slices, its tail
    scheduled stream-K (`stream_k`; default: whenever the library can)."""
    stream_k = lib.stream_k if stream_k is None else stream_k and lib.stream_k
    b = dtype_bytes(call.dtype)
    k_step = max(1, lib.k_step_bytes // b)
    k_split = math.ceil(math.ceil(call.k / split_k) / k_step) * k_step
    a_elem = operand_a_bytes_per_element(call.dtype, call.sparse)
    a_step, b_step = tile.rows * k_step * a_elem, tile.cols * k_step * b
    ctas = _ctas_per_sm(spec, tile, a_step, b_step)
    slots = spec.sms * ctas
    tiles = math.ceil(call.rows / tile.rows) * math.ceil(call.cols / tile.cols) * call.count * split_k
    rate = mainloop_rate(spec, lib, call)
    out_b = lib.output_bytes(call.dtype)
    l2_hit = l2_hit_share(spec, call, a_elem=a_elem, out_bytes=out_b)
    full, wfull, wlast = _waves(spec, call, tile, k_split, tiles, slots, a_elem, stream_k=stream_k, l2_hit=l2_hit)
    busy = busy_sms(full, wfull, wlast)
    cs = at_clock(spec, sustained_clock_hz(spec, busy_sms=busy, duty=lib.mainloop_efficiency[call.dtype],
                                           dtype=call.dtype, sparse=call.sparse))
    k_steps = k_split // k_step
    tile_load = k_steps * (a_step + b_step)
    store = tile.rows * tile.cols * (ACCUM_BYTES if split_k > 1 else out_b)
    tile_l2 = tile_load / lib.l2_multicast
    kw = dict(tile_compute_clk=tile.rows * tile.cols * k_split / rate, tile_load_bytes=tile_load,
              tile_store_bytes=store, fill_clk=prologue_clk(cs, tile, a_step + b_step),
              epilogue_clk=float(lib.epilogue_clk), tile_l2_bytes=tile_l2,
              tile_latency_clk=k_steps * cs.latency_s * cs.clock_hz
              / max(1, stages_in_flight(spec, lib, tile, ctas, a_step + b_step) - 1))
    t_full, c_full, m_full = wave_clk(cs, wfull, **kw) if wfull else (0.0, 0.0, 0.0)
    t_last, c_last, m_last = wave_clk(cs, wlast, **kw) if wlast else (0.0, 0.0, 0.0)
    hbm = full * (wfull.hbm_bytes if wfull else 0.0) + (wlast.hbm_bytes if wlast else 0.0) + tiles * store * (1 - l2_hit)
    reduction_s, extra = _reduction(cs, call, tile, split_k=split_k, stream_k_tail=(full != int(full)),
                                    tail_tiles=tiles % slots, out_bytes=out_b)
    return KernelTiming(
        tile=tile, split_k=split_k, ctas_per_sm=ctas, tiles=tiles, slots=slots, k_split=k_split,
        k_steps=k_steps, tile_compute_clk=kw["tile_compute_clk"], tile_load_bytes=tile_load,
        tile_store_bytes=store, fill_clk=kw["fill_clk"], epilogue_clk=float(lib.epilogue_clk),
        full_waves=full, full_wave=wfull, last_wave=wlast, wave_clk_full=t_full, wave_clk_last=t_last,
        compute_clk=full * c_full + c_last, memory_clk=full * m_full + m_last,
        kernel_clk=_kernel_clk(cs, full, wfull, wlast, kw), reduction_s=reduction_s, hbm_bytes=hbm + extra,
        l2_bytes=tiles * (tile_l2 + store), smem_bytes=tiles * tile_load,
        macs_issued=tiles * tile.rows * tile.cols * k_split / (spec.sparse_speedup if call.sparse else 1.0),
        tile_l2_bytes=tile_l2, tile_latency_clk=kw["tile_latency_clk"], clock_hz=cs.clock_hz, busy_sms=busy,
        stream_k=full != int(full))


def _reduction(spec: GpuSpec, call: KernelCall, tile: TileConfig, *, split_k: int, stream_k_tail: bool,
               tail_tiles: int, out_bytes: int) -> tuple[float, float]:
    """(seconds, HBM bytes) of the split-K reduction kernel or of the stream-K fix-up (0, 0 without)."""
    bandwidth = spec.hbm_bytes_per_s * spec.hbm_efficiency
    if split_k > 1:
        red_bytes = call.rows * call.cols * call.count * (split_k * ACCUM_BYTES + out_bytes)
        return red_bytes / bandwidth, red_bytes       # its launch is one of the call's kernels (gpu_call)
    if stream_k_tail:   # the tail tiles' K-slices meet through fp32 partials in global memory
        fix_bytes = tail_tiles * tile.rows * tile.cols * ACCUM_BYTES * 2.0
        return fix_bytes / bandwidth, fix_bytes
    return 0.0, 0.0


def kernel_seconds(spec: GpuSpec, t: KernelTiming) -> float:
    """Device seconds of the main kernel plus its split-K reduction kernel (and that kernel's
    launch gap): what the library's choice minimises, the call's time up to a constant."""
    extra_launch = spec.launch_gap_s if t.split_k > 1 else 0.0
    return t.kernel_clk / (t.clock_hz or spec.clock_hz) + t.reduction_s + extra_launch


def best_config(spec: GpuSpec, lib: KernelLibrary, call: KernelCall) -> KernelTiming:
    """The library's choice: the fastest tile x split-K (x data-parallel or stream-K tail, where the
    library has stream-K) configuration for this call."""
    return _best_config_cached(spec, lib, call)


@lru_cache(maxsize=4096)
def _best_config_cached(spec: GpuSpec, lib: KernelLibrary, call: KernelCall) -> KernelTiming:
    best: KernelTiming | None = None
    best_s = math.inf
    for tile in lib.tiles_for(call.dtype):
        base_tiles = math.ceil(call.rows / tile.rows) * math.ceil(call.cols / tile.cols) * call.count
        for split in lib.split_k_for(call.dtype):
            if split > 1 and (base_tiles * split > 2 * spec.sms * spec.max_ctas_per_sm
                              or call.k // split < 2 * max(1, lib.k_step_bytes // dtype_bytes(call.dtype))):
                continue
            for stream_k in ((False, True) if lib.stream_k else (False,)):
                t = time_config(spec, lib, call, tile, split, stream_k=stream_k)
                s = kernel_seconds(spec, t)
                if s < best_s:
                    best, best_s = t, s
    assert best is not None  # lib.tiles is never empty (validated)
    return best
