"""The records of the CPU loop models (archs/cpu_loops.py): what one kernel call does, as phases
run one after the other; a phase holds single-thread cycles per execution port and the bytes of
each data stream with its working set. Within a phase the ports and the memory streams overlap
(the slowest wins, see archs/cpu_cost.py); phases add. Ports:

    fma     vector FMAs / fma_ports                 load    loads (vector or scalar) / load_ports
    store   stores / store_ports                    gather  gathered elements / gather_elements_per_clk
    alu     integer and scalar work (index widening, in-group offsets, CSR's per-nonzero scalar part)
    chain   loop-carried latency (an accumulator that round-trips memory: fma + store forwarding)
    serial  per-row work that does not overlap (horizontal sums, loop set-up)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

CACHE_LINE_BYTES = 64


@dataclass(frozen=True)
class PortCycles:
    """Single-thread cycles of a phase per execution port (module doc); `serial` never overlaps."""

    fma: float = 0.0
    load: float = 0.0
    store: float = 0.0
    gather: float = 0.0
    alu: float = 0.0
    chain: float = 0.0
    serial: float = 0.0

    @property
    def busiest_port(self) -> float:
        """The slowest of the overlapping ports (all but `serial`)."""
        return max(self.fma, self.load, self.store, self.gather, self.alu, self.chain)

    def scaled(self, factor: float) -> "PortCycles":
        return PortCycles(**{f.name: getattr(self, f.name) * factor for f in fields(self)})


@dataclass(frozen=True)
class Stream:
    name: str
    bytes: float                 # bytes moved by one call, all threads together
    working_set_bytes: float     # footprint it competes for cache with, per thread
    first_touch: bool = True     # read once per call: comes from memory when the cache is cold
    gathered_rows: bool = False  # short rows at data-dependent addresses (x^T rows per nonzero):
                                 # see memory.gathered_row_efficiency
    gather_loop: bool = False    # streamed by a gather-dot loop (its gathers hold the load ports and
                                 # fill buffers): memory.gather_loop_efficiency of the bandwidth
    row_bytes: float = 0.0       # gathered_rows: the bytes of one row (an L1-resident row costs its
                                 # own bytes, not a whole line: the load ports already count it)
    cross_core: bool = False     # lines another core just wrote (memory.cross_core_efficiency of the
                                 # LLC's per-core bandwidth; not hidden behind the phase's compute)


@dataclass(frozen=True)
class Phase:
    name: str
    cycles: PortCycles           # single-thread cycles per port (see module doc)
    streams: tuple[Stream, ...]
    parallel: bool               # split over the threads
    units: int = 1               # independent work units (rows) the split can use
    params: str = ""             # kernel whose parameters time this phase ("" = the plan's kernel)
    batched: bool = False        # part of the batched (m > 1) code path (KernelParams.batched_eff)


@dataclass(frozen=True)
class LoopProfile:
    kernel: str
    phases: tuple[Phase, ...]
    calls: int                   # Python/torch/numba dispatches per call
    threaded: bool
    macs_issued: int
    metadata_bytes: float
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Shape:
    """What a kernel needs to know about one GEMM and its mask."""

    m: int                       # batch rows
    n: int
    k: int
    nnz: int
    rows_active: int             # rows with at least one nonzero
    cols_active: int             # reduction columns with at least one nonzero
    fan_in: int                  # max nonzeros per row (condensed stores rows_active x fan_in)
    nm: tuple[int, int] | None   # (N, M) the nm kernel would use
    value_bytes: int = 4


def row_line_bytes(row_bytes: float) -> float:
    """Bytes the memory system moves for one gathered row of x^T: whole cache lines (a row of
    8 fp32 = 32 B at a data-dependent address still brings in its 64 B line)."""
    return CACHE_LINE_BYTES * math.ceil(row_bytes / CACHE_LINE_BYTES)
