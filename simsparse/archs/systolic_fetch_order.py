"""Where each operand word sits in SCALE-Sim v3's prefetch order, and which lines demand it.

SCALE-Sim streams every operand into its SRAM in a fixed *prefetch order* (the whole operand
once, see `systolic_memory`) while the array *demands* it line by line (one line per cycle) in
fold order: column folds outer, row folds inner. Two layouts cover the six read operands:

diagonal — the operand is cut into `blocks` blocks of `t` rows x `width` columns (the last block
    may use only `last_width` columns; unused slots hold no data), stacked, and flattened
    diagonal by diagonal (d = row + col ascending; inside a diagonal, row descending). A fold on
    block f demands, on its line `offset + d`, diagonal d of that block, columns ascending. So a
    line is one contiguous run of the prefetch order; consecutive folds step back a little at
    block seams (their diagonals interleave there).
      ws ifmap (block = row fold, t = m, width = rows, offset = rows)
      os ifmap (block = row fold, t = k, width = rows, offset = 0)
      os filter (block = col fold, t = k, width = cols, offset = 0; each block demanded once per row fold)
      is filter (block = row fold, t = n, width = rows, offset = rows)
rows — the operand is cut into column blocks g of `height` rows x `width` columns (the last
    block may use `last_width`), stacked, and flattened row by row. Fold (g, f) demands rows
    f*rows .. f*rows + used - 1 of block g, one row per line, the last row first (unused rows of
    a partial fold come first, empty).
      ws filter (block = col fold, height = k), is ifmap (block = col fold, height = k)

All positions are *ranks*: indices into the prefetch order counting only real data. The
orders return, per demanding line of one fold, the ranks of its first and last element (a
line's elements are consecutive ranks, in demand order).

`read_misses` slides SCALE-Sim's circular window of sets over these ranks (the rules are in
`systolic_memory`'s docstring) and lists the lines where it advances: geometry only, exact
against SCALE-Sim v3.0.0's `read_buffer` (same lines, same number of advances). It skips every
fold whose whole rank span lies inside the window and walks the others line by line.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import numpy as np

from simsparse.archs.systolic_folds import cycles_per_fold


def _tri_sum(x: np.ndarray, w: int) -> np.ndarray:
    """sum_{y=1..x} min(y, w) (0 for x <= 0), elementwise."""
    x = np.maximum(x, 0)
    low = np.minimum(x, w)
    return low * (low + 1) // 2 + w * (x - low)


def _band_count(d: np.ndarray, first_row: int, end_row: int, w: int) -> np.ndarray:
    """Entries (r, c) with first_row <= r < end_row, 0 <= c < w and r + c < d."""
    return _tri_sum(d - first_row, w) - _tri_sum(d - end_row, w)


class _StackedBlocks:
    """`blocks` blocks of `depth` rows x `width` columns, the last one using only `last_width`."""

    blocks: int
    width: int
    last_width: int

    @property
    def depth(self) -> int:
        raise NotImplementedError

    @property
    def total(self) -> int:
        """Words of real data (the unused columns of the last block hold none)."""
        return self.depth * (self.width * (self.blocks - 1) + self.last_width)

    @property
    def padded_total(self) -> int:
        return self.depth * self.width * self.blocks


@dataclass(frozen=True)
class DiagonalOrder(_StackedBlocks):
    """Stacked blocks of t x width flattened by diagonals (see module docstring)."""

    blocks: int
    t: int
    width: int
    last_width: int

    @property
    def depth(self) -> int:
        return self.t

    def _before(self, d: np.ndarray) -> np.ndarray:
        """Ranks taken by diagonals < d."""
        m = self.blocks * self.t
        v = _band_count(d, 0, m, self.width)
        if self.last_width < self.width:
            r0 = (self.blocks - 1) * self.t
            v -= _band_count(d - self.last_width, r0, m, self.width - self.last_width)
        return v

    def rank(self, row: np.ndarray, col: np.ndarray) -> np.ndarray:
        """Rank of entry (row, col) of the stacked matrix (it must hold data)."""
        m = self.blocks * self.t
        d = row + col
        top = np.minimum(d, m - 1)
        pos = top - row
        if self.last_width < self.width:
            r0 = (self.blocks - 1) * self.t
            pos -= np.maximum(0, np.minimum(top, d - self.last_width) - np.maximum(row, r0 - 1))
        return self._before(d) + pos

    def fold_lines(self, block: int, *, offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(line in fold, first rank, last rank) of every line demanding block `block`."""
        used = self.last_width if block == self.blocks - 1 else self.width
        d_local = np.arange(self.t + used - 1, dtype=np.int64)
        c_lo = np.maximum(0, d_local - self.t + 1)
        c_hi = np.minimum(used - 1, d_local)
        base = block * self.t
        first = self.rank(base + d_local - c_lo, c_lo)
        last = self.rank(base + d_local - c_hi, c_hi)
        return d_local + offset, first, last

    def fold_span(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lowest, highest) rank any fold on `block` demands (vectorised over blocks)."""
        block = np.asarray(block, dtype=np.int64)
        used = np.where(block == self.blocks - 1, self.last_width, self.width)
        base = block * self.t
        return self.rank(base, np.zeros_like(base)), self.rank(base + self.t - 1, used - 1)


@dataclass(frozen=True)
class RowOrder(_StackedBlocks):
    """Column blocks of height x width flattened row by row (see module docstring)."""

    blocks: int
    height: int
    width: int
    last_width: int
    rows: int          # array rows: a fold demands up to `rows` rows of its block

    @property
    def depth(self) -> int:
        return self.height

    def _used_rows(self, fold_row: np.ndarray) -> np.ndarray:
        return np.minimum(self.rows, self.height - fold_row * self.rows)

    def fold_lines(self, block: int, fold_row: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(line in fold, first rank, last rank) of the lines of fold (block, fold_row)."""
        used_cols = self.last_width if block == self.blocks - 1 else self.width
        used = int(self._used_rows(np.asarray(fold_row)))
        i = np.arange(used, dtype=np.int64)
        row = fold_row * self.rows + used - 1 - i
        first = block * self.height * self.width + row * used_cols
        return self.rows - used + i, first, first + used_cols - 1

    def fold_span(self, block: np.ndarray, fold_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        block, fold_row = np.asarray(block, dtype=np.int64), np.asarray(fold_row, dtype=np.int64)
        used_cols = np.where(block == self.blocks - 1, self.last_width, self.width)
        lo = block * self.height * self.width + fold_row * self.rows * used_cols
        return lo, lo + self._used_rows(fold_row) * used_cols - 1


@dataclass(frozen=True)
class ScalesimLayer:
    """One pass as SCALE-Sim runs it: (Sr, Sc, T) on a rows x cols array, sizes in words."""

    dataflow: str
    rows: int
    cols: int
    sr: int
    sc: int
    t: int
    ifmap_sram_words: int
    filter_sram_words: int
    ofmap_sram_words: int
    port_words_per_clk: int
    ifmap_words_per_element: float = 1.0   # > 1: N:M activations streamed per compressed slot
    filter_words_per_element: float = 1.0  # > 1: index metadata travelling with each weight

    @property
    def folds_r(self) -> int:
        return -(-self.sr // self.rows)

    @property
    def folds_c(self) -> int:
        return -(-self.sc // self.cols)

    @property
    def cycles_per_fold(self) -> int:
        return cycles_per_fold(self.t, rows=self.rows, cols=self.cols, dataflow=self.dataflow)

    @property
    def compute_cycles(self) -> int:
        return self.folds_r * self.folds_c * self.cycles_per_fold


@dataclass(frozen=True)
class ReadMisses:
    """Window advances of one read SRAM: at global line `lines[i]`, `advances[i]` prefetches."""

    operand: str
    lines: tuple[int, ...]
    advances: tuple[int, ...]
    prefetch_cycles: int      # D: cycles per prefetch
    fill_lines: int           # lines of the first window load (before line 0)
    dram_words: float         # first window + every prefetch


def _order(layer: ScalesimLayer, operand: str):
    """Prefetch order of an operand and how a fold (fc, fr) picks its block (module docstring)."""
    r, c = layer.rows, layer.cols
    last_r, last_c = layer.sr - (layer.folds_r - 1) * r, layer.sc - (layer.folds_c - 1) * c
    diag_rows = DiagonalOrder(blocks=layer.folds_r, t=layer.t, width=r, last_width=last_r)
    stat_cols = RowOrder(blocks=layer.folds_c, height=layer.sr, width=c, last_width=last_c, rows=r)
    table = {
        ("ws", "ifmap"): (diag_rows, "fr", r), ("ws", "filter"): (stat_cols, "both", 0),
        ("os", "ifmap"): (diag_rows, "fr", 0),
        ("os", "filter"): (DiagonalOrder(blocks=layer.folds_c, t=layer.t, width=c, last_width=last_c), "fc", 0),
        ("is", "ifmap"): (stat_cols, "both", 0), ("is", "filter"): (diag_rows, "fr", r),
    }
    return table[(layer.dataflow, operand)]


def _fold_sets(order, pick: str, offset: int, block: int, fold_row: int, words: float, set_words: int):
    """(line in fold, first set, last set) of each demanding line of one fold."""
    if pick == "both":
        line, first, last = order.fold_lines(block, fold_row)
    else:
        line, first, last = order.fold_lines(block, offset=offset)
    return (line,) + _to_sets(first, last, words, set_words)


def _fold_spans(order, pick: str, layer: ScalesimLayer) -> tuple[np.ndarray, np.ndarray]:
    fc, fr = np.divmod(np.arange(layer.folds_c * layer.folds_r, dtype=np.int64), layer.folds_r)
    if pick == "both":
        return order.fold_span(fc, fr)
    return order.fold_span(fr if pick == "fr" else fc)


def _to_sets(first: np.ndarray, last: np.ndarray, words: float, set_words: int):
    if words == 1.0:
        return first // set_words, last // set_words
    return (np.floor(first * words / set_words).astype(np.int64),
            np.floor(((last + 1) * words - 1) / set_words).astype(np.int64))


def read_window(size_words: int) -> tuple[int, int, int]:
    """(active words, prefetch words, words per set) of a SCALE-Sim read SRAM."""
    active = math.ceil(size_words * 0.5)
    return active, size_words - active, math.ceil(size_words / 100)


def read_misses(layer: ScalesimLayer, operand: str) -> ReadMisses:
    """Lines where `operand`'s window advances, and how often (no timing; module docstring)."""
    order, pick, offset = _order(layer, operand)
    words = layer.ifmap_words_per_element if operand == "ifmap" else layer.filter_words_per_element
    size = layer.ifmap_sram_words if operand == "ifmap" else layer.filter_sram_words
    active, prefetch, set_words = read_window(size)
    bw = layer.port_words_per_clk
    total_words = order.total * words
    n_sets = int(total_words // set_words) + 1
    n_active = min(-(-active // set_words), n_sets)
    n_step = min(-(-prefetch // set_words), n_sets - n_active)
    fill_lines = min(-(-active // bw), math.ceil(order.padded_total * words / bw))
    lines, advances = _walk(layer, (order, pick, offset), words=words, set_words=set_words, n_sets=n_sets,
                            n_active=n_active, n_step=n_step) if n_step > 0 else ([], [])
    return ReadMisses(operand=operand, lines=tuple(lines), advances=tuple(advances),
                      prefetch_cycles=-(-prefetch // bw) + 1, fill_lines=fill_lines,
                      dram_words=min(active, total_words) + prefetch * sum(advances))


def _walk(layer: ScalesimLayer, demand: tuple, *, words: float, set_words: int, n_sets: int, n_active: int,
          n_step: int) -> tuple[list[int], list[int]]:
    """Slide the circular window over the demand, fold by fold: (lines, advances on each)."""
    order, pick, offset = demand
    lines: list[int] = []
    advances: list[int] = []
    lo, hi = _to_sets(*_fold_spans(order, pick, layer), words, set_words)
    span = hi - lo
    folds, cpf, start, chunk = lo.size, layer.cycles_per_fold, 0, 512
    window, seen = 0, {}          # seen: fold geometry per block (blocks repeat across passes)
    rising = isinstance(order, DiagonalOrder)      # a fold's sets rise line by line, else they fall
    while start < folds:
        stop = min(folds, start + chunk)
        outside = ((lo[start:stop] - window) % n_sets) + span[start:stop] >= n_active
        if not outside.any():
            start = stop
            continue
        f = start + int(np.argmax(outside))
        fc, fr = divmod(f, layer.folds_r)
        key = (fc, fr) if pick == "both" else ((fr if pick == "fr" else fc), 0)
        if key not in seen:
            line, s_lo, s_hi = _fold_sets(order, pick, offset, *key, words, set_words)
            seen[key] = (line.tolist(), s_lo.tolist(), s_hi.tolist(), (-s_lo).tolist())
        line_in_fold, s_lo, s_hi, neg_lo = seen[key]
        pos = 0
        while True:
            i = _first_outside(s_lo, s_hi, neg_lo, pos, rising=rising, window=window, n_sets=n_sets,
                               n_active=n_active)
            if i >= len(s_lo):
                break
            count = 0
            for s in range(s_lo[i], s_hi[i] + 1):
                behind = (s - window) % n_sets
                if behind >= n_active:             # advance by n_step (<= n_active) until s is inside
                    k = -(-(behind - n_active + 1) // n_step)
                    window = (window + k * n_step) % n_sets
                    count += k
            lines.append(f * cpf + line_in_fold[i])
            advances.append(count)
            pos = i + 1
        start = f + 1
    return lines, advances


def _first_outside(s_lo: list, s_hi: list, neg_lo: list, pos: int, *, rising: bool, window: int, n_sets: int,
                   n_active: int) -> int:
    """First line from `pos` on with a set outside the window [window, window + n_active) mod
    n_sets, for sets that only rise (or only fall) along the fold's lines."""
    if pos >= len(s_lo):
        return pos
    end = window + n_active
    first_lo, first_hi = s_lo[pos], s_hi[pos]
    wrapped = end > n_sets
    if wrapped and first_lo < end - n_sets:
        region_lo, region_end = 0, end - n_sets            # in the wrapped-around part [0, end - n_sets)
    elif first_lo >= window:
        region_lo, region_end = window, min(end, n_sets)
    else:
        return pos
    if first_hi >= region_end:
        return pos
    if rising:
        return bisect_left(s_hi, region_end, lo=pos)       # sets only grow: leave at the region's end
    if region_lo == 0:
        return len(s_lo)                                   # falling inside [0, ..): never leaves
    return bisect_right(neg_lo, -region_lo, lo=pos)        # falling: leave below the region's start
