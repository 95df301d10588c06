"""Cycle engine for `gpu_sparse_tensor_core` plans: an event-driven (simpy) simulation of waves.

One `simpy.Environment` per simulated wave. A representative set of SMs (the busiest ones; at
most `REP_SMS`) each hold their CTAs, a tensor-core unit (a capacity-1 resource: co-resident
CTAs share it) and an L2->SM load port; L2 and HBM bandwidth are shared rate resources scaled
to the representative SMs' share of the active SMs. Each CTA runs a multi-stage K-loop: a
loader process streams K-chunks (the first one a single pipeline stage, after the memory
latency) through port, L2 and HBM at once, into a bounded buffer; the compute process takes
chunks and issues their MMAs on the SM's tensor cores (a chunk's loads take at least its K-steps
times latency / (stages - 1), the K-loop's memory-level parallelism); an epilogue ends the tile (fixed clocks,
then the C tile through the SM's port into the write-back L2; L2 drains it to HBM during K-loops). A full wave
and the partial last wave are simulated once each and identical waves replicated (a fractional
count of full waves under stream-K scheduling), so a whole network stays fast. Everything after the main kernel (split-K reduction, pad copies, launch
gaps, host overhead) is the same call-level composition as the analytic engine.
"""

from __future__ import annotations

from functools import lru_cache

import simpy

from simsparse.archs.gpu import KIND, GpuPlan, GpuSparseTensorCore
from simsparse.archs.gpu_call import config_timing
from simsparse.archs.gpu_cuda_core import CudaCorePlan
from simsparse.archs.gpu_kernel import KernelTiming, WaveWork, at_clock
from simsparse.archs.gpu_spec import GpuSpec
from simsparse.engines import register
from simsparse.engines.gpu_analytic import call_estimate, stream_estimate
from simsparse.engines.gpu_cuda_core import cuda_core_cycle
from simsparse.records import Estimate, ExecutionPlan

REP_SMS = 4          # SMs simulated per wave (the rest are identical)
K_CHUNKS = 12        # K-loop granularity of the simulation (first chunk = one pipeline stage)


class RateLink:
    """A shared bandwidth: transfers queue (FIFO) and each takes bytes / rate clocks."""

    def __init__(self, env: simpy.Environment, bytes_per_clk: float) -> None:
        self.env = env
        self.bytes_per_clk = bytes_per_clk
        self.res = simpy.Resource(env, capacity=1)

    def transfer(self, nbytes: float):
        with self.res.request() as req:
            yield req
            yield self.env.timeout(nbytes / self.bytes_per_clk)


