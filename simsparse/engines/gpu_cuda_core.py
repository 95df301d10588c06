"""Engines for the GPU kind's CUDA-core plans (`archs.gpu_cuda_core.CudaCorePlan`): condensed, csr,
blocked-ell and SIMT SGEMM. engines/gpu_analytic.py and engines/gpu_event.py hand such plans here.

analytic: the closed form of archs/gpu_cuda_timing (warp chains: waves x soft-max of the chain and
          the busiest resource; library calls: the tile/wave model on the derived spec).
cycle:    warp chains are simulated event by event (simpy, one Environment per wave): on a few
          representative SMs each resident warp runs its steps in chunks; a chunk lasts its chain
          latency or, when longer, until its wavefronts, port bytes, FMA lanes and L2 bytes have
          passed the SM's load/store unit, L2 port and FMA pipes and the shared L2 (first come,
          first served), so queueing on a saturated resource stretches the chains. A full wave and
          the last wave are simulated once each and repeated. Library calls run the tensor-core
          cycle engine's wave simulation on the derived spec (passed in as `simulate_library`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import simpy

from simsparse.archs.gpu_call import config_timing
from simsparse.archs.gpu_cuda_core import CudaCorePlan, cuda_core_times_s
from simsparse.archs.gpu_cuda_spec import CudaCoreSpec
from simsparse.archs.gpu_cuda_timing import ChainWave, WarpChains, chain_timing, chain_waves, library_spec
from simsparse.archs.gpu_kernel import KernelTiming, soft_max
from simsparse.archs.gpu_spec import GpuSpec
from simsparse.engines.common import bound_of, estimate_from_plan
from simsparse.records import Estimate, ExecutionPlan

REP_SMS = 2          # SMs simulated per wave (the rest are identical)
CHUNKS = 8           # step granularity of a warp's chain in the simulation
BOUNDS = {"latency": "latency", "compute": "compute"}    # anything else is a memory-side limit

SimulateLibrary = Callable[[GpuSpec, KernelTiming], tuple[float, float]]


class _Link:
    """A rate-limited resource served first come, first served: a request is booked when made and
    ends at max(now, end of the earlier bookings) + amount / rate (one event per request)."""

    def __init__(self, env: simpy.Environment, per_clk: float) -> None:
        self.env, self.per_clk, self.free_at = env, per_clk, 0.0

    def take(self, amount: float) -> simpy.Event:
        start = max(self.env.now, self.free_at)
        self.free_at = start + amount / self.per_clk
        return self.env.timeout(self.free_at - self.env.now)


def _warp(env: simpy.Environment, c: WarpChains, sm: dict[str, _Link], l2: _Link):
    yield env.timeout(c.fixed_clk)
    base, extra = divmod(c.steps, CHUNKS)
    for i in range(CHUNKS):
        steps = base + (1 if i < extra else 0)
        if steps == 0:
            continue
        yield env.all_of([env.timeout(steps * c.step_clk), sm["lsu"].take(steps * c.wavefronts_per_step),
                          sm["port"].take(steps * c.l2_bytes_per_step), sm["fma"].take(steps * c.fma_lanes_per_step),
                          l2.take(steps * c.l2_bytes_per_step)])


@lru_cache(maxsize=4096)
def simulate_chain_wave(spec: GpuSpec, cc: CudaCoreSpec, c: WarpChains, w: ChainWave) -> float:
    """Clocks of one wave of warp chains on representative SMs."""
    env = simpy.Environment()
    reps = max(1, min(REP_SMS, w.active_sms))
    l2 = _Link(env, spec.l2_bytes_per_clk * reps / w.active_sms)
    for _ in range(reps):
        sm = {"lsu": _Link(env, cc.lsu_wavefronts_per_clk), "port": _Link(env, spec.sm_load_bytes_per_clk),
              "fma": _Link(env, cc.fp32_fma_per_clk_per_sm)}
        for _ in range(w.per_sm):
            env.process(_warp(env, c, sm, l2))
    env.run()
    return float(env.now)


def simulate_chains_clk(spec: GpuSpec, c: WarpChains) -> float:
    full, wfull, wlast = chain_waves(spec, c)
    cc = spec.cuda_cores
    clk = sum(times * simulate_chain_wave(spec, cc, c, wave)
              for wave, times in ((wfull, full), (wlast, 1)) if wave is not None and times)
    return soft_max(clk, c.hbm_bytes / spec.hbm_bytes_per_clk)


def _estimate(plan: ExecutionPlan[CudaCorePlan], model, *, engine: str, kernel_clk: float | None) -> Estimate:
    spec, p = model.spec, plan.payload
    device, host = cuda_core_times_s(spec, p, kernel_clk=kernel_clk)
    latency = max(device, host)
    if p.call is not None:
        lspec = library_spec(spec, p.library)
        t = config_timing(lspec, p.call)
        bound = bound_of(compute_s=t.compute_clk, memory_s=t.memory_clk, device_s=device, host_s=host)
    else:
        limit = chain_timing(spec, spec.cuda_cores, p.chains).bound
        bound = "overhead" if host > device else BOUNDS.get(limit, "memory")
    return estimate_from_plan(plan, engine=engine, latency_s=latency, cycles=latency * spec.clock_hz, bound=bound,
                              software=spec.software)


def cuda_core_analytic(plan: ExecutionPlan[CudaCorePlan], model) -> Estimate:
    return _estimate(plan, model, engine="analytic", kernel_clk=None)


def cuda_core_cycle(plan: ExecutionPlan[CudaCorePlan], model, *, simulate_library: SimulateLibrary) -> Estimate:
    spec, p = model.spec, plan.payload
    if p.call is not None:
        lspec = library_spec(spec, p.library)
        clk, _busy = simulate_library(lspec, config_timing(lspec, p.call))
    else:
        clk = simulate_chains_clk(spec, p.chains)
    return _estimate(plan, model, engine="cycle", kernel_clk=clk)
