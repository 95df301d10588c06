"""Cycle engine for `nm_systolic`: a simpy simulation of one layer, fold by fold.

Three processes share one DRAM interface (`DramChannel`: first come, first served):
  filler   — fetches each fold's inputs (stationary tile, streamed operand, psum read-backs) into a
             free input buffer; with double buffering (2 slots) the fill of fold f waits until fold
             f-2 has finished computing, without it (1 slot) until fold f-1 has.
  array    — computes fold f (2*rows + cols + T - 2 cycles) once its fill is in and its output
             buffer is free (the output tile `slots` tiles back has been written to DRAM).
  writer   — writes each finished output tile (or spilled partial sums) back to DRAM.
Fills and write-backs compete for the DRAM; any time the array waits beyond the first fill is a
stall. One `simpy.Environment` per simulation; layers repeated `count` times are simulated once.
"""

from __future__ import annotations

import numpy as np
import simpy

from simsparse.archs.nm_systolic import KIND, NmSystolic, SystolicPlan
from simsparse.archs.systolic_pipeline import FoldStream, Timing, finish_timing
from simsparse.engines import register
from simsparse.engines.systolic_analytic import fold_estimate, plan_stream, vector_estimate
from simsparse.records import Estimate, ExecutionPlan


class DramChannel:
    """One DRAM interface serving transfers first come, first served (one at a time).

    A transfer is booked when it is requested and completes at
    max(now, end of the transfers booked before it) + its duration: the same schedule as a
    capacity-1 FIFO `simpy.Resource`, with one event per transfer instead of three.
    """

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.free_at = 0.0

    def transfer(self, cycles: float) -> simpy.Event:
        start = max(self.env.now, self.free_at)
        self.free_at = start + cycles
        return self.env.timeout(self.free_at - self.env.now)


def simulate(stream: FoldStream, *, slots: int) -> Timing:
    """Event-driven timing of a fold stream with `slots` input/output buffers per SRAM."""
    folds = int(stream.compute.size)
    if folds == 0:
        return Timing(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    env = simpy.Environment()
    dram = DramChannel(env)
    fill, comp, wb = stream.fill.tolist(), stream.compute.tolist(), stream.writeback.tolist()
    wb_folds = np.flatnonzero(stream.writeback > 0).tolist()
    # output tile of each fold = number of write-backs before it; a tile's buffer frees on write-back
    tile_of = np.concatenate([[0], np.cumsum(stream.writeback > 0)[:-1]]).tolist()
    filled: list = [None] * folds
    computed = [env.event() for _ in range(folds)]
    written: list = [None] * len(wb_folds)

    def filler():
        for f in range(folds):
            if f >= slots:
                yield computed[f - slots]            # an input buffer frees when its fold is done
            filled[f] = dram.transfer(fill[f])
            yield filled[f]                          # one fill in flight at a time (a single DMA stream)

    def array():
        for f in range(folds):
            while filled[f] is None:                 # the filler has not booked this fold yet
                yield computed[f - slots]
            yield filled[f]
            if tile_of[f] >= slots:
                yield written[tile_of[f] - slots]
            yield env.timeout(comp[f])
            computed[f].succeed()

    def writer():
        for j, f in enumerate(wb_folds):
            yield computed[f]
            written[j] = dram.transfer(wb[f])
            yield written[j]

    env.process(filler())
    procs = [env.process(array())] + ([env.process(writer())] if wb_folds else [])
    env.run(until=env.all_of(procs))
    total = float(env.now)
    return finish_timing(total=total, compute=float(stream.compute.sum()), first_fill=float(stream.fill[0]),
                         last_writeback=float(stream.writeback[-1]),
                         dram=float(stream.fill.sum() + stream.writeback.sum()))


def cycle_timing(plan: ExecutionPlan[SystolicPlan], model: NmSystolic) -> Timing:
    """Simulated timing of one repeat of a GEMM plan (stall cycles included)."""
    slots = 2 if model.spec.memory.double_buffered else 1
    return simulate(plan_stream(plan, model), slots=slots)


@register(KIND, "cycle")
def systolic_cycle(plan: ExecutionPlan[SystolicPlan], model: NmSystolic) -> Estimate:
    if plan.format == "memory":
        return vector_estimate(plan, model, engine="cycle")
    return fold_estimate(plan, model, engine="cycle", timing=cycle_timing(plan, model))
