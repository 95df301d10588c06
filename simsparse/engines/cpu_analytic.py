"""Analytic (closed-form) engine for `cpu_simd` plans: `archs.cpu_cost.latency_breakdown` of the
plan's payload (per phase max(compute, memory), phases add, plus call overheads; see there)."""

from __future__ import annotations

from simsparse.archs.cpu_cost import CpuPlan, latency_breakdown
from simsparse.archs.cpu_simd import KIND, CpuSimdModel
from simsparse.engines import register
from simsparse.engines.common import estimate_from_plan
from simsparse.records import Estimate, ExecutionPlan


@register(KIND, "analytic")
def cpu_analytic(plan: ExecutionPlan[CpuPlan], model: CpuSimdModel) -> Estimate:
    b = latency_breakdown(plan.payload, model.spec)
    return estimate_from_plan(plan, engine="analytic", latency_s=b.latency_s,
                              cycles=b.latency_s * model.spec.clock_hz, bound=b.bound)
