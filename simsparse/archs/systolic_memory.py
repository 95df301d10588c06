"""SCALE-Sim v3's double-buffered scratchpads, as pure functions (`memory.reuse: scalesim`).

What is modelled (SCALE-Sim v3.0.0, `memory/read_buffer.py`, `write_buffer.py`,
`double_buffered_scratchpad_mem.py`, USER interface-bandwidth mode), in *words* (one element of
the datapath dtype; SCALE-Sim's word is one byte, i.e. int8):

Array. One demand line per cycle; a layer is F = folds_c * folds_r folds of `cycles_per_fold`
lines (`systolic_folds`), column folds outer, row folds inner. Each SRAM has its own DRAM port
of `port_words_per_clk` words per cycle (SCALE-Sim's `Bandwidth` for the ofmap,
`IfmapSRAMBankBandwidth` / `FilterSRAMBankBandwidth` for the two read SRAMs).

Read SRAMs (ifmap, filter), size S words. Prefetch order: the whole operand once, in the order
of `systolic_fetch_order`; it is cut into sets of E = ceil(S/100) words, NL = floor(V/E) + 1 sets
for an operand of V words. The SRAM holds a window of n_a = ceil(ceil(S/2)/E) consecutive sets
(circular over the NL sets); before line 0 the first window is loaded (`fill_lines` =
min(ceil(S/2), V) / bw lines, not counted in the layer's cycles). When a demanded word lies
outside the window the window advances by n_p = min(ceil((S - ceil(S/2))/E), NL - n_a) sets,
again and again until the word is inside: a step back behind the window (a fold seam, a repeated
block, the reversed rows of a stationary tile) costs a whole lap of the circle. Each advance is
one prefetch of S - ceil(S/2) words taking D = ceil((S - ceil(S/2)) / bw) + 1 cycles, chained:
prefetch k completes at c_k = k*D - 1 whatever the array did meanwhile (idle DRAM time is
banked). The window advances depend only on the demand order, so
`systolic_fetch_order.read_misses` lists them at plan time, without any timing.

Stall of a read SRAM on a line at cycle C (SCALE-Sim's accounting, reproduced as is): offset = 1;
for each advance k on that line: p = c_k - (C + offset); offset += p; if p > 0: offset += p.
The SRAM's stall is offset - 1: a wait p counts twice (the next wait shrinks by as much, so a
run of misses averages to the true DRAM-bound time; a single miss over-counts).

Ofmap SRAM, size S_o words, drain half ds = S_o - ceil(S_o/2). Every output word (partial sums
of every row fold included, in ws/is) is written into lines of bw words. On a word with no drain
in flight and more than ds words held, the partial line is closed and up to ceil(ds/bw) lines
drain, taking (lines - 1) cycles; their space is credited at once. A word arriving while a drain
is in flight and no space is left stalls the array until that drain ends. After the last line
the rest drains (`drain_cycles`).

A line's stall is the largest of the three SRAMs' (never negative); it delays every later line.
`compute_cycles + stall_cycles` is SCALE-Sim's "Total Cycles" + 1; adding the exposed first fill
and last drain gives its "Total Cycles (incl. prefetch)" + 1 (SCALE-Sim reports the index of the
last cycle). Several passes (row-wise N:M tiers) run as SCALE-Sim layers, one after another.

simsparse plans in these words: a word is one element of the layer's dtype, an SRAM of B bytes
holds B / dtype_bytes words and a port of `dram_bytes_per_clk` moves floor(that / dtype_bytes)
words per cycle. N:M passes stretch an operand's words: an activation slot carries k_raw / k_c
words (the candidates its PE selects from) and a kept weight 1 + metadata_bits / 8 / dtype_bytes
words; partial sums travel at the dtype width, as SCALE-Sim counts them. With int8, dense, the
model is SCALE-Sim's word for word.

Not reproduced: SCALE-Sim's CALC interface mode (read SRAMs never stall, the ofmap port is `cols`
words wide, and it reports the bandwidth it needed), its ramulator DRAM traces, custom layouts
and bank conflicts, the random per-column N of its `OptimizedMapping` sparsity, and its conv
topology mode, whose im2col operand matrices repeat ifmap addresses (a set then holds fewer
distinct words than it counts); simsparse lowers convs to GEMMs, which SCALE-Sim's GEMM mode runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simsparse.archs.systolic_fetch_order import ReadMisses, ScalesimLayer, read_misses
from simsparse.archs.systolic_folds import Pass, mapping
from simsparse.archs.systolic_spec import SystolicSpec
from simsparse.errors import SpecError


@dataclass(frozen=True)
class ScalesimPass:
    """One pass planned onto SCALE-Sim's scratchpads: its geometry and read-window advances."""

    layer: ScalesimLayer
    ifmap: ReadMisses
    filter: ReadMisses
    word_bytes: int


