"""Cycle engine for `nm_systolic`: a simpy simulation of one layer, fold by fold.

Three processes share one DRAM interface (`DramChannel`: first come, first served):
  filler   — fetches each fold's inputs (stationary tile, streamed operand, psum read-backs) into a
             free input buffer; with double buffering (2 slots) the fill of fold f waits until fold
             f-2 has finished computing, without it (1 slot) until fold f-1 has.
  array    — computes fold f (`cycles_per_fold`) once its fill is in and its output buffer is
             free (the output tile `slots` tiles back has been written to DRAM).
  writer   — writes each finished output tile (or spilled partial sums) back to DRAM.
Fills and write-backs compete for the DRAM; any time the array waits beyond the first fill is a
stall. One `simpy.Environment` per simulation; layers repeated `count` times are simulated once.

Runs (equal temporal pieces, equal m chunks: `systolic_pipeline`) are simulated until they repeat:
the stream is simulated with every long run cut to REPLICATE_FROM copies, then with one run at
k + 1 and k + 2 copies; when both extra copies add the same time the run has reached its steady
state (the pipeline's state, shifted by that time, repeats), and each of its remaining copies adds
that time again. A run without a steady state within MAX_WARMUP copies is simulated whole and the
estimate says so. The simulated folds do not grow with the GEMM's rows: a 10^8-row layer costs
what a few of its pieces cost.

Under `memory.reuse: scalesim` each pass runs through `systolic_scratchpad_event` instead
(SCALE-Sim v3's scratchpads as processes).
"""

from __future__ import annotations

import numpy as np
import simpy

from simsparse.archs.nm_systolic import KIND, NmSystolic, SystolicPlan
from simsparse.archs.systolic_memory import total_timing
from simsparse.archs.systolic_pipeline import FoldStream, Timing, finish_timing, totals
from simsparse.engines import register
from simsparse.engines.systolic_analytic import fold_estimate, from_scalesim, plan_stream, vector_estimate
from simsparse.engines.systolic_scratchpad_event import simulate_pass
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


REPLICATE_FROM = 4     # copies of a long run simulated before its steady state is looked for
MAX_WARMUP = 64        # copies after which a run without a steady state is simulated whole


def _end_time(stream: FoldStream, *, slots: int) -> float:
    """Cycle at which the last fold of an explicit stream has computed and written back."""
    folds = int(stream.compute.size)
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
    return float(env.now)


class _Copies:
    """End times of the stream with its runs cut to given copy counts (memoised), folds simulated."""

    def __init__(self, stream: FoldStream, slots: int) -> None:
        self.stream, self.slots, self.memo, self.folds = stream, slots, {}, 0

    def end(self, copies: tuple[int, ...]) -> float:
        if copies not in self.memo:
            explicit = self.stream.take(copies)
            self.folds += int(explicit.compute.size)
            self.memo[copies] = _end_time(explicit, slots=self.slots)
        return self.memo[copies]


def _run_extra(sim: _Copies, base: tuple[int, ...], i: int, repeat: int) -> tuple[float, str]:
    """Time run i adds beyond `base` (run i at base[i] copies) when it runs `repeat` times."""
    def at(k: int) -> float:
        return sim.end(base[:i] + (k,) + base[i + 1:])

    k = base[i]
    while k + 2 < repeat and k <= MAX_WARMUP:
        step, again = at(k + 1) - at(k), at(k + 2) - at(k + 1)
        if abs(step - again) <= 1e-9 * max(abs(step), 1.0):
            return at(k) - at(base[i]) + (repeat - k) * step, ""
        k *= 2
    note = f"a run of {repeat} copies reached no steady state within {MAX_WARMUP}: simulated whole"
    return at(repeat) - at(base[i]), note if repeat > MAX_WARMUP else ""


def simulate(stream: FoldStream, *, slots: int) -> tuple[Timing, tuple[str, ...]]:
    """Event-driven timing of a fold stream with `slots` input/output buffers per SRAM (runs
    replicated from their steady state, module docstring), and notes on how it was simulated."""
    if stream.compute.size == 0:
        return Timing(0.0, 0.0, 0.0, 0.0, 0.0, 0.0), ()
    runs = stream.block_runs()
    base = tuple(min(r, REPLICATE_FROM) for _, r in runs)
    sim = _Copies(stream, slots)
    total, notes = sim.end(base), []
    for i, (_, repeat) in enumerate(runs):
        if repeat > base[i]:
            extra, note = _run_extra(sim, base, i, repeat)
            total += extra
            notes += [note] if note else []
    compute, fill, writeback = totals(stream)
    folds = sum(n * r for n, r in runs)
    if sim.folds < folds:
        notes.append(f"cycle engine: {sim.folds} folds simulated for {folds} (equal pieces replicated "
                     "from their steady state)")
    timing = finish_timing(total=total, compute=compute, first_fill=float(stream.fill[0]),
                           last_writeback=float(stream.writeback[-1]), dram=fill + writeback)
    return timing, tuple(notes)


def _simulated(plan: ExecutionPlan[SystolicPlan], model: NmSystolic) -> tuple[Timing, tuple[str, ...]]:
    if plan.payload.scalesim:
        return from_scalesim(total_timing([simulate_pass(sp) for sp in plan.payload.scalesim])), ()
    slots = 2 if model.spec.memory.double_buffered else 1
    return simulate(plan_stream(plan, model), slots=slots)


def cycle_timing(plan: ExecutionPlan[SystolicPlan], model: NmSystolic) -> Timing:
    """Simulated timing of one repeat of a GEMM plan (stall cycles included)."""
    return _simulated(plan, model)[0]


@register(KIND, "cycle")
def systolic_cycle(plan: ExecutionPlan[SystolicPlan], model: NmSystolic) -> Estimate:
    if plan.format == "memory":
        return vector_estimate(plan, model, engine="cycle")
    timing, notes = _simulated(plan, model)
    return fold_estimate(plan, model, engine="cycle", timing=timing, extra_notes=notes)
