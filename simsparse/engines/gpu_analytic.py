"""Analytic (closed-form) engine for `gpu_sparse_tensor_core` plans.

The plan holds the library call as launched (padding, chosen tile and split-K, copy kernels);
`archs.gpu_kernel` times its main kernel in closed form (waves, K-loop, traffic) and
`archs.gpu_call` adds the split-K reduction, copies and launch gaps against the host overhead.
Every estimate names its software stack and carries its expected error band
(`engines.gpu_error_bands`).
"""

from __future__ import annotations

from simsparse.archs.gpu import KIND, GpuPlan, GpuSparseTensorCore
from simsparse.archs.gpu_call import call_times_s, config_timing, stream_kernel_s
from simsparse.archs.gpu_cuda_core import CudaCorePlan
from simsparse.archs.gpu_kernel import KernelTiming
from simsparse.engines import register
from simsparse.engines.common import bound_of, estimate_from_plan
from simsparse.engines.gpu_cuda_core import cuda_core_analytic
from simsparse.engines.gpu_error_bands import band_for, memory_band
from simsparse.records import Estimate, ExecutionPlan


def stream_estimate(plan: ExecutionPlan[GpuPlan], model: GpuSparseTensorCore, *, engine: str) -> Estimate:
    """A memory-bound kernel: bytes over HBM bandwidth + latency + a launch gap, against the host time."""
    spec = model.spec
    stream = stream_kernel_s(spec, plan.payload.stream_bytes)
    host = spec.profile.op_host_overhead_s              # the stack's dispatch of an op (no library call)
    latency = max(stream + spec.launch_gap_s, host)
    # memory-bound only where moving the bytes outlasts both the launch gap and the dispatch
    bound = "memory" if stream >= max(host, spec.launch_gap_s) else "overhead"
    return estimate_from_plan(plan, engine=engine, latency_s=latency, cycles=latency * spec.clock_hz,
                              bound=bound, software=spec.software,
                              error_band=memory_band(spec.name, spec.software))


def call_estimate(plan: ExecutionPlan[GpuPlan], model: GpuSparseTensorCore, *, engine: str, t: KernelTiming,
                  kernel_clk: float, compute: float, memory: float) -> Estimate:
    """A library call whose main kernel (closed-form model `t`) took `kernel_clk` clocks (at the
    kernel's own, possibly power-limited, clock `t.clock_hz`), of which
    `compute` vs `memory` (any unit) says what bound it: + reduction, copies, launches vs host."""
    spec, lc = model.spec, plan.payload.call
    device, host = call_times_s(spec, lc, t, kernel_s=kernel_clk / t.clock_hz)
    bound = bound_of(compute_s=compute, memory_s=memory, device_s=device, host_s=host)
    latency = max(device, host)
    band = band_for(spec.name, spec.software, lc.call.dtype, plan.gemm.m if plan.gemm else lc.call.cols,
                    sparse=lc.call.sparse)
    return estimate_from_plan(plan, engine=engine, latency_s=latency, cycles=latency * spec.clock_hz, bound=bound,
                              software=spec.software, error_band=band)


@register(KIND, "analytic")
def gpu_analytic(plan: ExecutionPlan[GpuPlan], model: GpuSparseTensorCore) -> Estimate:
    if isinstance(plan.payload, CudaCorePlan):          # condensed / csr / blocked-ell / SIMT SGEMM
        return cuda_core_analytic(plan, model)
    if plan.payload.call is None:
        return stream_estimate(plan, model, engine="analytic")
    t = config_timing(model.spec, plan.payload.call)
    return call_estimate(plan, model, engine="analytic", t=t, kernel_clk=t.kernel_clk, compute=t.compute_clk,
                         memory=t.memory_clk)
