"""Closed-form time of a fold stream on an `nm_systolic` array (pure math; moved here unchanged
from engines/systolic_analytic.py so that the arch model can rank patterns by it).

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


def fold_stream(traffic: Sequence[FoldTraffic], *, dram_bytes_per_clk: float) -> FoldStream:
    """The fold stream of a layer's passes (in run order) on a DRAM interface of that bandwidth."""
    if not traffic:
        empty = np.zeros(0)
        return FoldStream(empty, empty, empty)
    return FoldStream(
        compute=np.concatenate([np.full(t.folds, float(t.cycles_per_fold)) for t in traffic]),
        fill=np.concatenate([t.fill_bytes for t in traffic]) / dram_bytes_per_clk,
        writeback=np.concatenate([t.writeback_bytes for t in traffic]) / dram_bytes_per_clk,
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
