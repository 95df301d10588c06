"""Fold arithmetic and per-fold memory traffic of an N:M systolic array (no timing policy).

Compute timing follows SCALE-Sim (Samajdar et al., "A Systematic Methodology for Characterizing
Scalability of DNN Accelerators using SCALE-Sim", ISPASS 2020): an operand mapped onto the
rows x cols array spans Sr x Sc (spatial) and streams for T cycles (temporal); a fold is one
array-sized piece of Sr x Sc (partial folds cost the same: the array is fixed), and the array
runs the folds back to back, column folds outer, row folds inner (SCALE-Sim v3's order):

    folds                 = ceil(Sr / rows) * ceil(Sc / cols)
    cycles_per_fold ws/is = rows + (rows + cols - 2) + T = 2*rows + cols + T - 2
    cycles_per_fold os    =         (rows + cols - 2) + T =   rows + cols + T - 2

ws/is: `rows` cycles load the stationary tile (one row per cycle, down the columns), then the
streamed operand enters skewed: the last PE sees its T-th input rows + cols - 2 cycles after
the first PE saw its first, and the partial sums leave the bottom row as they finish (the drain
is that skew). os: nothing is preloaded; A enters skewed from the left and W from the top, PE
(i, j) does its k-th MAC at cycle k + i + j, so the last PE finishes at T + rows + cols - 3. Its
outputs shift out of the array while the next fold's operands shift in (SCALE-Sim writes the
fold's output rows from cycle T - 1 of the fold on, skewed over the columns, inside the same
T + rows + cols - 2 lines), so folds overlap by the `rows`-cycle output drain and an os fold
costs `rows` cycles less than a ws/is fold of the same T. Checked against SCALE-Sim v3.0.0
cycle for cycle (64x128x256 os on 32x32: 8 folds x 318 = 2544; SCALE-Sim reports 2543, the
index of the last cycle); `benchmarks/bench_vs_scalesim.py` prints the comparison.

Mapping of C[m, n] = A[m, k] . W[n, k]^T (k = reduction, compressed to k_c = N per group of M,
min(N, k mod M) for a last partial group):

    ws (weight stationary): (Sr, Sc, T) = (k_c, n, m)  W tile resident, A streams, psums drain down
    os (output stationary): (Sr, Sc, T) = (m, n, k_c)  C tile resident, A and W stream in
    is (input stationary):  (Sr, Sc, T) = (k_c, m, n)  A tile resident, W streams, psums drain down

N:M hardware keeps only the k_c compressed weights (+ index metadata) in the array; each PE
selects its input from the M candidates of its group with the index (as in S2TA / NVIDIA's
sparse tensor cores), so activations are streamed uncompressed: `Pass.k_raw` of them per output
row, k_raw / k_c per compressed slot. k_raw counts the reduction columns that hold a weight in
some row: all of k for per-row patterns, only the kept columns when every row keeps the same
positions (SCALE-Sim v3's layer-wise N:M, whose activation columns without weights are never
fetched).

Memory traffic per fold under `memory.reuse: ideal-tiling` (this module; `scalesim` is
`systolic_memory`). Double-buffered SRAMs: the tile in use owns half of each SRAM. Fetch order
and reuse:
  ws/is: outer loop over Sc chunks, inner over Sr chunks. The stationary tile is fetched once;
         the streamed operand (T x Sr) is fetched once if it fits its SRAM half, else per Sc
         chunk; partial sums (T x cols, accumulator width) stay in the output SRAM across the
         Sr chunks if they fit, else spill to DRAM and are read back (write + read per fold).
         Finished outputs go to DRAM after the last Sr chunk. With `array.tile_temporal` (the
         default) T is first split into pieces whose partial sums fit the output SRAM half
         (`temporal_pieces`): each piece repeats fill + drain, so compute cycles exceed the
         single-piece equation by (2*rows + cols - 2) per extra piece and fold, but partial
         sums never spill. `tile_temporal: false` is SCALE-Sim's order exactly.
  os:    outer loop over Sr (m) chunks, inner over Sc (n) chunks (the DMA may order os folds
         as it likes: the compute cycles do not depend on it). The A chunk (rows x T) is
         fetched once per Sr chunk if it fits, else per fold; W (T x n) once if it fits its
         SRAM half, else per fold; outputs (rows x cols) go to DRAM after every fold.

Runs: nothing here grows with the GEMM rows m beyond a constant. Equal temporal pieces are one
(piece, repeat) run (`temporal_pieces`), and the outer-loop chunks between the first and the last
(the m chunks of os and is) move the same bytes, so `FoldTraffic` keeps one of them with its
repeat count (`FoldTraffic.runs`). A GEMM of 10^8 rows is a handful of runs, not 10^6 pieces or
10^8 folds; the closed form and the cycle engine replicate runs (`systolic_pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from simsparse.archs.systolic_spec import SystolicSpec


@dataclass(frozen=True)
class Pass:
    """One sub-GEMM the array runs: m x n outputs, k_c weight slots fed by k_raw activation columns."""

    label: str                      # "2:8", "dense", ...
    m: int
    n: int
    k_raw: int
    k_c: int
    metadata_bits_per_value: float  # 0 for dense
    stationary_resident: bool = False  # stationary operand already in SRAM (a later temporal piece)


@dataclass(frozen=True)
class FoldTraffic:
    """Per-fold DRAM demand of one pass (bytes; arrays in fold order, in runs) and traffic totals."""

    cycles_per_fold: int
    fill_bytes: np.ndarray          # read from DRAM before the fold can compute
    writeback_bytes: np.ndarray     # written to DRAM after the fold computed
    dram_by_operand: dict           # {"ifmap", "filter", "metadata", "psum", "ofmap"} -> bytes
    sram_read_bytes: float
    sram_write_bytes: float
    metadata_bits_read: float       # index bits read into the array (decoded by the PEs)
    runs: tuple[tuple[int, int], ...]  # (folds, repeat): the arrays cut in blocks in order, each
                                       # block running `repeat` times back to back

    @property
    def folds(self) -> int:
        return sum(n * r for n, r in self.runs)

    @property
    def dram_bytes(self) -> float:
        """Fill plus write-back bytes of every fold (runs counted `repeat` times)."""
        w = run_weights(self.runs)
        return float((self.fill_bytes * w).sum()) + float((self.writeback_bytes * w).sum())

    @property
    def compute_cycles(self) -> int:
        return self.folds * self.cycles_per_fold


def mapping(p: Pass, dataflow: str) -> tuple[int, int, int]:
    """(Sr, Sc, T) of a pass under a dataflow (see module docstring)."""
    if dataflow == "ws":
        return p.k_c, p.n, p.m
    if dataflow == "os":
        return p.m, p.n, p.k_c
    if dataflow == "is":
        return p.k_c, p.m, p.n
    raise ValueError(f"unknown dataflow {dataflow!r}")


def cycles_per_fold(t: int, *, rows: int, cols: int, dataflow: str) -> int:
    """Lines (cycles) one fold takes (module docstring): os overlaps the output drain."""
    return rows + cols + t - 2 + (0 if dataflow == "os" else rows)


def fold_counts(p: Pass, *, rows: int, cols: int, dataflow: str) -> tuple[int, int, int]:
    """(folds along Sr, folds along Sc, cycles per fold)."""
    sr, sc, t = mapping(p, dataflow)
    return -(-sr // rows), -(-sc // cols), cycles_per_fold(t, rows=rows, cols=cols, dataflow=dataflow)


def compute_cycles(p: Pass, *, rows: int, cols: int, dataflow: str) -> int:
    fr, fc, cpf = fold_counts(p, rows=rows, cols=cols, dataflow=dataflow)
    return fr * fc * cpf


def run_weights(runs: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Per explicit fold, how many folds it stands for (its block's repeat count)."""
    return np.repeat(np.array([r for _, r in runs], dtype=np.float64), [n for n, _ in runs])


