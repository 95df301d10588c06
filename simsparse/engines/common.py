"""The one `Estimate` builder every engine of every kind uses, and the shared `bound` rule."""

from __future__ import annotations

from simsparse.records import ErrorBand, Estimate, ExecutionPlan


def estimate_from_plan(plan: ExecutionPlan, *, engine: str, latency_s: float, cycles: float, bound: str,
                       energy_j: float = 0.0, notes: tuple[str, ...] = (), software: str = "",
                       error_band: ErrorBand | None = None) -> Estimate:
    """An `Estimate` carrying the plan's work figures (FLOPs, bytes, shape, density, notes) and the
    engine's timing (`latency_s`, `cycles` at the arch's clock, `bound`, `energy_j`, extra `notes`).

    flops_dense = 2·m·n·k·count of the layer's own GEMM; flops_effective = 2·m·nnz·count;
    flops_executed = 2 x the MACs the hardware issues (padding included, halved by 2:4).
    `software` names the software stack, `error_band` the expected error (kinds that have them).
    """
    g = plan.gemm
    return Estimate(
        layer=plan.layer, arch=plan.arch, engine=engine, format=plan.format,
        flops_dense=2.0 * plan.macs_dense, flops_effective=2.0 * plan.macs_effective,
        flops_executed=2.0 * plan.macs_issued, bytes_by_level=dict(plan.bytes_by_level),
        cycles=cycles, latency_s=latency_s, bound=bound, notes=tuple(plan.notes) + tuple(notes),
        energy_j=energy_j, m=g.m if g else 0, n=g.n if g else 0, k=g.k if g else 0, density=plan.density,
        alternatives=dict(plan.alternatives),
        software=software, error_band=error_band,
    )


def bound_of(*, compute_s: float, memory_s: float, device_s: float, host_s: float) -> str:
    """What limits a call: host overhead, or the larger of compute and memory time."""
    if host_s > device_s:
        return "overhead"
    return "compute" if compute_s >= memory_s else "memory"
