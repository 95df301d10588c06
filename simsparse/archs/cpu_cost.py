"""A `cpu_simd` plan's payload (`CpuPlan`: the kernel's phases with their bytes placed in the
memory levels) and the closed form of its time (pure math; the analytic engine is this formula,
and the model ranks kernels by it, as `simsparse` recommends the fastest suitable kernel).

Placement: each data stream of a phase (archs/cpu_phases.py) is served by the levels its working
set fits (warm cache, LRU-like and smooth at the boundary) or by main memory (a first-touch stream
with a cold cache, `memory.cache_state`).

Time, per phase:
    compute_s = (max over ports of cycles + serial cycles) / (clock * compute_eff * threads_eff)
    memory_s  = sum over levels of bytes / (level bandwidth at those threads * bw_eff)
    phase_s   = max(compute_s, memory_s)              ports and streams overlap inside a phase
threads_eff = 1 for a serial phase, else min(threads, work units) * parallel_eff. Phases add, and
per call: overhead_s (+ parallel_overhead_s on > 1 thread) + dispatch_s per extra torch/numba call.
`count` batched GEMMs run back to back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from simsparse.archs.cpu_phases import LoopProfile, PortCycles, row_line_bytes
from simsparse.archs.cpu_spec import CpuSpec, KernelParams, MemLevel


@dataclass(frozen=True)
class PlacedPhase:
    """One phase of a kernel call with its stream bytes placed in the memory levels."""

    name: str
    cycles: PortCycles                                 # single-thread cycles per port
    parallel: bool                                     # split over the threads
    units: int                                         # independent work units the split can use
    params: str                                        # kernel whose parameters time it ("" = the plan's)
    batched: bool                                      # part of the batched (m > 1) code path
    bytes_by_level: Mapping[str, float]                # every placed stream, by level
    gathered_row_bytes_by_level: Mapping[str, float]   # ... of which gathered x^T rows
    gather_loop_bytes_by_level: Mapping[str, float]    # ... of which streamed by a gather-dot loop
    cross_core_bytes: float = 0.0                      # lines pulled from another core's cache


@dataclass(frozen=True)
class CpuPlan:
    """Payload of a `cpu_simd` plan: one call of `kernel` (or an element-wise op, kernel "memory"),
    run `count` times back to back."""

    kernel: str
    threads: int
    threaded: bool                  # the kernel honours the thread count
    calls: int                      # torch / numba dispatches per call
    count: int
    phases: tuple[PlacedPhase, ...]


# ----------------------------------------------------------------------------- placement


def place(*, bytes_moved: float, working_set_bytes: float, levels: tuple[MemLevel, ...], threads: int,
          fill_fraction: float, cold: bool) -> dict[str, float]:
    """Bytes served by each level: the share of the working set that fits each level (LRU-like,
    smooth at the boundary); a first-touch stream with a cold cache comes from main memory."""
    if bytes_moved <= 0:
        return {}
    if cold:
        return {levels[-1].name: float(bytes_moved)}
    out: dict[str, float] = {}
    served = 0.0
    ws = max(1.0, float(working_set_bytes))
    for lvl in levels:
        cap = lvl.capacity_per_thread(threads) * fill_fraction
        hit = 1.0 if cap >= ws else cap / ws
        share = max(0.0, hit - served)
        if share > 0:
            out[lvl.name] = out.get(lvl.name, 0.0) + share * bytes_moved
            served += share
        if served >= 1.0:
            break
    return out


def place_phases(profile: LoopProfile, spec: CpuSpec, threads: int) -> tuple[PlacedPhase, ...]:
    """The profile's phases with each stream's bytes split over the memory levels."""
    cold = spec.cache_state == "cold"
    out = []
    for ph in profile.phases:
        by_level: dict[str, float] = {}
        rows_by_level: dict[str, float] = {}
        loop_by_level: dict[str, float] = {}
        cross_core = 0.0
        for st in ph.streams:
            if st.cross_core:
                cross_core += st.bytes
                continue
            split = place(bytes_moved=st.bytes, working_set_bytes=st.working_set_bytes, levels=spec.levels,
                          threads=threads if ph.parallel else 1, fill_fraction=spec.fill_fraction,
                          cold=cold and st.first_touch)
            for lvl, b in split.items():
                if st.gathered_rows and st.row_bytes and lvl == spec.levels[0].name:
                    b *= min(1.0, st.row_bytes / row_line_bytes(st.row_bytes))   # L1: the row's own bytes
                by_level[lvl] = by_level.get(lvl, 0.0) + b
                if st.gathered_rows:
                    rows_by_level[lvl] = rows_by_level.get(lvl, 0.0) + b
                elif st.gather_loop:
                    loop_by_level[lvl] = loop_by_level.get(lvl, 0.0) + b
        out.append(PlacedPhase(name=ph.name, cycles=ph.cycles, parallel=ph.parallel, units=int(ph.units),
                               params=ph.params, batched=ph.batched, bytes_by_level=by_level,
                               gathered_row_bytes_by_level=rows_by_level, gather_loop_bytes_by_level=loop_by_level,
                               cross_core_bytes=cross_core))
    return tuple(out)


# ----------------------------------------------------------------------------- time


@dataclass(frozen=True)
class Breakdown:
    latency_s: float
    overhead_s: float
    compute_s: float             # sum over phases of the compute side
    memory_s: float              # sum over phases of the memory side
    phases_s: tuple[float, ...]
    bound: str


def threads_eff(spec: CpuSpec, *, parallel: bool, threaded: bool, units: int, threads: int,
                params: KernelParams | None = None) -> float:
    if not (parallel and threaded) or threads <= 1:
        return 1.0
    return max(1.0, min(threads, units) * parallel_eff_of(spec, params))


def parallel_eff_of(spec: CpuSpec, params: KernelParams | None) -> float:
    """The kernel's fitted thread-scaling efficiency, else the spec's."""
    return params.parallel_eff if params is not None and params.parallel_eff > 0 else spec.parallel_eff


def phase_compute_s(spec: CpuSpec, params: KernelParams, phase: PlacedPhase, t_eff: float) -> float:
    c = phase.cycles
    return (c.busiest_port + c.serial) / (spec.clock_hz * params.compute_eff * t_eff)


def effective_bytes_by_level(spec: CpuSpec, phase: PlacedPhase) -> dict[str, float]:
    """Bytes per level weighted by how fast their access pattern streams: gathered short rows at
    gathered_row_efficiency, streams of a gather loop at gather_loop_efficiency, the rest at 1."""
    rows, loop = phase.gathered_row_bytes_by_level, phase.gather_loop_bytes_by_level
    out = {}
    for name, b in phase.bytes_by_level.items():
        r, g = rows.get(name, 0.0), loop.get(name, 0.0)
        out[name] = b - r - g + r / spec.gathered_row_efficiency + g / spec.gather_loop_efficiency
    return out


def phase_memory_s(spec: CpuSpec, params: KernelParams, phase: PlacedPhase, threads: int) -> float:
    """Bytes over bandwidth (see effective_bytes_by_level)."""
    return sum(b / (spec.level(name).bytes_per_s(threads) * params.bw_eff)
               for name, b in effective_bytes_by_level(spec, phase).items())


def cross_core_s(spec: CpuSpec, phase: PlacedPhase) -> float:
    """Lines pulled from another core's cache (not overlapped: the loop waits for them)."""
    if phase.cross_core_bytes <= 0:
        return 0.0
    llc = spec.levels[-2] if len(spec.levels) > 1 else spec.levels[-1]
    return phase.cross_core_bytes / (llc.per_core_bytes_per_s * spec.cross_core_efficiency)


