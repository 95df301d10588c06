"""`kind: nm_systolic` — a configurable N:M systolic-array accelerator (planning, no timing).

A rows x cols array (dataflow ws, os or is) with N:M weight compression along the reduction
axis, optional VEGETA-style row-wise N:M, double-buffered input/filter/output SRAMs, a DRAM
interface in bytes per clock, metadata bits per kept value and a per-action energy table.
The spec schema is in `systolic_spec`, fold arithmetic and traffic in `systolic_folds`, the
pattern choice in `systolic_patterns` (ranked by the closed form of `systolic_pipeline`, pure
archs math, or under `memory.reuse: scalesim` by `systolic_memory`'s SCALE-Sim scratchpads);
engines: `engines.systolic_analytic` (closed form) and `engines.systolic_event` (simpy, fold by
fold; `systolic_scratchpad_event` under scalesim), all reading the typed payload `SystolicPlan`.

Non-GEMM ops (LayerWork kind "memory": norms, pooling, element-wise, softmax) run on the
accelerator's vector unit, streaming their bytes from/to DRAM: time = max(bytes / DRAM
bytes-per-clock, elements / vector elements-per-clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from simsparse.archs import ARCH_KINDS, ArchModel
from simsparse.archs.systolic_folds import FoldTraffic, Pass, fold_counts, fold_traffic, temporal_pieces
from simsparse.archs.systolic_memory import (ScalesimPass, ScalesimTiming, pass_timing, pass_traffic, plan_pass,
                                             total_timing)
from simsparse.archs.systolic_patterns import Choice, choose, dense_choice
from simsparse.archs.systolic_pipeline import FoldStream, closed_form, fold_stream
from simsparse.archs.systolic_spec import SystolicSpec, spec_from_data
from simsparse.errors import GeometryError
from simsparse.records import ExecutionPlan, Gemm, LayerWork
from simsparse.units import dtype_bytes

KIND = "nm_systolic"


@dataclass(frozen=True, eq=False)
class PlannedPass:
    """One piece the array runs `repeat` times back to back: a pass (or one temporal piece of it)
    and its per-fold traffic. `folds` and `compute_cycles` are those of one run of the piece."""

    work: Pass
    repeat: int                  # equal temporal pieces back to back (systolic_folds.temporal_pieces)
    folds_r: int                 # folds along Sr
    folds_c: int                 # folds along Sc
    cycles_per_fold: int         # fill + compute + drain of one fold (systolic_folds.cycles_per_fold)
    traffic: FoldTraffic | None  # ideal-tiling: per-fold DRAM fill / write-back bytes, SRAM totals;
                                 # None under memory.reuse: scalesim (SystolicPlan.scalesim times it)

    @property
    def folds(self) -> int:
        return self.folds_r * self.folds_c

    @property
    def compute_cycles(self) -> int:
        return self.folds * self.cycles_per_fold


@dataclass(frozen=True, eq=False)
class SystolicPlan:
    """Payload of an `nm_systolic` plan. The pieces are one of the layer's `count` identical GEMMs
    (engines time it once and multiply); the totals cover all `count`. A non-GEMM op has no
    pieces and `vector_elements` elements for the vector unit. Under `memory.reuse: scalesim`
    `scalesim` holds each piece mapped onto SCALE-Sim's scratchpads (`systolic_memory`), which the
    engines time instead of the pieces' fold traffic, and the byte totals are its traffic."""

    pieces: tuple[PlannedPass, ...]
    count: int
    nnz: float                                   # nonzeros of one GEMM
    weight_slots: int                            # weight positions the array holds for one GEMM (>= nnz)
    dram_bytes_by_operand: Mapping[str, float]   # ifmap, filter, metadata, psum, ofmap
    sram_read_bytes: float
    sram_write_bytes: float
    metadata_bits_read: float                    # index bits read into the array (decoded by the PEs)
    compute_cycles: int                          # fill + compute + drain of every fold, no stalls
    folds: int
    vector_elements: int = 0
    scalesim: tuple[ScalesimPass, ...] = ()      # memory.reuse: scalesim — one per piece; () under ideal-tiling

    @property
    def wasted_slots(self) -> float:
        """Weight slots that hold zeros (a looser pattern than the mask needs)."""
        return self.weight_slots - self.nnz