def _chunks(k_steps: int) -> list[int]:
    """K-steps per simulated chunk: one stage first (the pipeline fill), then chunks that double
    (1, 2, 3, 4, 6, 9, ...: x1.5) so that loading the next chunk never takes longer than computing the current
    one while the pipeline ramps up (a coarse second chunk would stall the tensor cores, an
    artefact of the granularity), and the rest split evenly into at most `K_CHUNKS` chunks.
    The loader runs `stages - 1` chunks ahead (the buffer), the prologue's in-flight stages."""
    chunks: list[int] = []
    rest, size = k_steps, 1
    while rest > 0 and len(chunks) < K_CHUNKS // 2:
        take = min(size, rest)
        chunks.append(take)
        rest -= take
        size = max(size + 1, (3 * size) // 2)
    if rest > 0:
        n = min(K_CHUNKS - len(chunks), rest)
        base, extra = divmod(rest, n)
        chunks += [base + (1 if i < extra else 0) for i in range(n)]
    return chunks


def _cta(env, t: KernelTiming, wave: WaveWork, links, tc: simpy.Resource, busy: list, latency_clk: float):
    port, l2, hbm = links
    chunks = _chunks(t.k_steps)
    buf = simpy.Store(env, capacity=max(1, t.tile.stages - 1))
    # HBM carries the operand reads and the write-back of the previous C tiles (drained from L2
    # while the K-loop runs); the C tile itself leaves the SM through port and L2 in the epilogue
    hbm_per_step = (wave.hbm_bytes / wave.tiles + t.tile_store_bytes * wave.hbm_store_share) / t.k_steps
    load_per_step = t.tile_load_bytes / t.k_steps
    l2_per_step = (t.tile_l2_bytes or t.tile_load_bytes) / t.k_steps   # cluster multicast shares L2 reads
    compute_per_step = t.tile_compute_clk / t.k_steps
    latency_per_step = t.tile_latency_clk / t.k_steps       # Little's law: stages - 1 loads in flight

    def loader():
        yield env.timeout(latency_clk)
        for steps in chunks:
            yield env.all_of([env.process(port.transfer(steps * load_per_step)),
                              env.process(l2.transfer(steps * l2_per_step)),
                              env.process(hbm.transfer(steps * hbm_per_step)),
                              env.timeout(steps * latency_per_step)])
            yield buf.put(steps)

    env.process(loader())
    for _ in chunks:
        steps = yield buf.get()
        with tc.request() as req:
            yield req
            yield env.timeout(steps * compute_per_step)
            busy[0] += steps * compute_per_step
    yield env.timeout(t.epilogue_clk)
    yield env.all_of([env.process(port.transfer(t.tile_store_bytes)),
                      env.process(l2.transfer(t.tile_store_bytes))])


@lru_cache(maxsize=4096)
def simulate_wave(spec: GpuSpec, t: KernelTiming, wave: WaveWork) -> tuple[float, float]:
    """(clocks of one wave, share of them the busiest SM's tensor cores were busy)."""
    env = simpy.Environment()
    reps = max(1, min(REP_SMS, wave.active_sms))
    share = reps / wave.active_sms
    l2 = RateLink(env, spec.l2_bytes_per_clk * share)
    hbm = RateLink(env, spec.hbm_bytes_per_clk * share)
    latency_clk = spec.latency_s * spec.clock_hz
    busy = [0.0]
    for sm in range(reps):
        port = RateLink(env, spec.sm_load_bytes_per_clk)
        tc = simpy.Resource(env, capacity=1)
        sm_busy = busy if sm == 0 else [0.0]
        for _ in range(wave.per_sm):
            env.process(_cta(env, t, wave, (port, l2, hbm), tc, sm_busy, latency_clk))
    env.run()
    return env.now, busy[0] / max(env.now, 1e-12)


def simulate_kernel_clk(spec: GpuSpec, t: KernelTiming) -> tuple[float, float]:
    """(clocks of the main kernel at its own clock `t.clock_hz`, tensor-core busy share) from one
    full and one partial wave."""
    spec = at_clock(spec, t.clock_hz or spec.clock_hz)
    total, busy_clk = 0.0, 0.0
    for wave, times in ((t.full_wave, t.full_waves), (t.last_wave, 1)):
        if wave is None or times == 0:
            continue
        clk, busy = simulate_wave(spec, t, wave)
        total += times * clk
        busy_clk += times * clk * busy
    return total, busy_clk / max(total, 1e-12)


@register(KIND, "cycle")
def gpu_cycle(plan: ExecutionPlan[GpuPlan], model: GpuSparseTensorCore) -> Estimate:
    if isinstance(plan.payload, CudaCorePlan):          # condensed / csr / blocked-ell / SIMT SGEMM
        return cuda_core_cycle(plan, model, simulate_library=simulate_kernel_clk)
    if plan.payload.call is None:
        return stream_estimate(plan, model, engine="cycle")
    t = config_timing(model.spec, plan.payload.call)
    clk, busy = simulate_kernel_clk(model.spec, t)
    return call_estimate(plan, model, engine="cycle", t=t, kernel_clk=clk, compute=busy, memory=1.0 - busy)
