"""Closed-form timing of `nm_systolic` plans, and the energy / Estimate helpers both engines share.

The fold stream of the plan's pieces (`SystolicPlan.pieces[i].traffic`, each `repeat` times) is
timed by the closed form of `archs.systolic_pipeline` (two-stage pipeline over one DRAM interface,
runs of equal blocks replicated exactly; see there).

Under `memory.reuse: scalesim` the layer is timed by `archs.systolic_memory.pass_timing`
instead (SCALE-Sim v3's scratchpads, event by event; SCALE-Sim's cycles exactly). The cycle
engine's simpy version agrees with it to the cycle; the tests require equality.

Energy (pJ from the spec): MACs issued x mac + SRAM bytes read/written x their cost + DRAM
bytes x dram_byte + metadata bits read into the array x metadata_bit + cycles x static_per_clk.
Layers repeated `count` times (batched matmuls) are timed once and multiplied.
"""

from __future__ import annotations

from simsparse.archs.nm_systolic import KIND, NmSystolic, SystolicPlan, payload_stream, scalesim_timing
from simsparse.archs.systolic_memory import ScalesimTiming
from simsparse.archs.systolic_pipeline import FoldStream, Timing, closed_form
from simsparse.engines import register
from simsparse.engines.common import estimate_from_plan
from simsparse.records import Estimate, ExecutionPlan

PJ = 1e-12


def plan_stream(plan: ExecutionPlan[SystolicPlan], model: NmSystolic) -> FoldStream:
    """The fold stream of one repeat of a GEMM plan on this array's DRAM interface."""
    return payload_stream(plan.payload, model.spec)


def energy_j(plan: ExecutionPlan[SystolicPlan], model: NmSystolic, *, cycles: float) -> float:
    e, p = model.spec.energy, plan.payload
    if plan.format == "memory":
        pj = plan.bytes_by_level["dram"] * e.dram_byte_pj + p.vector_elements * e.vector_op_pj
    else:
        pj = (plan.macs_issued * e.mac_pj + p.sram_read_bytes * e.sram_read_byte_pj
              + p.sram_write_bytes * e.sram_write_byte_pj + plan.bytes_by_level["dram"] * e.dram_byte_pj
              + p.metadata_bits_read * e.metadata_bit_pj)
    return (pj + cycles * e.static_per_clk_pj) * PJ


def fold_estimate(plan: ExecutionPlan[SystolicPlan], model: NmSystolic, *, engine: str, timing: Timing,
                  extra_notes: tuple[str, ...] = ()) -> Estimate:
    """Estimate of a GEMM plan from the timing of one of its `count` repeats."""
    count = plan.payload.count
    cycles = timing.cycles * count
    bound = "memory" if timing.dram_cycles > timing.compute_cycles else "compute"
    note = (f"{plan.payload.folds} folds; compute {timing.compute_cycles * count:.0f} cyc, "
            f"stall {timing.stall_cycles * count:.0f} cyc, fill+drain "
            f"{(timing.fill_cycles + timing.drain_cycles) * count:.0f} cyc")
    return estimate_from_plan(plan, engine=engine, latency_s=cycles / model.spec.clock_hz, cycles=cycles,
                              bound=bound, energy_j=energy_j(plan, model, cycles=cycles), notes=(note,) + extra_notes)


def vector_estimate(plan: ExecutionPlan[SystolicPlan], model: NmSystolic, *, engine: str) -> Estimate:
    """Non-GEMM op on the vector unit: max(DRAM streaming, vector issue) cycles."""
    s = model.spec
    dram_cycles = plan.bytes_by_level["dram"] / s.memory.dram_bytes_per_clk
    vector_cycles = plan.payload.vector_elements / s.vector_elements_per_clk
    cycles = max(dram_cycles, vector_cycles)
    return estimate_from_plan(plan, engine=engine, latency_s=cycles / s.clock_hz, cycles=cycles,
                              bound="memory" if dram_cycles >= vector_cycles else "compute",
                              energy_j=energy_j(plan, model, cycles=cycles))


def from_scalesim(t: ScalesimTiming) -> Timing:
    """The Timing record of a SCALE-Sim scratchpad timing (memory.reuse: scalesim)."""
    return Timing(cycles=t.cycles, compute_cycles=t.compute_cycles, stall_cycles=t.stall_cycles,
                  fill_cycles=t.fill_cycles, drain_cycles=t.drain_cycles, dram_cycles=t.dram_cycles)


def analytic_timing(plan: ExecutionPlan[SystolicPlan], model: NmSystolic) -> Timing:
    """Closed-form timing of one repeat of a GEMM plan (stall cycles included)."""
    if plan.payload.scalesim:
        return from_scalesim(scalesim_timing(plan.payload))
    return closed_form(plan_stream(plan, model), double_buffered=model.spec.memory.double_buffered)


@register(KIND, "analytic")
def systolic_analytic(plan: ExecutionPlan[SystolicPlan], model: NmSystolic) -> Estimate:
    if plan.format == "memory":
        return vector_estimate(plan, model, engine="analytic")
    return fold_estimate(plan, model, engine="analytic", timing=analytic_timing(plan, model))
