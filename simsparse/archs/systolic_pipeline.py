"""Closed-form time of a fold stream on an `nm_systolic` array (pure math in archs, so that the
arch model can rank patterns by it).

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

Runs: a stream is explicit folds cut in blocks, each running `repeat` times back to back (equal
temporal pieces, equal m chunks: `systolic_folds`). Each term of the closed form reads a fold and
its two neighbours only, so a run of r >= 3 copies is the same as three copies with the middle
one weighted r - 2 (every copy between the first and the last sees copies of the same block on
both sides): exact, and bounded whatever the GEMM's rows. The cycle engine replicates runs too.

The analytic engine (engines/systolic_analytic.py) is this closed form; the arch model's pattern
choice (archs/systolic_patterns.choose) ranks candidates by it, stalls included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from simsparse.archs.systolic_folds import FoldTraffic


@dataclass(frozen=True)
class FoldStream:
    """Per-fold compute cycles and DRAM cycles of one layer (all passes concatenated, in runs)."""

    compute: np.ndarray
    fill: np.ndarray        # DRAM cycles before each fold
    writeback: np.ndarray   # DRAM cycles after each fold
    runs: tuple[tuple[int, int], ...] = ()   # (folds, repeat) blocks over the arrays; () = each fold once

    def block_runs(self) -> tuple[tuple[int, int], ...]:
        return self.runs or ((int(self.compute.size), 1),)

    def take(self, copies: Sequence[int]) -> "FoldStream":
        """The stream with run i repeated copies[i] times, written out fold by fold."""
        idx, start = [], 0
        for (n, _), c in zip(self.block_runs(), copies):
            idx.append(np.tile(np.arange(start, start + n), c))
            start += n
        at = np.concatenate(idx) if idx else np.zeros(0, dtype=np.int64)
        return FoldStream(self.compute[at], self.fill[at], self.writeback[at])


@dataclass(frozen=True)
class Timing:
    cycles: float
    compute_cycles: float
    stall_cycles: float
    fill_cycles: float       # the exposed first fill
    drain_cycles: float      # the exposed last write-back
    dram_cycles: float       # all DRAM transfers back to back


def fold_stream(pieces: Sequence[tuple[FoldTraffic, int]], *, dram_bytes_per_clk: float) -> FoldStream:
    """The fold stream of a layer's (traffic, repeat) pieces, in run order, on a DRAM interface of
    that bandwidth. A repeated piece of one block is one run; a repeated piece of several runs (an
    `is` temporal piece over m chunks: repeats bounded by n, not m) is written out copy by copy."""
    blocks: list[tuple[FoldTraffic, int, int]] = []      # (traffic, first fold, folds) of each run
    runs: list[tuple[int, int]] = []
    for t, repeat in pieces:
        copies, times = (1, repeat) if len(t.runs) == 1 else (repeat, 1)
        for _ in range(copies):
            start = 0
            for n, r in t.runs:
                blocks.append((t, start, n))
                runs.append((n, r * times))
                start += n
    if not blocks:
        empty = np.zeros(0)
        return FoldStream(empty, empty, empty)
    return FoldStream(
        compute=np.concatenate([np.full(n, float(t.cycles_per_fold)) for t, _, n in blocks]),
        fill=np.concatenate([t.fill_bytes[i:i + n] for t, i, n in blocks]) / dram_bytes_per_clk,
        writeback=np.concatenate([t.writeback_bytes[i:i + n] for t, i, n in blocks]) / dram_bytes_per_clk,
        runs=tuple(runs))


def three_copies(stream: FoldStream) -> tuple[FoldStream, np.ndarray]:
    """The stream with each run written out at most three times, and each written fold's weight
    (the folds it stands for: the middle copy of a run of r > 3 stands for r - 2)."""
    runs = stream.block_runs()
    weights = [np.repeat(np.array([1.0, r - 2.0, 1.0] if r > 3 else [1.0] * r), n) for n, r in runs]
    return stream.take([min(r, 3) for _, r in runs]), np.concatenate(weights)


def totals(stream: FoldStream) -> tuple[float, float, float]:
    """(compute, fill, write-back) cycles of every fold of the stream, runs counted in full."""
    return _weighted_totals(*three_copies(stream))


def _weighted_totals(ex: FoldStream, wt: np.ndarray) -> tuple[float, float, float]:
    return float((ex.compute * wt).sum()), float((ex.fill * wt).sum()), float((ex.writeback * wt).sum())


def closed_form(stream: FoldStream, *, double_buffered: bool) -> Timing:
    if stream.compute.size == 0:
        return Timing(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    ex, wt = three_copies(stream)                                     # exact (module docstring)
    c_all, d_all, w_all = _weighted_totals(ex, wt)
    d0, w_last = float(ex.fill[0]), float(ex.writeback[-1])
    if double_buffered:
        d_next = np.append(ex.fill[1:], 0.0)
        w_prev = np.insert(ex.writeback[:-1], 0, 0.0)
        steps = float((np.maximum(ex.compute, d_next + w_prev) * wt).sum())
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