@dataclass(frozen=True)
class ScalesimTiming:
    compute_cycles: int
    stall_cycles: float
    fill_cycles: float        # first window load, before line 0
    drain_cycles: float       # ofmap write-back left after the last line
    dram_cycles: float        # the busiest port's words / words-per-clock

    @property
    def cycles(self) -> float:
        return self.fill_cycles + self.compute_cycles + self.stall_cycles + self.drain_cycles


@dataclass(frozen=True)
class ScalesimTraffic:
    """Bytes one pass moves (DRAM per operand; SRAM reads by the array and DMA, writes)."""

    dram_by_operand: dict     # {"ifmap", "filter", "metadata", "psum", "ofmap"} -> bytes
    sram_read_bytes: float
    sram_write_bytes: float
    metadata_bits_read: float


def plan_pass(p: Pass, spec: SystolicSpec, *, dtype_bytes: int) -> ScalesimPass:
    """Map a pass onto SCALE-Sim's scratchpads in words (module docstring); no timing."""
    mem = spec.memory
    port = int(mem.dram_bytes_per_clk // dtype_bytes)
    if port < 1:
        raise SpecError(f"memory.dram_bytes_per_clk = {mem.dram_bytes_per_clk:g} is below one {dtype_bytes}-byte "
                        "word per cycle; memory.reuse 'scalesim' moves whole words: raise it or use ideal-tiling")
    sr, sc, t = mapping(p, spec.dataflow)
    layer = ScalesimLayer(
        dataflow=spec.dataflow, rows=spec.rows, cols=spec.cols, sr=sr, sc=sc, t=t,
        ifmap_sram_words=mem.ifmap_sram_bytes // dtype_bytes, filter_sram_words=mem.filter_sram_bytes // dtype_bytes,
        ofmap_sram_words=mem.ofmap_sram_bytes // dtype_bytes, port_words_per_clk=port,
        ifmap_words_per_element=p.k_raw / p.k_c,
        filter_words_per_element=1.0 + p.metadata_bits_per_value / 8.0 / dtype_bytes)
    return ScalesimPass(layer=layer, ifmap=read_misses(layer, "ifmap"), filter=read_misses(layer, "filter"),
                        word_bytes=dtype_bytes)


def output_words(layer: ScalesimLayer) -> int:
    """Words the array writes: every fold's outputs (ws/is: partial sums of every row fold)."""
    if layer.dataflow == "os":
        return layer.sr * layer.sc
    return layer.folds_r * layer.t * layer.sc


def pass_traffic(sp: ScalesimPass) -> ScalesimTraffic:
    """DRAM and SRAM bytes of one pass (the array reads each fold's operand blocks from SRAM)."""
    y, b = sp.layer, sp.word_bytes
    w_i, w_f = y.ifmap_words_per_element, y.filter_words_per_element
    demand = {"ws": (y.folds_c * y.t * y.sr, y.sr * y.sc), "os": (y.folds_c * y.sr * y.t, y.folds_r * y.t * y.sc),
              "is": (y.sr * y.sc, y.folds_c * y.sr * y.t)}[y.dataflow]
    outputs = output_words(y)
    final = y.sr * y.sc if y.dataflow == "os" else y.t * y.sc
    filt = sp.filter.dram_words * b
    meta = filt * (w_f - 1.0) / w_f
    return ScalesimTraffic(
        dram_by_operand={"ifmap": sp.ifmap.dram_words * b, "filter": filt - meta, "metadata": meta,
                         "psum": float(outputs - final) * b, "ofmap": float(final) * b},
        sram_read_bytes=(demand[0] * w_i + demand[1] * w_f + outputs) * b,
        sram_write_bytes=(sp.ifmap.dram_words + sp.filter.dram_words + outputs) * b,
        metadata_bits_read=demand[1] * (w_f - 1.0) * b * 8.0,
    )


def _tri(x: int, w: int) -> int:
    """sum_{y=1..x} min(y, w), 0 for x <= 0 (python ints: the event loop's scalar path)."""
    if x <= 0:
        return 0
    return x * (x + 1) // 2 if x <= w else w * (w + 1) // 2 + w * (x - w)


class _Outputs:
    """Output words per demand line: a skewed height x width block per fold (module docstring)."""

    def __init__(self, layer: ScalesimLayer) -> None:
        self.cpf = layer.cycles_per_fold
        fc, fr = np.divmod(np.arange(layer.folds_c * layer.folds_r, dtype=np.int64), layer.folds_r)
        width = np.minimum(layer.cols, layer.sc - fc * layer.cols)
        if layer.dataflow == "os":
            height = np.minimum(layer.rows, layer.sr - fr * layer.rows)
            first = layer.t - 1 + layer.rows - height
        else:
            height = np.full_like(fc, layer.t)
            first = np.full_like(fc, 2 * layer.rows - 1)
        self.first, self.height, self.width = first.tolist(), height.tolist(), width.tolist()
        self.fold_cum = np.concatenate([[0], np.cumsum(height * width)]).astype(np.int64)
        self.total = int(self.fold_cum[-1])

    def _in_fold(self, fold: int, line: int) -> int:
        """Output words of `fold` on its lines <= line (the block's first line is `first`)."""
        h, x = self.height[fold], line - self.first[fold] + 1
        return _tri(x, h) - _tri(x - self.width[fold], h)

    def before(self, line: int) -> int:
        """Output words on global lines < line."""
        fold, rel = divmod(line, self.cpf)
        if fold >= self.fold_cum.size - 1:
            return self.total
        return int(self.fold_cum[fold]) + self._in_fold(fold, rel - 1)

    def line_of(self, word: int) -> float:
        """Global line holding output word `word` (inf past the end)."""
        if word >= self.total:
            return math.inf
        fold = int(np.searchsorted(self.fold_cum, word, side="right")) - 1
        need = word - int(self.fold_cum[fold]) + 1          # words of this fold up to and including it
        low, high = sorted((self.height[fold], self.width[fold]))
        ramp, flat = low * (low + 1) // 2, low * (high - low)
        if need <= ramp:                                    # invert the trapezoid of words per line
            x = math.ceil((math.isqrt(8 * need + 1) - 1) / 2)
        elif need <= ramp + flat:
            x = low + -(-(need - ramp) // low)
        else:
            rest, b = need - ramp - flat, 2 * low - 1
            x = high + math.ceil((b - math.sqrt(max(0, b * b - 8 * rest))) / 2)
        first = self.first[fold]
        while self._in_fold(fold, first + x - 1) < need:    # integer corrections of the float roots
            x += 1
        while x > 1 and self._in_fold(fold, first + x - 2) >= need:
            x -= 1
        return fold * self.cpf + first + x - 1


class OfmapLines:
    """Bookkeeping of SCALE-Sim's ofmap write buffer (module docstring): words held, lines of bw
    words (a drain closes the line being filled) and lines drained. When to drain and when the
    array stalls is the caller's (the analytic event loop here, the simpy engine)."""

    def __init__(self, size_words: int, bw: int) -> None:
        self.active = math.ceil(size_words * 0.5)
        self.bw, self.per_drain = bw, -(-(size_words - self.active) // bw)
        self.free, self.lines, self.fill, self.drained = size_words, 0, 0, 0
        self.partial: dict[int, int] = {}   # closed line -> words in it, for partly filled lines

    def put(self, words: int) -> None:
        self.free -= words
        self.lines += (self.fill + words) // self.bw
        self.fill = (self.fill + words) % self.bw

    def _close_line(self) -> None:
        if self.fill:
            self.partial[self.lines] = self.fill
            self.lines, self.fill = self.lines + 1, 0

    def drain(self) -> int:
        """Start a drain: close the open line, take up to per_drain lines, credit their words
        (SCALE-Sim subtracts the empty slots of the chunk's last line only). Returns its lines."""
        self._close_line()
        n = min(self.per_drain, self.lines - self.drained)
        last = self.drained + n - 1
        self.free += n * self.bw - (self.bw - self.partial[last] if last in self.partial else 0)
        self.drained += n
        return n

    def last_writeback(self, cycle: float, drain_end: float) -> float:
        """Cycle of the last write-back when the rest drains chunk after chunk from `cycle` on
        (SCALE-Sim starts them at the last line's cycle even if a drain is still in flight)."""
        self._close_line()
        left = self.lines - self.drained
        return max(drain_end, cycle + left - 1) if left else drain_end


class _Writer:
    """The ofmap SRAM in the analytic event loop: finds the next line where it acts."""

    def __init__(self, size_words: int, bw: int, outputs: _Outputs) -> None:
        self.buf, self.out = OfmapLines(size_words, bw), outputs
        self.written, self.drain_end = 0, 0

    def advance_to(self, word: int) -> None:
        """Store words up to (not including) `word` with nothing to decide on the way."""
        self.buf.put(word - self.written)
        self.written = word

    def next_line(self, stall: float) -> float:
        """First line (at the current stall offset) on which the buffer stalls or starts a drain."""
        if self.written >= self.out.total:
            return math.inf
        draining_until = math.ceil(self.drain_end - stall)      # lines before this are mid-drain
        stall_line = self.out.line_of(self.written + max(0, self.buf.free - 1))
        if stall_line < draining_until:
            return stall_line
        first = max(self.written + max(0, self.buf.free - self.buf.active),
                    self.out.before(max(draining_until, 0)))
        return self.out.line_of(first)

    def store_line(self, line: int, cycle: float) -> float:
        """Store one line's words at `cycle`; returns the line's stall."""
        current = cycle
        for _ in range(self.out.before(line + 1) - self.written):
            self.buf.put(1)
            self.written += 1
            if current < self.drain_end:
                if self.buf.free <= 0:
                    current = self.drain_end
            elif self.buf.free < self.buf.active:
                self.drain_end = current + self.buf.drain() - 1
        return current - cycle


def prefetch_done(misses: ReadMisses, *, first: int, count: int) -> list[float]:
    """Completion cycles of prefetches first+1 .. first+count (k-th: k*D - 1, chained from -1)."""
    return [k * misses.prefetch_cycles - 1.0 for k in range(first + 1, first + count + 1)]


def read_stall(completions: list[float], *, cycle: float) -> float:
    """Stall of a read SRAM on a line at `cycle` waiting for these prefetch completions
    (SCALE-Sim's offset accounting, module docstring)."""
    offset = 1.0
    for done in completions:
        wait = done - (cycle + offset)
        offset += 2 * wait if wait > 0 else wait
    return offset - 1


def chain_stall(misses: ReadMisses, *, first: int, count: int, cycle: float) -> float:
    """`read_stall` of prefetches first+1 .. first+count without listing them. With u = offset -
    (completion - cycle) after each one, a step maps u to D - u when u < D (a positive wait) and to
    0 otherwise, so u repeats with period two from the second step on: a lap of thousands of
    prefetches costs three steps."""
    d = float(misses.prefetch_cycles)
    u = d - ((first + 1) * d - 1.0 - cycle) + 1.0           # the offset starts at 1

    def step(v: float) -> float:
        return d - v if v < d else 0.0

    for _ in range(min(count, 2) + (max(count - 2, 0) % 2)):
        u = step(u)
    return (first + count) * d - 1.0 - cycle + u - 1.0


@lru_cache(maxsize=1024)   # plan ranks formats by it, then the analytic engine times the chosen pass again
def pass_timing(sp: ScalesimPass) -> ScalesimTiming:
    """Cycles of one pass through SCALE-Sim's scratchpads, event by event (module docstring)."""
    layer, misses = sp.layer, (sp.ifmap, sp.filter)
    outputs = _Outputs(layer)
    writer = _Writer(layer.ofmap_sram_words, layer.port_words_per_clk, outputs)
    n_lines, stall, last_out = layer.compute_cycles, 0.0, None
    next_miss, done = [0, 0], [0, 0]
    write_line = writer.next_line(stall)
    while True:
        cand = [m.lines[i] if i < len(m.lines) else math.inf for m, i in zip(misses, next_miss)]
        line = min(min(cand), write_line)
        if line >= n_lines:
            break
        cycle, worst, out_stall = line + stall, 0.0, 0.0
        for j, m in enumerate(misses):
            if cand[j] == line:
                adv = m.advances[next_miss[j]]
                worst = max(worst, chain_stall(m, first=done[j], count=adv, cycle=cycle))
                done[j], next_miss[j] = done[j] + adv, next_miss[j] + 1
        if line == write_line:                  # else the ofmap SRAM has nothing to decide on this line
            writer.advance_to(outputs.before(line))
            out_stall = writer.store_line(line, cycle)
        if line == n_lines - 1:
            last_out = cycle + out_stall
        step = max(worst, out_stall)
        stall += step
        if step or line == write_line:
            writer.advance_to(outputs.before(line + 1))      # this line's words are in, decided or not
            write_line = writer.next_line(stall)
    if last_out is None:
        last_out = n_lines - 1 + stall
    writer.advance_to(outputs.total)
    return finish(sp, stall=stall, last_writeback_cycle=writer.buf.last_writeback(last_out, writer.drain_end))


def finish(sp: ScalesimPass, *, stall: float, last_writeback_cycle: float) -> ScalesimTiming:
    """Timing record of a pass from its stalls and the cycle its last output word left for DRAM."""
    y, n_lines = sp.layer, sp.layer.compute_cycles
    port_words = max(sp.ifmap.dram_words, sp.filter.dram_words, output_words(y))
    return ScalesimTiming(
        compute_cycles=n_lines, stall_cycles=stall, fill_cycles=max(sp.ifmap.fill_lines, sp.filter.fill_lines),
        drain_cycles=max(0.0, last_writeback_cycle - (n_lines - 1 + stall)),
        dram_cycles=port_words / y.port_words_per_clk)


def total_timing(parts: list[ScalesimTiming]) -> ScalesimTiming:
    """Passes run one after another (each a SCALE-Sim layer with fresh scratchpads)."""
    return ScalesimTiming(*(sum(getattr(t, f) for t in parts) for f in
                            ("compute_cycles", "stall_cycles", "fill_cycles", "drain_cycles", "dram_cycles")))