@ARCH_KINDS.register(KIND)
class NmSystolic(ArchModel):
    kind = KIND
    kernels = ()
    unstructured = False       # N:M patterns only (row-wise N:M at most); anything else runs dense
    engines_agree_rel = 0.01   # closed form vs simpy (tests/test_systolic_engines.py)
    spec: SystolicSpec

    parse_spec = staticmethod(spec_from_data)

    def default_dtype(self) -> str:
        return self.spec.dtypes[0]

    def supported_dtypes(self) -> tuple[str, ...]:
        return self.spec.dtypes

    def plan(self, work: LayerWork, *, dense: bool = False,
             kernel: str | None = None) -> ExecutionPlan[SystolicPlan]:
        self.check_kernel(kernel)
        if work.kind == "memory":
            return self._plan_memory(work)
        if work.kind != "gemm" or work.gemm is None:
            raise GeometryError(f"layer {work.name}: kind {work.kind!r} is not runnable on {self.name}; "
                                "expected a 'gemm' (with its Gemm) or a 'memory' layer")
        nnz = _nnz_per_repeat(work)
        payloads: dict[tuple[Pass, ...], SystolicPlan] = {}          # each candidate planned once

        def payload(c: Choice) -> SystolicPlan:
            if c.passes not in payloads:
                payloads[c.passes] = self._payload(work, c, nnz=nnz)
            return payloads[c.passes]

        if dense or work.pattern is None:
            choice = dense_choice(work)
        else:
            choice = choose(work, self.spec, nnz=nnz, cost=lambda c: self._cycles(payload(c)))
        return self._plan_gemm(work, choice, payload(choice))

    def plan_format(self, work: LayerWork, label: str) -> ExecutionPlan[SystolicPlan]:
        """Plan a GEMM layer in one named format ("dense", "2:4", "row-wise:4"), not the fastest:
        for comparisons with a tool that is told the format (benchmarks/bench_vs_scalesim.py)."""
        nnz = _nnz_per_repeat(work)
        choice = dense_choice(work) if work.pattern is None else choose(work, self.spec, nnz=nnz,
                                                                         cost=lambda c: c.label != label)
        if choice.label != label:
            raise GeometryError(f"layer {work.name}: format {label!r} cannot run this mask on {self.name}; "
                                f"it runs {choice.label!r}")
        return self._plan_gemm(work, choice, self._payload(work, choice, nnz=nnz))

    # ------------------------------------------------------------------ helpers

    def _cycles(self, payload: SystolicPlan) -> float:
        """Closed-form cycles (stalls included) of one repeat of a planned GEMM."""
        if payload.scalesim:                     # memory.reuse: scalesim (systolic_memory)
            return scalesim_timing(payload).cycles
        return closed_form(payload_stream(payload, self.spec), double_buffered=self.spec.memory.double_buffered).cycles

    def _payload(self, work: LayerWork, choice: Choice, *, nnz: float) -> SystolicPlan:
        g, s = work.gemm, self.spec
        b = dtype_bytes(g.dtype)
        ideal = s.memory.reuse == "ideal-tiling"                      # else scalesim (systolic_spec)
        pieces = []
        for q, repeat in (run for p in choice.passes for run in temporal_pieces(p, s, dtype_bytes=b)):
            fr, fc, cpf = fold_counts(q, rows=s.rows, cols=s.cols, dataflow=s.dataflow)
            pieces.append(PlannedPass(work=q, repeat=repeat, folds_r=fr, folds_c=fc, cycles_per_fold=cpf,
                                      traffic=fold_traffic(q, s, dtype_bytes=b) if ideal else None))
        # scalesim runs T untiled (tile_temporal off, systolic_spec): every piece runs once
        scalesim = () if ideal else tuple(plan_pass(p.work, s, dtype_bytes=b) for p in pieces)
        traffic = [(p.traffic, p.repeat) for p in pieces] if ideal else [(pass_traffic(sp), 1) for sp in scalesim]
        dram_by_operand: dict[str, float] = {}
        for t, r in traffic:
            for op, v in t.dram_by_operand.items():
                dram_by_operand[op] = dram_by_operand.get(op, 0.0) + v * r * g.count
        sram_read = sum(t.sram_read_bytes * r for t, r in traffic) * g.count
        sram_write = sum(t.sram_write_bytes * r for t, r in traffic) * g.count
        return SystolicPlan(
            pieces=tuple(pieces), count=g.count, nnz=nnz, weight_slots=choice.weight_slots,
            dram_bytes_by_operand=dram_by_operand,
            sram_read_bytes=sram_read, sram_write_bytes=sram_write,
            metadata_bits_read=sum(t.metadata_bits_read * r for t, r in traffic) * g.count,
            compute_cycles=sum(p.compute_cycles * p.repeat for p in pieces) * g.count,
            folds=sum(p.folds * p.repeat for p in pieces) * g.count, scalesim=scalesim)

    def _plan_gemm(self, work: LayerWork, choice: Choice, payload: SystolicPlan) -> ExecutionPlan[SystolicPlan]:
        g, s = work.gemm, self.spec
        notes = choice.notes + (_memory_note(s, dtype_bytes(g.dtype)),)
        if g.dtype not in s.dtypes:
            notes += (f"{s.name} computes in {', '.join(s.dtypes)}; bytes counted at {g.dtype}",)
        padded_k = sum(p.k_c for p in choice.passes) if len(choice.passes) == 1 else g.k
        ops = payload.dram_bytes_by_operand
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format=choice.label, gemm=g,
            padded=Gemm(m=g.m, n=g.n, k=padded_k, dtype=g.dtype, count=g.count),
            macs_dense=g.macs, macs_effective=g.m * payload.nnz * g.count,
            macs_issued=g.m * payload.weight_slots * g.count,
            bytes_by_level={"dram": sum(ops.values()), "sram": payload.sram_read_bytes + payload.sram_write_bytes},
            metadata_bytes=ops.get("metadata", 0.0), payload=payload, notes=notes)

    def _plan_memory(self, work: LayerWork) -> ExecutionPlan[SystolicPlan]:
        payload = SystolicPlan(pieces=(), count=1, nnz=0.0, weight_slots=0, dram_bytes_by_operand={},
                               sram_read_bytes=0.0, sram_write_bytes=0.0, metadata_bits_read=0.0,
                               compute_cycles=0, folds=0, vector_elements=work.elements)
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format="memory", gemm=None, padded=None,
            macs_dense=0, macs_effective=0, macs_issued=0,
            bytes_by_level={"dram": float(work.bytes_moved), "sram": 0.0}, metadata_bytes=0.0, payload=payload,
            notes=(f"{work.op_kind} on the vector unit, streamed from DRAM",))


