"""Cycle engine of `memory.reuse: scalesim`: SCALE-Sim v3's scratchpads as simpy processes.

One `simpy.Environment` per pass; simpy time is the array's cycle when it waits. The array process
walks the demand lines (one per cycle plus stalls). It stores each line's output words into the
ofmap SRAM (lines of `bw` words); a drain of (lines - 1) cycles starts when more than half the
SRAM is held and none is in flight; a word that finds the SRAM full waits (a simpy timeout) for
the drain in flight. On a line where a read window advances it waits for the prefetches it needs
on that SRAM's port (`_Port`: prefetches back to back from cycle -1, `prefetch_cycles` each, as
SCALE-Sim chains them; idle port time is banked) and stalls by SCALE-Sim's accounting rule
(`systolic_memory.chain_stall`: a positive wait counts twice).
Stretches of lines with nothing to decide (no window advance, no drain to start, no full SRAM)
are stored in one step: the running sum of the lines' output words says where the next one is.
The per-line output words come from the skew itself (a T x width block entering diagonally: the
convolution of two boxes), not from `systolic_memory`'s closed forms, so the two engines check
each other; the read-window advances are plan geometry (`systolic_fetch_order.read_misses`)
shared by both. The cost is the events (advances, drains, full-SRAM waits), plus one word count
per line: it grows with the layer's lines, as SCALE-Sim's own does.
"""

from __future__ import annotations

import math

import numpy as np
import simpy

from simsparse.archs.systolic_fetch_order import ReadMisses
from simsparse.archs.systolic_memory import OfmapLines, ScalesimPass, ScalesimTiming, chain_stall, finish


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

    def __init__(self, size_words: int, bw: int) -> None:
        self.buf, self.drain_end = OfmapLines(size_words, bw), 0.0

    def quiet_until(self, line: int, stall: float, cum: np.ndarray) -> int:
        """First line from `line` on whose words, stored after those of the lines before it, may
        stall or start a drain (cum: running sum of the words per line; stall fixed meanwhile).
        While a drain is in flight (cycle < drain_end) a line is quiet if space is left after it;
        otherwise if at least half the SRAM (`active` words) stays free."""
        base, free, end = int(cum[line]), self.buf.free, cum.size - 1
        boundary = max(line, min(end, math.ceil(self.drain_end - stall)))   # lines before it: drain in flight
        full = int(cum.searchsorted(base + free, side="left")) - 1
        if full < boundary:
            return max(line, full)
        half = int(cum.searchsorted(base + free - self.buf.active, side="right")) - 1
        return min(end, max(boundary, half))

    def store(self, words: int, now: float) -> int | None:
        """Store a line's words one by one at cycle `now`; None when all are in, else the words
        left when the SRAM filled up with a drain in flight (the array waits until `drain_end`,
        then stores the rest)."""
        for left in range(words - 1, -1, -1):
            self.buf.put(1)
            if now < self.drain_end:
                if self.buf.free <= 0:
                    return left
            elif self.buf.free < self.buf.active:
                self.drain_end = now + self.buf.drain() - 1
        return None


class _Port:
    """A read SRAM's DRAM port: prefetches back to back from cycle -1, `prefetch_cycles` each (as
    SCALE-Sim chains them; idle port time is banked): the k-th (from 1) completes at k*D - 1."""

    def __init__(self, misses: ReadMisses) -> None:
        self.misses, self.used = misses, 0
        self.advances = dict(zip(misses.lines, misses.advances))

    def take(self, line: int, cycle: float) -> tuple[float, float]:
        """The prefetches line `line` needs: (cycle the last completes, the line's stall by
        SCALE-Sim's rule)."""
        count = self.advances.get(line, 0)
        if not count:
            return -math.inf, 0.0
        last_done = (self.used + count) * self.misses.prefetch_cycles - 1.0
        stall = chain_stall(self.misses, first=self.used, count=count, cycle=cycle)
        self.used += count
        return last_done, stall


def simulate_pass(sp: ScalesimPass) -> ScalesimTiming:
    """Simulated timing of one pass through SCALE-Sim's scratchpads."""
    env = simpy.Environment()
    words = _line_words(sp)
    cum = np.concatenate([[0], np.cumsum(words)])
    n_lines = int(words.size)
    ofmap = _Ofmap(sp.layer.ofmap_sram_words, sp.layer.port_words_per_clk)
    ports = [_Port(m) for m in (sp.ifmap, sp.filter)]
    advancing = sorted(set(sp.ifmap.lines) | set(sp.filter.lines)) + [n_lines]
    result = {"stall": 0.0, "last_out": None}

    def array():
        stall, line, k = 0.0, 0, 0
        while True:
            while advancing[k] < line:
                k += 1
            quiet_to = min(advancing[k], ofmap.quiet_until(line, stall, cum))
            ofmap.buf.put(int(cum[quiet_to] - cum[line]))     # lines with nothing to decide
            line = quiet_to
            if line >= n_lines:
                break
            cycle = now = line + stall
            left = ofmap.store(int(words[line]), now)
            while left is not None:
                now = max(now, ofmap.drain_end)
                yield env.timeout(now - env.now)          # full: wait for the drain in flight
                left = ofmap.store(left, now)
            worst = out = now - cycle
            for port in ports:
                last_done, port_stall = port.take(line, cycle)
                if now < last_done:
                    now = last_done
                    yield env.timeout(now - env.now)      # wait for the prefetches
                worst = max(worst, port_stall)
            stall += max(0.0, worst)
            if line == n_lines - 1:
                result["last_out"] = cycle + out
            line += 1
        result["stall"] = stall

    env.run(until=env.process(array()))
    last_out = result["last_out"] if result["last_out"] is not None else n_lines - 1 + result["stall"]
    return finish(sp, stall=result["stall"], last_writeback_cycle=ofmap.buf.last_writeback(last_out, ofmap.drain_end))
