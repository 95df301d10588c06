"""Event-driven (simpy) timing of a `cpu_simd` plan: the same per-port throughput model as the
analytic engine, run step by step on simulated cores.

What the simulation adds over the closed form: each parallel phase is split over the threads the
way numba's `prange` / OpenMP static scheduling does (contiguous blocks of ceil(units / threads)
rows, so uneven splits leave cores idle), each core runs its block in steps whose compute and
memory parts overlap, a shared memory level (LLC, DRAM) is a pool of per-core-bandwidth channels
(`all_cores / per_core` of them) that the cores queue for, and every phase ends at a join
barrier. With an even split and no contention it reproduces the analytic engine exactly.
One `simpy.Environment` per estimate; no global state.
"""

from __future__ import annotations

import math

import simpy

from simsparse.archs.cpu_cost import (CpuPlan, PlacedPhase, call_overhead_s, cross_core_s, effective_bytes_by_level,
                                      kernel_params_for, latency_breakdown, parallel_eff_of, phase_params)
from simsparse.archs.cpu_simd import KIND, CpuSimdModel
from simsparse.archs.cpu_spec import CpuSpec, KernelParams
from simsparse.engines import register
from simsparse.engines.common import estimate_from_plan
from simsparse.records import Estimate, ExecutionPlan

STEPS_PER_THREAD = 16


def _blocks(units: int, threads: int) -> list[int]:
    """Units per thread under static scheduling (contiguous blocks of ceil(units/threads))."""
    size = math.ceil(units / threads)
    out, left = [], units
    for _ in range(threads):
        take = min(size, left)
        out.append(take)
        left -= take
    return out


class _Machine:
    """Simulated cores' view of the memory levels (shared levels are channel pools)."""

    def __init__(self, env: simpy.Environment, spec: CpuSpec, threads: int) -> None:
        self.env = env
        self.spec = spec
        self.pools = {}
        for lvl in spec.levels:
            if lvl.shared:
                channels = max(1, min(threads, int(round(lvl.all_cores_bytes_per_s / lvl.per_core_bytes_per_s))))
                self.pools[lvl.name] = simpy.Resource(env, capacity=channels)

    def transfer(self, level: str, nbytes: float, bw_eff: float, bw_scale: float):
        lvl = self.spec.level(level)
        duration = nbytes / (lvl.per_core_bytes_per_s * bw_eff * bw_scale)
        pool = self.pools.get(level)
        if pool is None:
            yield self.env.timeout(duration)
            return
        with pool.request() as req:
            yield req
            yield self.env.timeout(duration)


def _memory(m: _Machine, by_level: dict, share: float, bw_eff: float, bw_scale: float):
    for level, b in by_level.items():
        if b * share > 0:
            yield from m.transfer(level, b * share, bw_eff, bw_scale)


def _worker(m: _Machine, phase: PlacedPhase, params: KernelParams, share: float, slow: float, bw_scale: float):
    """One core running `share` of the phase in steps; compute and memory overlap per step."""
    env, spec = m.env, m.spec
    cycles = phase.cycles.busiest_port + phase.cycles.serial
    compute_s = cycles * share * slow / (spec.clock_hz * params.compute_eff)
    by_level = effective_bytes_by_level(spec, phase)
    step = 1.0 / STEPS_PER_THREAD
    for _ in range(STEPS_PER_THREAD):
        compute = env.timeout(compute_s * step)
        memory = env.process(_memory(m, by_level, share * step, params.bw_eff, bw_scale))
        yield simpy.AllOf(env, [compute, memory])


def _phase(m: _Machine, phase: PlacedPhase, params: KernelParams, threads: int, threaded: bool):
    env, spec = m.env, m.spec
    parallel = phase.parallel and threaded and threads > 1
    units = max(1, int(phase.units))
    blocks = [b for b in (_blocks(units, threads) if parallel else [units]) if b > 0]
    # the threads' efficiency, but never slower than one core alone (the closed form's max(1, ...))
    slow = min(1.0 / parallel_eff_of(spec, params), len(blocks)) if parallel else 1.0
    # private levels: each core has its own bandwidth, so a block moves its share at per-core speed;
    # the analytic engine's aggregate bandwidth = per-core x threads is the same thing.
    procs = [env.process(_worker(m, phase, params, b / units, slow, 1.0)) for b in blocks]
    yield simpy.AllOf(env, procs)


def simulate_s(plan: CpuPlan, spec: CpuSpec) -> float:
    """Simulated seconds of one call (times `count`)."""
    params = kernel_params_for(spec, plan.kernel)
    env = simpy.Environment()
    machine = _Machine(env, spec, plan.threads)

    def call():
        yield env.timeout(call_overhead_s(spec, params, calls=plan.calls, threads=plan.threads,
                                          threaded=plan.threaded))
        for ph in plan.phases:
            yield env.process(_phase(machine, ph, phase_params(spec, plan, ph), plan.threads, plan.threaded))
            if ph.cross_core_bytes > 0:          # lines pulled from another core's cache
                yield env.timeout(cross_core_s(spec, ph))

    env.process(call())
    env.run()
    return float(env.now) * plan.count


@register(KIND, "cycle")
def cpu_cycle(plan: ExecutionPlan[CpuPlan], model: CpuSimdModel) -> Estimate:
    latency = simulate_s(plan.payload, model.spec)
    bound = latency_breakdown(plan.payload, model.spec).bound
    return estimate_from_plan(plan, engine="cycle", latency_s=latency, cycles=latency * model.spec.clock_hz,
                              bound=bound)