def payload_stream(payload: SystolicPlan, spec: SystolicSpec) -> FoldStream:
    """The fold stream of one repeat of a planned GEMM on the array's DRAM interface (ideal-tiling)."""
    return fold_stream([(p.traffic, p.repeat) for p in payload.pieces], dram_bytes_per_clk=spec.memory.dram_bytes_per_clk)


def scalesim_timing(payload: SystolicPlan) -> ScalesimTiming:
    """SCALE-Sim scratchpad timing of one repeat of a planned GEMM (memory.reuse: scalesim)."""
    return total_timing([pass_timing(sp) for sp in payload.scalesim])


def _memory_note(s: SystolicSpec, dtype_bytes: int) -> str:
    """Which memory system timed the layer (spec `memory.reuse`), with its DRAM interface."""
    bw = s.memory.dram_bytes_per_clk
    if s.memory.reuse == "ideal-tiling":
        return f"memory: ideal tiling, one {bw:g} B/clk DRAM interface"
    words = bw / dtype_bytes
    rounded = "" if words == int(words) else f" ({bw:g} B/clk rounded down to whole words)"
    return f"memory: SCALE-Sim v3 scratchpads, 3 DRAM ports x {int(words)} words/clk{rounded}"


def _nnz_per_repeat(work: LayerWork) -> float:
    """Nonzeros of one of the `count` GEMMs (a grouped conv's mask stacks all groups' rows)."""
    return work.nnz_per_gemm