def temporal_pieces(p: Pass, spec: SystolicSpec, *, dtype_bytes: int) -> list[tuple[Pass, int]]:
    """Split the streamed dimension T of a ws/is pass into pieces whose partial sums fit the output SRAM;
    (piece, repeat) runs in order: equal pieces back to back are one run.

    Each piece is a pass of its own (fill + compute + drain again: cycles_per_fold(t) per
    fold); the stationary operand stays in its SRAM across pieces when all of it fits there,
    otherwise every piece fetches it again. os keeps outputs in the PEs and needs no split.
    The piece length is the better, by a roofline of the tiling (max(compute cycles, DRAM bytes /
    dram_bytes_per_clk)), of two: the longest whose partial sums fit, and the longest whose
    streamed operand also fits its SRAM half (fetched once instead of once per column fold, for
    more fill and drain). Ties go to the longer pieces.
    """
    if spec.dataflow == "os" or not spec.tile_temporal:
        return [(p, 1)]
    sr, sc, t = mapping(p, spec.dataflow)
    mem = spec.memory
    a_b, w_b = _bytes_per_element(p, spec, dtype_bytes)
    strm_b, strm_sram = (a_b, mem.ifmap_sram_bytes) if spec.dataflow == "ws" else (w_b, mem.filter_sram_bytes)
    t_psum = max(1, int(mem.working_bytes(mem.ofmap_sram_bytes) // (spec.cols * spec.accumulator_bytes)))
    t_fit = int(mem.working_bytes(strm_sram) // (sr * strm_b))
    candidates = {min(t, t_psum)} | ({min(t, t_psum, t_fit)} if t_fit >= 1 else set())
    if len(candidates) == 1:
        return _split(p, spec, candidates.pop(), dtype_bytes)
    costs = {length: _roofline(_split(p, spec, length, dtype_bytes), spec, dtype_bytes) for length in candidates}
    return _split(p, spec, min(candidates, key=lambda length: (costs[length], -length)), dtype_bytes)


def _split(p: Pass, spec: SystolicSpec, length: int, dtype_bytes: int) -> list[tuple[Pass, int]]:
    sr, sc, t = mapping(p, spec.dataflow)
    if length >= t:
        return [(p, 1)]
    a_b, w_b = _bytes_per_element(p, spec, dtype_bytes)
    mem = spec.memory
    stat_b, stat_sram = (w_b, mem.filter_sram_bytes) if spec.dataflow == "ws" else (a_b, mem.ifmap_sram_bytes)
    resident = sr * sc * stat_b <= mem.working_bytes(stat_sram)
    count = -(-t // length)
    dim = "m" if spec.dataflow == "ws" else "n"
    sizes = ((length, False, 1), (length, True, count - 2), (t - length * (count - 1), True, 1))
    runs: list[tuple[Pass, int]] = []
    for size, later, repeat in sizes:
        piece = replace(p, **{dim: size}, stationary_resident=resident and later)
        if repeat and runs and runs[-1][0] == piece:
            runs[-1] = (piece, runs[-1][1] + repeat)       # equal pieces back to back: one run
        elif repeat:
            runs.append((piece, repeat))
    return runs


def _roofline(runs: list[tuple[Pass, int]], spec: SystolicSpec, dtype_bytes: int) -> float:
    """max(compute cycles, DRAM bytes / bandwidth) of (pass, repeat) runs."""
    compute = dram = 0.0
    for piece, count in runs:
        tr = fold_traffic(piece, spec, dtype_bytes=dtype_bytes)
        compute += count * tr.compute_cycles
        dram += count * tr.dram_bytes
    return max(compute, dram / spec.memory.dram_bytes_per_clk)


def _chunks(total: int, size: int) -> np.ndarray:
    count = -(-total // size)
    out = np.full(count, size, dtype=np.float64)
    out[-1] = total - size * (count - 1)
    return out


def _outer_chunks(total: int, size: int, *, runs: bool) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The outer fold loop's chunks (sizes, is-first, repeat of each kept chunk). With `runs` the
    chunks between the first and the last (equal: they move equal bytes) are kept once."""
    sizes = _chunks(total, size)
    repeat = [1] * sizes.size
    if runs and sizes.size > 3:
        sizes, repeat = sizes[[0, 1, -1]], [1, sizes.size - 2, 1]
    return sizes, np.arange(sizes.size) == 0, repeat


def _fold_runs(block: int, repeat: list[int]) -> tuple[tuple[int, int], ...]:
    """Runs of `block` folds per kept outer chunk; chunks that run once are merged."""
    out: list[tuple[int, int]] = []
    for r in repeat:
        if out and r == 1 and out[-1][1] == 1:
            out[-1] = (out[-1][0] + block, 1)
        else:
            out.append((block, r))
    return tuple(out)


def _bytes_per_element(p: Pass, spec: SystolicSpec, dtype_bytes: int) -> tuple[float, float]:
    """(activation bytes per compressed-k slot, weight bytes per kept value incl. metadata)."""
    raw_per_slot = p.k_raw / p.k_c
    return dtype_bytes * raw_per_slot, dtype_bytes + p.metadata_bits_per_value / 8.0


def fold_traffic(p: Pass, spec: SystolicSpec, *, dtype_bytes: int) -> FoldTraffic:
    """Per-fold DRAM fills/write-backs and SRAM totals of one pass on this array."""
    if spec.dataflow == "os":
        return _traffic_os(p, spec, dtype_bytes)
    return _traffic_stationary(p, spec, dtype_bytes)


def _traffic_stationary(p: Pass, spec: SystolicSpec, dtype_bytes: int) -> FoldTraffic:
    """ws (W resident, A streams) and is (A resident, W streams): same loop, roles swapped."""
    mem, acc = spec.memory, spec.accumulator_bytes
    sr, sc, t = mapping(p, spec.dataflow)
    a_b, w_b = _bytes_per_element(p, spec, dtype_bytes)
    meta_b = p.metadata_bits_per_value / 8.0
    if spec.dataflow == "ws":
        stat_b, strm_b, strm_sram = w_b, a_b, mem.ifmap_sram_bytes
    else:
        stat_b, strm_b, strm_sram = a_b, w_b, mem.filter_sram_bytes
    sr_sz = _chunks(sr, spec.rows)
    sc_sz, first_cc, c_rep = _outer_chunks(sc, spec.cols, runs=spec.dataflow == "is")   # is: Sc = m
    fr, fc, kept = sr_sz.size, -(-sc // spec.cols), sc_sz.size
    r_sz, c_sz = np.tile(sr_sz, kept), np.repeat(sc_sz, fr)      # fold order: c outer, r inner
    first_r = np.tile(np.arange(fr) == 0, kept)
    last_r = np.tile(np.arange(fr) == fr - 1, kept)
    first_c = np.repeat(first_cc, fr)
    runs = _fold_runs(fr, c_rep)
    wt = run_weights(runs)
    strm_fits = t * sr * strm_b <= mem.working_bytes(strm_sram)
    psum_fits = t * spec.cols * acc <= mem.working_bytes(mem.ofmap_sram_bytes)
    stat_read = r_sz * c_sz * stat_b
    stat = stat_read * (0.0 if p.stationary_resident else 1.0)
    strm = t * r_sz * strm_b * (first_c if strm_fits else 1.0)
    psum_in = np.zeros_like(stat) if psum_fits else t * c_sz * acc * ~first_r
    psum_out = np.zeros_like(stat) if psum_fits else t * c_sz * acc * ~last_r
    out = t * c_sz * dtype_bytes * last_r
    fill, wb = stat + strm + psum_in, out + psum_out
    w_dram, a_dram = (stat, strm) if spec.dataflow == "ws" else (strm, stat)
    meta_dram = float((w_dram * wt).sum()) * meta_b / w_b
    sram_read = ((stat_read * wt).sum() + (t * r_sz * strm_b * wt).sum() + (t * c_sz * acc * ~first_r * wt).sum()
                 + (wb * wt).sum())
    sram_write = (fill * wt).sum() + (t * c_sz * acc * wt).sum()
    meta_read_scale = 1.0 if spec.dataflow == "ws" else float(fc)  # is re-streams W per Sc chunk
    return FoldTraffic(
        cycles_per_fold=cycles_per_fold(t, rows=spec.rows, cols=spec.cols, dataflow=spec.dataflow),
        fill_bytes=fill, writeback_bytes=wb,
        dram_by_operand={"ifmap": float((a_dram * wt).sum()), "filter": float((w_dram * wt).sum()) - meta_dram,
                         "metadata": meta_dram, "psum": float((psum_in * wt).sum() + (psum_out * wt).sum()),
                         "ofmap": float((out * wt).sum())},
        sram_read_bytes=float(sram_read), sram_write_bytes=float(sram_write),
        metadata_bits_read=p.n * p.k_c * p.metadata_bits_per_value * meta_read_scale, runs=runs,
    )


def _traffic_os(p: Pass, spec: SystolicSpec, dtype_bytes: int) -> FoldTraffic:
    """os: outputs resident; A (rows x T) and W (T x cols) stream in; outputs leave every fold."""
    mem = spec.memory
    sr, sc, t = mapping(p, "os")
    a_b, w_b = _bytes_per_element(p, spec, dtype_bytes)
    meta_b = p.metadata_bits_per_value / 8.0
    sr_sz, first_rr, r_rep = _outer_chunks(sr, spec.rows, runs=True)                    # os: Sr = m
    sc_sz = _chunks(sc, spec.cols)
    fr, fc, kept = -(-sr // spec.rows), sc_sz.size, sr_sz.size
    r_sz, c_sz = np.repeat(sr_sz, fc), np.tile(sc_sz, kept)      # fold order: r outer, c inner
    first_r = np.repeat(first_rr, fc)
    first_c = np.tile(np.arange(fc) == 0, kept)
    runs = _fold_runs(fc, r_rep)
    wt = run_weights(runs)
    a_fits = spec.rows * t * a_b <= mem.working_bytes(mem.ifmap_sram_bytes)
    w_fits = t * sc * w_b <= mem.working_bytes(mem.filter_sram_bytes)
    a = r_sz * t * a_b * (first_c if a_fits else 1.0)
    w = t * c_sz * w_b * (first_r if w_fits else 1.0)
    out = r_sz * c_sz * dtype_bytes
    fill, wb = a + w, out
    meta_dram = float((w * wt).sum()) * meta_b / w_b
    sram_read = (r_sz * t * a_b * wt).sum() + (t * c_sz * w_b * wt).sum() + (wb * wt).sum()
    sram_write = (fill * wt).sum() + (out * wt).sum()
    return FoldTraffic(
        cycles_per_fold=cycles_per_fold(t, rows=spec.rows, cols=spec.cols, dataflow="os"),
        fill_bytes=fill, writeback_bytes=wb,
        dram_by_operand={"ifmap": float((a * wt).sum()), "filter": float((w * wt).sum()) - meta_dram,
                         "metadata": meta_dram, "psum": 0.0, "ofmap": float((out * wt).sum())},
        sram_read_bytes=float(sram_read), sram_write_bytes=float(sram_write),
        metadata_bits_read=p.n * p.k_c * p.metadata_bits_per_value * fr, runs=runs,
    )
