"""Closed-form timing of `nm_systolic` plans, and the Estimate/energy helpers both engines share.

The layer is a stream of folds (all passes back to back). Each fold needs `fill` bytes from
DRAM before it computes and sends `writeback` bytes to DRAM after; with double-buffered SRAMs
the fill of fold f+1 and the write-back of fold f-1 overlap the compute of fold f on a single
DRAM interface of `dram_bytes_per_clk` (all in cycles: bytes / bytes_per_clk). Closed form:

    total = max( d[0] + sum_f max(c[f], d[f+1] + w[f-1]) + w[F-1],   # two-stage pipeline
                 sum(d) + sum(w) )                                     # DRAM busy all the time

exact when every fold is compute-bound (then d[0] + sum(c) + w[F-1]) or the DRAM is the
bottleneck throughout. In between the cycle engine (simpy) is the reference; with its one fill
in flight at a time the two agreed to the cycle on every case tried (ResNet-50 layers, all
dataflows, 2-64 B/clk); the tests require 1 %. Without double buffering nothing overlaps: sum(d) + sum(c) + sum(w).
stall_cycles = total - sum(c) - d[0] - w[F-1]: the time the array waits on DRAM beyond the
unavoidable first fill and last write-back (0 when DRAM keeps up).

Under `memory.reuse: scalesim` the layer is timed by `archs.systolic_memory.pass_timing`
instead (SCALE-Sim v3's scratchpads, event by event; SCALE-Sim's cycles exactly). The cycle
engine's simpy version agrees with it to the cycle; the tests require equality.

Energy (pJ from the spec): MACs issued x mac + SRAM bytes read/written x their cost + DRAM
bytes x dram_byte + metadata bits read into the array x metadata_bit + cycles x static_per_clk.
Layers repeated `count` times (batched matmuls) are timed once and multiplied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simsparse.archs.systolic_memory import ScalesimTiming, pass_timing, total_timing
from simsparse.engines import register
from simsparse.records import Estimate, ExecutionPlan

if TYPE_CHECKING:  # pragma: no cover
    from simsparse.archs.nm_systolic import NmSystolic

KIND = "nm_systolic"
PJ = 1e-12


@dataclass(frozen=True)
class FoldStream:
    """Per-fold compute cycles and DRAM cycles of one layer (all passes concatenated)."""

    compute: np.ndarray
    fill: np.ndarray        # DRAM cycles before each fold
    writeback: np.ndarray   # DRAM cycles after each fold


@dataclass(frozen=True)
class Timing:
    cycles: float
    compute_cycles: float
    stall_cycles: float
    fill_cycles: float       # the exposed first fill
    drain_cycles: float      # the exposed last write-back
    dram_cycles: float       # all DRAM transfers back to back


def fold_stream(plan: ExecutionPlan, model: "NmSystolic") -> FoldStream:
    bw = model.spec.memory.dram_bytes_per_clk
    parts = model.traffic(plan)
    if not parts:
        empty = np.zeros(0)
        return FoldStream(empty, empty, empty)
    return FoldStream(
        compute=np.concatenate([np.full(t.folds, float(t.cycles_per_fold)) for t in parts]),
        fill=np.concatenate([t.fill_bytes for t in parts]) / bw,
        writeback=np.concatenate([t.writeback_bytes for t in parts]) / bw,
    )


def closed_form(stream: FoldStream, *, double_buffered: bool) -> Timing:
    if stream.compute.size == 0:
        return Timing(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    c_all, d_all, w_all = (float(stream.compute.sum()), float(stream.fill.sum()), float(stream.writeback.sum()))
    d0, w_last = float(stream.fill[0]), float(stream.writeback[-1])
    if double_buffered:
        d_next = np.append(stream.fill[1:], 0.0)
        w_prev = np.insert(stream.writeback[:-1], 0, 0.0)
        steps = float(np.maximum(stream.compute, d_next + w_prev).sum())
        total = max(d0 + steps + w_last, d_all + w_all)
    else:
        total = d_all + c_all + w_all
    return finish_timing(total=total, compute=c_all, first_fill=d0, last_writeback=w_last,
                         dram=d_all + w_all)


def finish_timing(*, total: float, compute: float, first_fill: float, last_writeback: float,
                  dram: float) -> Timing:
    stall = max(0.0, total - compute - first_fill - last_writeback)
    return Timing(cycles=total, compute_cycles=compute, stall_cycles=stall, fill_cycles=first_fill,
                  drain_cycles=last_writeback, dram_cycles=dram)


def energy_j(plan: ExecutionPlan, model: "NmSystolic", *, cycles: float) -> float:
    e, d = model.spec.energy, plan.details
    if plan.format == "memory":
        pj = plan.bytes_by_level["dram"] * e.dram_byte_pj + d["elements"] * e.vector_op_pj
    else:
        pj = (plan.macs_issued * e.mac_pj + d["sram_read_bytes"] * e.sram_read_byte_pj
              + d["sram_write_bytes"] * e.sram_write_byte_pj + plan.bytes_by_level["dram"] * e.dram_byte_pj
              + d["metadata_bits_read"] * e.metadata_bit_pj)
    return (pj + cycles * e.static_per_clk_pj) * PJ


def build_estimate(plan: ExecutionPlan, model: "NmSystolic", *, engine: str, timing: Timing) -> Estimate:
    """Estimate of a GEMM plan from its (single-repeat) timing."""
    g, count = plan.gemm, plan.details["count"]
    cycles = timing.cycles * count
    bound = "memory" if timing.dram_cycles > timing.compute_cycles else "compute"
    note = (f"{plan.details['folds']} folds; compute {timing.compute_cycles * count:.0f} cyc, "
            f"stall {timing.stall_cycles * count:.0f} cyc, fill+drain "
            f"{(timing.fill_cycles + timing.drain_cycles) * count:.0f} cyc")
    return Estimate(
        layer=plan.layer, arch=plan.arch, engine=engine, format=plan.format,
        flops_dense=2.0 * plan.macs_dense, flops_effective=2.0 * plan.macs_effective,
        flops_executed=2.0 * plan.macs_issued, bytes_by_level=dict(plan.bytes_by_level),
        cycles=cycles, latency_s=cycles / model.spec.clock_hz, bound=bound, notes=plan.notes + (note,),
        energy_j=energy_j(plan, model, cycles=cycles), m=g.m, n=g.n, k=g.k,
        density=plan.details["nnz"] / max(1, g.n * g.k),
    )


def memory_estimate(plan: ExecutionPlan, model: "NmSystolic", *, engine: str) -> Estimate:
    """Non-GEMM op on the vector unit: max(DRAM streaming, vector issue) cycles."""
    s = model.spec
    dram_cycles = plan.bytes_by_level["dram"] / s.memory.dram_bytes_per_clk
    vector_cycles = plan.details["elements"] / s.vector_elements_per_clk
    cycles = max(dram_cycles, vector_cycles)
    return Estimate(
        layer=plan.layer, arch=plan.arch, engine=engine, format="memory", flops_dense=0.0,
        flops_effective=0.0, flops_executed=0.0, bytes_by_level=dict(plan.bytes_by_level), cycles=cycles,
        latency_s=cycles / s.clock_hz, bound="memory" if dram_cycles >= vector_cycles else "compute",
        notes=plan.notes, energy_j=energy_j(plan, model, cycles=cycles),
    )


def from_scalesim(t: ScalesimTiming) -> Timing:
    return Timing(cycles=t.cycles, compute_cycles=t.compute_cycles, stall_cycles=t.stall_cycles,
                  fill_cycles=t.fill_cycles, drain_cycles=t.drain_cycles, dram_cycles=t.dram_cycles)


def analytic_timing(plan: ExecutionPlan, model: "NmSystolic") -> Timing:
    """Closed-form timing of one repeat of a GEMM plan (stall cycles included)."""
    if plan.tiles["scalesim"]:
        return from_scalesim(total_timing([pass_timing(sp) for sp in plan.tiles["scalesim"]]))
    return closed_form(fold_stream(plan, model), double_buffered=model.spec.memory.double_buffered)


@register(KIND, "analytic")
def systolic_analytic(plan: ExecutionPlan, model: "NmSystolic") -> Estimate:
    if plan.format == "memory":
        return memory_estimate(plan, model, engine="analytic")
    return build_estimate(plan, model, engine="analytic", timing=analytic_timing(plan, model))
