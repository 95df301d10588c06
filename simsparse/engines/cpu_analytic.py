"""Closed-form timing of a `cpu_simd` plan.

Per phase (see archs/cpu_loops.py):
    compute_s = (max over ports of cycles + serial cycles) / (clock * compute_eff * threads_eff)
    memory_s  = sum over levels of bytes / (level bandwidth at those threads * bw_eff)
    phase_s   = max(compute_s, memory_s)              ports and streams overlap inside a phase
threads_eff = 1 for a serial phase, else min(threads, work units) * parallel_eff. Phases add, and
per call: overhead_s (+ parallel_overhead_s on > 1 thread) + dispatch_s per extra torch/numba call.
`count` batched GEMMs run back to back.
"""

from __future__ import annotations

from dataclasses import dataclass

from simsparse.archs.cpu_spec import CpuSpec, KernelParams
from simsparse.engines import register
from simsparse.records import Estimate, ExecutionPlan

SERIAL_PORTS = ("serial",)


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


def phase_compute_s(spec: CpuSpec, params: KernelParams, phase: dict, t_eff: float) -> float:
    cycles = phase["cycles"]
    ports = max((c for p, c in cycles.items() if p not in SERIAL_PORTS), default=0.0)
    serial = sum(cycles.get(p, 0.0) for p in SERIAL_PORTS)
    return (ports + serial) / (spec.clock_hz * params.compute_eff * t_eff)


def effective_bytes_by_level(spec: CpuSpec, phase: dict) -> dict[str, float]:
    """Bytes per level weighted by how fast their access pattern streams: gathered short rows at
    gathered_row_efficiency, streams of a gather loop at gather_loop_efficiency, the rest at 1."""
    rows = phase.get("gathered_row_bytes_by_level", {})
    loop = phase.get("gather_loop_bytes_by_level", {})
    out = {}
    for name, b in phase["bytes_by_level"].items():
        r, g = rows.get(name, 0.0), loop.get(name, 0.0)
        out[name] = b - r - g + r / spec.gathered_row_efficiency + g / spec.gather_loop_efficiency
    return out


def phase_memory_s(spec: CpuSpec, params: KernelParams, phase: dict, threads: int) -> float:
    """Bytes over bandwidth (see effective_bytes_by_level)."""
    return sum(b / (spec.level(name).bytes_per_s(threads) * params.bw_eff)
               for name, b in effective_bytes_by_level(spec, phase).items())


def cross_core_s(spec: CpuSpec, phase: dict) -> float:
    """Lines pulled from another core's cache (not overlapped: the loop waits for them)."""
    b = phase.get("cross_core_bytes", 0.0)
    if b <= 0:
        return 0.0
    llc = spec.levels[-2] if len(spec.levels) > 1 else spec.levels[-1]
    return b / (llc.per_core_bytes_per_s * spec.cross_core_efficiency)


def call_overhead_s(spec: CpuSpec, params: KernelParams, *, calls: int, threads: int, threaded: bool) -> float:
    extra = params.parallel_overhead_s if threads > 1 and threaded else 0.0
    return params.overhead_s + extra + max(0, calls - 1) * spec.dispatch_s


def kernel_params_for(spec: CpuSpec, kernel: str) -> KernelParams:
    if kernel in spec.kernels:
        return spec.kernels[kernel]
    return KernelParams(overhead_s=spec.dispatch_s, parallel_overhead_s=0.0, compute_eff=1.0, bw_eff=1.0)


def latency_breakdown(plan: ExecutionPlan, spec: CpuSpec) -> Breakdown:
    d = plan.details
    params = kernel_params_for(spec, d["kernel"])
    threads = int(d["threads"])
    compute = memory = 0.0
    phases_s = []
    for ph in d["phases"]:
        pp = kernel_params_for(spec, ph.get("params") or d["kernel"]).for_phase(ph.get("batched", False))
        t_eff = threads_eff(spec, parallel=ph["parallel"], threaded=d["threaded"], units=ph["units"],
                            threads=threads, params=pp)
        used = threads if ph["parallel"] and d["threaded"] else 1
        c = phase_compute_s(spec, pp, ph, t_eff)
        mem = phase_memory_s(spec, pp, ph, used)
        compute += c
        memory += mem
        phases_s.append(max(c, mem) + cross_core_s(spec, ph))
    overhead = call_overhead_s(spec, params, calls=int(d["calls"]), threads=threads, threaded=d["threaded"])
    count = int(d.get("count", 1))
    work = sum(phases_s)
    latency = count * (overhead + work)
    if overhead >= work:
        bound = "overhead"
    else:
        bound = "compute" if compute >= memory else "memory"
    return Breakdown(latency_s=latency, overhead_s=count * overhead, compute_s=count * compute,
                     memory_s=count * memory, phases_s=tuple(phases_s), bound=bound)


def to_estimate(plan: ExecutionPlan, spec: CpuSpec, *, engine: str, latency_s: float, bound: str,
                notes: tuple[str, ...] = ()) -> Estimate:
    dense_flops = 2.0 * plan.macs_dense
    return Estimate(layer=plan.layer, arch=plan.arch, engine=engine, format=plan.format,
                    flops_dense=dense_flops, flops_effective=2.0 * plan.macs_effective,
                    flops_executed=2.0 * plan.macs_issued, bytes_by_level=dict(plan.bytes_by_level),
                    cycles=latency_s * spec.clock_hz, latency_s=latency_s, bound=bound,
                    notes=tuple(plan.notes) + notes,
                    m=plan.gemm.m if plan.gemm else 0, n=plan.gemm.n if plan.gemm else 0,
                    k=plan.gemm.k if plan.gemm else 0, density=float(plan.details.get("density", 1.0)))


@register("cpu_simd", "analytic")
def cpu_analytic(plan: ExecutionPlan, model) -> Estimate:
    b = latency_breakdown(plan, model.spec)
    return to_estimate(plan, model.spec, engine="analytic", latency_s=b.latency_s, bound=b.bound)
