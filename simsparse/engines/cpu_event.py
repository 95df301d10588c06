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

from simsparse.archs.cpu_spec import CpuSpec, KernelParams
from simsparse.engines import register
from simsparse.engines.cpu_analytic import (SERIAL_PORTS, call_overhead_s, cross_core_s, kernel_params_for, parallel_eff_of,
                                            latency_breakdown, to_estimate)
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


def _effective_bytes(spec: CpuSpec, phase: dict) -> dict:
    """Bytes per level weighted by their access pattern (as the analytic engine)."""
    from simsparse.engines.cpu_analytic import effective_bytes_by_level

    return effective_bytes_by_level(spec, phase)


def _worker(m: _Machine, phase: dict, params: KernelParams, share: float, slow: float, bw_scale: float):
    """One core running `share` of the phase in steps; compute and memory overlap per step."""
    env, spec = m.env, m.spec
    cycles = phase["cycles"]
    ports = max((c for p, c in cycles.items() if p not in SERIAL_PORTS), default=0.0)
    serial = sum(cycles.get(p, 0.0) for p in SERIAL_PORTS)
    compute_s = (ports + serial) * share * slow / (spec.clock_hz * params.compute_eff)
    step = 1.0 / STEPS_PER_THREAD
    for _ in range(STEPS_PER_THREAD):
        compute = env.timeout(compute_s * step)
        memory = env.process(_memory(m, _effective_bytes(spec, phase), share * step, params.bw_eff, bw_scale))
        yield simpy.AllOf(env, [compute, memory])


def _phase(m: _Machine, phase: dict, params: KernelParams, threads: int, threaded: bool):
    env, spec = m.env, m.spec
    parallel = phase["parallel"] and threaded and threads > 1
    units = max(1, int(phase["units"]))
    blocks = _blocks(units, threads) if parallel else [units]
    slow = 1.0 / parallel_eff_of(spec, params) if parallel else 1.0
    # private levels: each core has its own bandwidth, so a block moves its share at per-core speed;
    # the analytic engine's aggregate bandwidth = per-core x threads is the same thing.
    procs = [env.process(_worker(m, phase, params, b / units, slow, 1.0)) for b in blocks if b > 0]
    yield simpy.AllOf(env, procs)


def simulate_s(plan: ExecutionPlan, spec: CpuSpec) -> float:
    """Simulated seconds of one call (times `count`)."""
    d = plan.details
    params = kernel_params_for(spec, d["kernel"])
    threads = int(d["threads"])
    env = simpy.Environment()
    machine = _Machine(env, spec, threads)

    def call():
        yield env.timeout(call_overhead_s(spec, params, calls=int(d["calls"]), threads=threads,
                                          threaded=d["threaded"]))
        for ph in d["phases"]:
            pp = kernel_params_for(spec, ph.get("params") or d["kernel"]).for_phase(ph.get("batched", False))
            yield env.process(_phase(machine, ph, pp, threads, d["threaded"]))
            if ph.get("cross_core_bytes", 0.0) > 0:          # lines pulled from another core's cache
                yield env.timeout(cross_core_s(spec, ph))

    env.process(call())
    env.run()
    return float(env.now) * int(d.get("count", 1))


@register("cpu_simd", "cycle")
def cpu_cycle(plan: ExecutionPlan, model) -> Estimate:
    latency = simulate_s(plan, model.spec)
    bound = latency_breakdown(plan, model.spec).bound
    return to_estimate(plan, model.spec, engine="cycle", latency_s=latency, bound=bound)
