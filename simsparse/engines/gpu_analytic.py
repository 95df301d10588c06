"""Analytic (closed-form) engine for `gpu_sparse_tensor_core` plans.

The plan already holds the library call (padding, chosen tile, waves, traffic) computed in
closed form by `simsparse.archs.gpu_kernel`; this engine sums it into seconds: waves of the
main kernel + split-K reduction + pad copies + launch gaps, against the host overhead.
"""

from __future__ import annotations

from simsparse.engines import register
from simsparse.engines.common import bound_of, estimate_from_plan
from simsparse.records import Estimate, ExecutionPlan


def memory_estimate(plan: ExecutionPlan, model, *, engine: str, kernel_s: float) -> Estimate:
    d = plan.details
    device = kernel_s + d["launch_s"]
    latency = max(device, d["host_s"])
    bound = "overhead" if d["host_s"] > device else "memory"
    return estimate_from_plan(plan, engine=engine, latency_s=latency, clock_hz=model.spec.clock_hz, bound=bound)


@register("gpu_sparse_tensor_core", "analytic")
def gpu_analytic(plan: ExecutionPlan, model) -> Estimate:
    spec = model.spec
    if plan.format == "memory":
        return memory_estimate(plan, model, engine="analytic", kernel_s=plan.details["memory_kernel_s"])
    cost = plan.details["cost"]
    t = cost.kernel
    kernel_s = t.kernel_clk / spec.clock_hz
    device = cost.device_s(kernel_s)
    bound = bound_of(compute_s=t.compute_clk, memory_s=t.memory_clk, device_s=device, host_s=cost.host_s)
    return estimate_from_plan(plan, engine="analytic", latency_s=cost.latency_s(kernel_s),
                              clock_hz=spec.clock_hz, bound=bound)