def call_overhead_s(spec: CpuSpec, params: KernelParams, *, calls: int, threads: int, threaded: bool) -> float:
    extra = params.parallel_overhead_s if threads > 1 and threaded else 0.0
    return params.overhead_s + extra + max(0, calls - 1) * spec.dispatch_s


def kernel_params_for(spec: CpuSpec, kernel: str) -> KernelParams:
    if kernel in spec.kernels:
        return spec.kernels[kernel]
    return KernelParams(overhead_s=spec.dispatch_s, parallel_overhead_s=0.0, compute_eff=1.0, bw_eff=1.0)


def phase_params(spec: CpuSpec, plan: CpuPlan, phase: PlacedPhase) -> KernelParams:
    """The parameters that time `phase`: its own kernel's (or the plan's), for its code path."""
    return kernel_params_for(spec, phase.params or plan.kernel).for_phase(phase.batched)


def latency_breakdown(plan: CpuPlan, spec: CpuSpec) -> Breakdown:
    """Closed-form time of `plan` on the machine `spec` (kernel parameters from `spec`)."""
    params = kernel_params_for(spec, plan.kernel)
    compute = memory = 0.0
    phases_s = []
    for ph in plan.phases:
        pp = phase_params(spec, plan, ph)
        t_eff = threads_eff(spec, parallel=ph.parallel, threaded=plan.threaded, units=ph.units,
                            threads=plan.threads, params=pp)
        used = min(plan.threads, max(1, ph.units)) if ph.parallel and plan.threaded else 1   # cores with rows
        c = phase_compute_s(spec, pp, ph, t_eff)
        mem = phase_memory_s(spec, pp, ph, used)
        compute += c
        memory += mem
        phases_s.append(max(c, mem) + cross_core_s(spec, ph))
    overhead = call_overhead_s(spec, params, calls=plan.calls, threads=plan.threads, threaded=plan.threaded)
    work = sum(phases_s)
    latency = plan.count * (overhead + work)
    if overhead >= work:
        bound = "overhead"
    else:
        bound = "compute" if compute >= memory else "memory"
    return Breakdown(latency_s=latency, overhead_s=plan.count * overhead, compute_s=plan.count * compute,
                     memory_s=plan.count * memory, phases_s=tuple(phases_s), bound=bound)
