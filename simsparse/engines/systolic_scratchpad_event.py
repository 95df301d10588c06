"""Cycle engine of `memory.reuse: scalesim`: SCALE-Sim v3's scratchpads as simpy processes.

One `simpy.Environment` per pass; simpy time is the array's cycle. Processes:
  port   — one per read SRAM: its prefetches run back to back from cycle -1, `prefetch_cycles`
           each (SCALE-Sim chains them so; idle port time is banked), each completion an event.
  array  — walks the demand lines (one per cycle plus stalls). It stores each line's output
           words into the ofmap SRAM (lines of `bw` words); a drain starts as a `drain` process
           when more than half the SRAM is held and none is in flight; a word that finds the
           SRAM full waits for the drain in flight. On a line where a read window advances it
           waits for the prefetches it needs and stalls by SCALE-Sim's accounting rule
           (`systolic_memory.read_stall`: a positive wait counts twice).
  drain  — (lines - 1) cycles of write-back.
Lines with nothing to decide are walked without yielding to simpy. The per-line output words
come from the skew itself (a T x width block entering diagonally: the convolution of two
boxes), not from `systolic_memory`'s closed forms, so the two engines check each other; the
read-window advances are plan geometry (`systolic_fetch_order.read_misses`) shared by both.
"""

from __future__ import annotations

import numpy as np
import simpy

from simsparse.archs.systolic_memory import OfmapLines, ScalesimPass, ScalesimTiming, finish, read_stall


def _line_words(sp: ScalesimPass) -> np.ndarray:
    """Output words on every demand line of the pass (all folds, in order)."""
    y = sp.layer
    cpf, shapes = y.cycles_per_fold, {}
    out = np.zeros(y.folds_c * y.folds_r * cpf, dtype=np.int64)
    for fold in range(y.folds_c * y.folds_r):
        fc, fr = divmod(fold, y.folds_r)
        width = min(y.cols, y.sc - fc * y.cols)
        if y.dataflow == "os":
            height = min(y.rows, y.sr - fr * y.rows)
            first = y.t - 1 + y.rows - height
        else:
            height, first = y.t, 2 * y.rows - 1
        key = (first, height, width)
        if key not in shapes:
            skew = np.convolve(np.ones(height, dtype=np.int64), np.ones(width, dtype=np.int64))
            shapes[key] = np.concatenate([np.zeros(first, dtype=np.int64), skew])[:cpf]
        prof = shapes[key]
        out[fold * cpf: fold * cpf + prof.size] = prof
    return out


class _Ofmap:
    """The ofmap SRAM inside one simulation: its lines (`OfmapLines`) and the drain in flight."""

    def __init__(self, env: simpy.Environment, size_words: int, bw: int) -> None:
        self.env, self.buf = env, OfmapLines(size_words, bw)
        self.drain_end, self.drain_proc = 0.0, None

    def quiet(self, words: int, cycle: float) -> bool:
        """True when storing `words` at `cycle` can neither stall nor start a drain."""
        if cycle < self.drain_end:
            return self.buf.free - words > 0
        return self.buf.free - words >= self.buf.active

    def _drain(self, cycles: int):
        yield self.env.timeout(cycles)

    def store(self, words: int):
        """Process: store one line's words word by word (the array's time is env.now)."""
        for _ in range(words):
            self.buf.put(1)
            if self.env.now < self.drain_end:
                if self.buf.free <= 0:
                    yield self.drain_proc                 # full: wait for the drain in flight
            elif self.buf.free < self.buf.active:
                lines = self.buf.drain()
                self.drain_end = self.env.now + lines - 1
                self.drain_proc = self.env.process(self._drain(lines - 1))


def _port(env: simpy.Environment, cycles: int, completions: list):
    """Prefetches back to back: the k-th completes at k*cycles - 1 (k from 1)."""
    yield env.timeout(cycles - 1)
    for event in completions:
        event.succeed(env.now)
        yield env.timeout(cycles)


def simulate_pass(sp: ScalesimPass) -> ScalesimTiming:
    """Simulated timing of one pass through SCALE-Sim's scratchpads."""
    env = simpy.Environment()
    words = _line_words(sp).tolist()
    ofmap = _Ofmap(env, sp.layer.ofmap_sram_words, sp.layer.port_words_per_clk)
    reads = (sp.ifmap, sp.filter)
    ledgers = [[env.event() for _ in range(sum(m.advances))] for m in reads]
    for m, ledger in zip(reads, ledgers):
        if ledger:
            env.process(_port(env, m.prefetch_cycles, ledger))
    misses = [dict(zip(m.lines, m.advances)) for m in reads]
    result = {"stall": 0.0, "last_out": None}

    def array():
        stall, used = 0.0, [0, 0]
        for line, n in enumerate(words):
            cycle = line + stall
            hit = [line in mm for mm in misses]
            if not any(hit) and ofmap.quiet(n, cycle):
                ofmap.buf.put(n)
                continue
            if env.now < cycle:
                yield env.timeout(cycle - env.now)
            yield env.process(ofmap.store(n))
            worst = out = env.now - cycle
            for j in (0, 1):
                if hit[j]:
                    need = ledgers[j][used[j]: used[j] + misses[j][line]]
                    for event in need:
                        if not event.triggered:
                            yield event
                    worst = max(worst, read_stall([e.value for e in need], cycle=cycle))
                    used[j] += len(need)
            stall += max(0.0, worst)
            if line == len(words) - 1:
                result["last_out"] = cycle + out
        result["stall"] = stall

    env.run(until=env.process(array()))
    last_out = result["last_out"] if result["last_out"] is not None else len(words) - 1 + result["stall"]
    return finish(sp, stall=result["stall"], last_writeback_cycle=ofmap.buf.last_writeback(last_out, ofmap.drain_end))
