"""Closed-form timing of the CUDA-core formats of the GPU kind: warp chains and SIMT library calls.

Two shapes of kernel run on the CUDA cores:

- Warp chains (`condensed`, `csr`): every warp runs the same number of *dependent steps* (a
  step = the loads of one gather and the FMA that consumes it; the next step's gather waits for
  the index the previous one fetched or for the accumulator). Warps are packed into thread blocks;
  `blocks_per_sm` blocks stay resident per SM (threads, registers and block limits: occupancy), so
  the kernel runs in waves of `sms x blocks_per_sm` blocks. A wave lasts the slower of its chain
  (steps x step latency + fixed clocks) and what its busiest SM's warps ask of the shared
  resources: L1 wavefronts through the load/store unit, bytes through the SM's L2 port, the
  whole wave's bytes through L2, FP32 FMA issue. Latency and throughput overlap (a smooth max,
  gpu_kernel.soft_max), waves add, and the compulsory DRAM bytes bound the whole kernel.
- Library GEMMs (`sgemm`: SIMT SGEMM on the CUDA cores, `blocked-ell`: cuSPARSE Blocked-ELL on the
  tensor cores): the tile/wave model of the 2:4 kernels (gpu_kernel / gpu_call) run on a derived
  spec whose `dense` library is that library (`simt_spec`, `blocked_ell_spec`).

Pure functions of (spec, payload); the arch model ranks formats with them, the analytic engine
reports them and the cycle engine replays the same quantities event by event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from simsparse.archs.gpu_cuda_spec import CudaCoreSpec
from simsparse.archs.gpu_kernel import soft_max
from simsparse.archs.gpu_software import KernelLibrary, TileConfig
from simsparse.archs.gpu_spec import GpuSpec
from simsparse.errors import SpecError

WARP = 32
SECTOR_BYTES = 32
LINE_BYTES = 128


@dataclass(frozen=True)
class WarpChains:
    """Warps that each run `steps` dependent steps (no timing: what one launch asks for)."""

    warps: int                  # warps launched (all repeats of the GEMM)
    warps_per_block: int
    blocks_per_sm: int          # resident blocks per SM (occupancy)
    steps: int                  # dependent steps per warp
    step_clk: float             # one step: its load round trip(s) + the dependent FMA
    fixed_clk: float            # per warp, outside the steps (first loads, reductions, stores)
    wavefronts_per_step: float  # L1 wavefronts (128-B lines) one warp-step issues
    l2_bytes_per_step: float    # bytes one warp-step pulls from L2 into the SM (32-B sectors)
    fma_lanes_per_step: float   # FP32 FMA lanes one warp-step issues (idle lanes included)
    hbm_bytes: float            # compulsory DRAM bytes (operands and output once)

    @property
    def blocks(self) -> int:
        return math.ceil(self.warps / self.warps_per_block)


@dataclass(frozen=True)
class ChainWave:
    """One wave: `warps` warps on `active_sms` SMs, `per_sm` of them on the busiest SM."""

    warps: int
    per_sm: int
    active_sms: int


@dataclass(frozen=True)
class ChainTiming:
    full_waves: int
    full_wave: ChainWave | None
    last_wave: ChainWave | None
    latency_clk: float          # sum over waves of the chain term
    throughput_clk: float       # sum over waves of the largest resource term
    kernel_clk: float
    bound: str                  # latency | lsu | l2 | port | compute | memory


def chain_waves(spec: GpuSpec, c: WarpChains) -> tuple[int, ChainWave | None, ChainWave | None]:
    """(number of full waves, a full wave, the partial last wave) of blocks over the SMs."""
    slots = spec.sms * c.blocks_per_sm
    full, rem = divmod(c.blocks, slots)

    def mk(blocks: int) -> ChainWave:
        return ChainWave(warps=blocks * c.warps_per_block, per_sm=math.ceil(blocks / spec.sms) * c.warps_per_block,
                         active_sms=min(spec.sms, blocks))

    return full, (mk(slots) if full else None), (mk(rem) if rem else None)


def wave_terms(spec: GpuSpec, cc: CudaCoreSpec, c: WarpChains, w: ChainWave) -> dict[str, float]:
    """Clocks of one wave per limit: the chain, and each resource its warps load."""
    per_sm_steps = w.per_sm * c.steps
    return {
        "latency": c.steps * c.step_clk + c.fixed_clk,
        "lsu": per_sm_steps * c.wavefronts_per_step / cc.lsu_wavefronts_per_clk,
        "port": per_sm_steps * c.l2_bytes_per_step / spec.sm_load_bytes_per_clk,
        "l2": w.warps * c.steps * c.l2_bytes_per_step / spec.l2_bytes_per_clk,
        "compute": per_sm_steps * c.fma_lanes_per_step / cc.fp32_fma_per_clk_per_sm,
    }


@lru_cache(maxsize=4096)
def chain_timing(spec: GpuSpec, cc: CudaCoreSpec, c: WarpChains) -> ChainTiming:
    full, wfull, wlast = chain_waves(spec, c)
    latency = throughput = kernel = 0.0
    worst: dict[str, float] = {}
    for wave, times in ((wfull, full), (wlast, 1)):
        if wave is None or times == 0:
            continue
        terms = wave_terms(spec, cc, c, wave)
        busiest = max(v for k, v in terms.items() if k != "latency")
        latency += times * terms["latency"]
        throughput += times * busiest
        kernel += times * soft_max(terms["latency"], busiest)
        for k, v in terms.items():
            worst[k] = worst.get(k, 0.0) + times * v
    dram = c.hbm_bytes / spec.hbm_bytes_per_clk
    worst["memory"] = dram
    return ChainTiming(full_waves=full, full_wave=wfull, last_wave=wlast, latency_clk=latency,
                       throughput_clk=throughput, kernel_clk=soft_max(kernel, dram),
                       bound=max(worst, key=worst.__getitem__))


def gather_latency_clk(spec: GpuSpec, cc: CudaCoreSpec, working_set_bytes: float) -> float:
    """Round trip of a gather that misses L1: L2 while the gathered operand and the weights fit in
    L2 (they are read over and over within the call and stay warm between calls), beyond that the
    share that does not fit pays the DRAM latency."""
    miss = 0.0 if working_set_bytes <= spec.l2_bytes else 1.0 - spec.l2_bytes / working_set_bytes
    return cc.l2_latency_clk + miss * (cc.dram_latency_clk - cc.l2_latency_clk)


def occupancy_blocks(spec: GpuSpec, cc: CudaCoreSpec, *, threads_per_block: int, registers_per_thread: int) -> int:
    """Resident blocks per SM: the tightest of the thread, register and block limits (>= 1)."""
    registers = spec.registers_bytes_per_sm // 4
    return max(1, min(cc.max_blocks_per_sm, cc.max_threads_per_sm // threads_per_block,
                      registers // (registers_per_thread * threads_per_block)))


# ----------------------------------------------------------------------------- library GEMMs


def cuda_cores_of(spec: GpuSpec) -> CudaCoreSpec:
    if spec.cuda_cores is None:
        raise SpecError(f"{spec.name} has no cuda_cores block: the CUDA-core formats (condensed, csr, "
                        "blocked-ell, fp32 SGEMM) are not modelled on it; add the block to its spec")
    return spec.cuda_cores


@lru_cache(maxsize=64)
def simt_spec(spec: GpuSpec) -> GpuSpec:
    """`spec` whose dense library is cuBLAS's SIMT SGEMM on the CUDA cores (fp32 FMA rate), its host
    time per call the active software stack's. No power limit: the `power:` block models the tensor
    cores' load, SIMT SGEMM runs at `clock_hz`."""
    s = cuda_cores_of(spec).sgemm
    lib = KernelLibrary(name="cublas-sgemm", mainloop_efficiency={"fp32": s.mainloop_efficiency},
                        host_overhead_s=s.host_overhead_s, k_step_bytes=s.k_step_bytes, split_k=s.split_k,
                        epilogue_clk=s.epilogue_clk, tiles=tuple(TileConfig(*t) for t in s.tiles),
                        min_shapes={"fp32": (1, 1, 1, 1)}, output_dtypes={})
    return spec.with_dense_library(lib, max_ctas_per_sm=s.max_ctas_per_sm, power=None,
                                   dense_fma_per_clk_per_sm={"fp32": spec.cuda_cores.fp32_fma_per_clk_per_sm})


@lru_cache(maxsize=64)
def blocked_ell_spec(spec: GpuSpec) -> GpuSpec:
    """`spec` whose dense library is cuSPARSE's Blocked-ELL SpMM on the tensor cores: the dense
    library's tiles at `blocked_ell.efficiency` of its main loop (the indirect block-column loads),
    its host time per call the active software stack's."""
    b = cuda_cores_of(spec).blocked_ell
    lib = replace(spec.dense, name="cusparse-blocked-ell", host_overhead_s=b.host_overhead_s,
                  mainloop_efficiency={d: e * b.efficiency for d, e in spec.dense.mainloop_efficiency.items()})
    return spec.with_dense_library(lib)


def library_spec(spec: GpuSpec, library: str) -> GpuSpec:
    """The derived spec a library call of a CUDA-core plan is timed on."""
    return simt_spec(spec) if library == "cublas-sgemm" else blocked_ell_spec(spec)
