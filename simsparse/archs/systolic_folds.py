"""Fold arithmetic and per-fold memory traffic of an N:M systolic array (no timing policy).

Compute timing follows SCALE-Sim (Samajdar et al., "A Systematic Methodology for Characterizing
Scalability of DNN Accelerators using SCALE-Sim", ISPASS 2020): an operand mapped onto the
rows x cols array spans Sr x Sc (spatial) and streams for T cycles (temporal); a fold is one
array-sized piece of Sr x Sc, and each fold costs fill + compute + drain:

    folds            = ceil(Sr / rows) * ceil(Sc / cols)
    cycles_per_fold  = 2*rows + cols + T - 2          (partial folds cost the same: the array is fixed)

Mapping of C[m, n] = A[m, k] . W[n, k]^T (k = reduction, compressed to k_c = ceil(k*N/M)):

    ws (weight stationary): (Sr, Sc, T) = (k_c, n, m)  W tile resident, A streams, psums drain down
    os (output stationary): (Sr, Sc, T) = (m, n, k_c)  C tile resident, A and W stream in
    is (input stationary):  (Sr, Sc, T) = (k_c, m, n)  A tile resident, W streams, psums drain down

N:M hardware keeps only the k_c compressed weights (+ index metadata) in the array; each PE
selects its input from the M candidates of its group with the index (as in S2TA / NVIDIA's
sparse tensor cores), so activation traffic is counted at the raw k, never compressed.

Fold order and reuse (double-buffered SRAMs: the tile in use owns half of each SRAM):
  ws/is: outer loop over Sc chunks, inner over Sr chunks. The stationary tile is fetched once;
         the streamed operand (T x Sr) is fetched once if it fits its SRAM half, else per Sc
         chunk; partial sums (T x cols, accumulator width) stay in the output SRAM across the
         Sr chunks if they fit, else spill to DRAM and are read back (write + read per fold).
         Finished outputs go to DRAM after the last Sr chunk. With `array.tile_temporal` (the
         default) T is first split into pieces whose partial sums fit the output SRAM half
         (`temporal_pieces`): each piece repeats fill + drain, so compute cycles exceed the
         single-piece equation by (2*rows + cols - 2) per extra piece and fold, but partial
         sums never spill. `tile_temporal: false` is SCALE-Sim's order exactly.
  os:    outer loop over Sr (m) chunks, inner over Sc (n) chunks. The A chunk (rows x T) is
         fetched once per Sr chunk if it fits, else per fold; W (T x n) once if it fits its
         SRAM half, else per fold; outputs (rows x cols) go to DRAM after every fold.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from simsparse.archs.systolic_spec import SystolicSpec


@dataclass(frozen=True)
class Pass:
    """One sub-GEMM the array runs: m x n outputs over k_raw inputs compressed to k_c slots."""

    label: str                      # "2:8", "dense", ...
    m: int
    n: int
    k_raw: int
    k_c: int
    metadata_bits_per_value: float  # 0 for dense
    stationary_resident: bool = False  # stationary operand already in SRAM (a later temporal piece)


@dataclass(frozen=True)
class FoldTraffic:
    """Per-fold DRAM demand of one pass (bytes; arrays in fold order) and traffic totals."""

    cycles_per_fold: int
    fill_bytes: np.ndarray          # read from DRAM before the fold can compute
    writeback_bytes: np.ndarray     # written to DRAM after the fold computed
    dram_by_operand: dict           # {"ifmap", "filter", "metadata", "psum", "ofmap"} -> bytes
    sram_read_bytes: float
    sram_write_bytes: float
    metadata_bits_read: float       # index bits read into the array (decoded by the PEs)

    @property
    def folds(self) -> int:
        return int(self.fill_bytes.size)

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


def fold_counts(p: Pass, *, rows: int, cols: int, dataflow: str) -> tuple[int, int, int]:
    """(folds along Sr, folds along Sc, cycles per fold)."""
    sr, sc, t = mapping(p, dataflow)
    return -(-sr // rows), -(-sc // cols), 2 * rows + cols + t - 2


def compute_cycles(p: Pass, *, rows: int, cols: int, dataflow: str) -> int:
    fr, fc, cpf = fold_counts(p, rows=rows, cols=cols, dataflow=dataflow)
    return fr * fc * cpf


def temporal_pieces(p: Pass, spec: SystolicSpec, *, dtype_bytes: int) -> list[Pass]:
    """Split the streamed dimension T of a ws/is pass so its partial sums fit the output SRAM.

    Each piece is a pass of its own (fill + compute + drain again: 2*rows + cols + t - 2 per
    fold); the stationary operand stays in its SRAM across pieces when all of it fits there,
    otherwise every piece fetches it again. os keeps outputs in the PEs and needs no split.
    """
    if spec.dataflow == "os" or not spec.tile_temporal:
        return [p]
    sr, sc, t = mapping(p, spec.dataflow)
    mem = spec.memory
    t_max = max(1, int(mem.working_bytes(mem.ofmap_sram_bytes) // (spec.cols * spec.accumulator_bytes)))
    if t <= t_max:
        return [p]
    a_b, w_b = _bytes_per_element(p, spec, dtype_bytes)
    stat_b, stat_sram = (w_b, mem.filter_sram_bytes) if spec.dataflow == "ws" else (a_b, mem.ifmap_sram_bytes)
    resident = sr * sc * stat_b <= mem.working_bytes(stat_sram)
    pieces = []
    for i, size in enumerate(_chunks(t, t_max).astype(int).tolist()):
        dims = {"m": size} if spec.dataflow == "ws" else {"n": size}
        pieces.append(replace(p, **dims, stationary_resident=resident and i > 0))
    return pieces


def _chunks(total: int, size: int) -> np.ndarray:
    count = -(-total // size)
    out = np.full(count, size, dtype=np.float64)
    out[-1] = total - size * (count - 1)
    return out


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
    sr_sz, sc_sz = _chunks(sr, spec.rows), _chunks(sc, spec.cols)
    fr, fc = sr_sz.size, sc_sz.size
    r_sz, c_sz = np.tile(sr_sz, fc), np.repeat(sc_sz, fr)        # fold order: c outer, r inner
    first_r = np.tile(np.arange(fr) == 0, fc)
    last_r = np.tile(np.arange(fr) == fr - 1, fc)
    first_c = np.repeat(np.arange(fc) == 0, fr)
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
    meta_dram = float(w_dram.sum()) * meta_b / w_b
    sram_read = (stat_read.sum() + (t * r_sz * strm_b).sum() + (t * c_sz * acc * ~first_r).sum() + wb.sum())
    sram_write = fill.sum() + (t * c_sz * acc).sum()
    meta_read_scale = 1.0 if spec.dataflow == "ws" else float(fc)  # is re-streams W per Sc chunk
    return FoldTraffic(
        cycles_per_fold=2 * spec.rows + spec.cols + t - 2, fill_bytes=fill, writeback_bytes=wb,
        dram_by_operand={"ifmap": float(a_dram.sum()), "filter": float(w_dram.sum()) - meta_dram,
                         "metadata": meta_dram, "psum": float(psum_in.sum() + psum_out.sum()),
                         "ofmap": float(out.sum())},
        sram_read_bytes=float(sram_read), sram_write_bytes=float(sram_write),
        metadata_bits_read=p.n * p.k_c * p.metadata_bits_per_value * meta_read_scale,
    )


def _traffic_os(p: Pass, spec: SystolicSpec, dtype_bytes: int) -> FoldTraffic:
    """os: outputs resident; A (rows x T) and W (T x cols) stream in; outputs leave every fold."""
    mem = spec.memory
    sr, sc, t = mapping(p, "os")
    a_b, w_b = _bytes_per_element(p, spec, dtype_bytes)
    meta_b = p.metadata_bits_per_value / 8.0
    sr_sz, sc_sz = _chunks(sr, spec.rows), _chunks(sc, spec.cols)
    fr, fc = sr_sz.size, sc_sz.size
    r_sz, c_sz = np.repeat(sr_sz, fc), np.tile(sc_sz, fr)        # fold order: r outer, c inner
    first_r = np.repeat(np.arange(fr) == 0, fc)
    first_c = np.tile(np.arange(fc) == 0, fr)
    a_fits = spec.rows * t * a_b <= mem.working_bytes(mem.ifmap_sram_bytes)
    w_fits = t * sc * w_b <= mem.working_bytes(mem.filter_sram_bytes)
    a = r_sz * t * a_b * (first_c if a_fits else 1.0)
    w = t * c_sz * w_b * (first_r if w_fits else 1.0)
    out = r_sz * c_sz * dtype_bytes
    fill, wb = a + w, out
    meta_dram = float(w.sum()) * meta_b / w_b
    sram_read = (r_sz * t * a_b).sum() + (t * c_sz * w_b).sum() + wb.sum()
    sram_write = fill.sum() + out.sum()
    return FoldTraffic(
        cycles_per_fold=2 * spec.rows + spec.cols + t - 2, fill_bytes=fill, writeback_bytes=wb,
        dram_by_operand={"ifmap": float(a.sum()), "filter": float(w.sum()) - meta_dram, "metadata": meta_dram,
                         "psum": 0.0, "ofmap": float(out.sum())},
        sram_read_bytes=float(sram_read), sram_write_bytes=float(sram_write),
        metadata_bits_read=p.n * p.k_c * p.metadata_bits_per_value * fr,
    )
