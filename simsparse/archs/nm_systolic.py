"""`kind: nm_systolic` — a configurable N:M systolic-array accelerator (planning, no timing).

A rows x cols array (dataflow ws, os or is) with N:M weight compression along the reduction
axis, optional VEGETA-style row-wise N:M, double-buffered input/filter/output SRAMs, a DRAM
interface in bytes per clock, metadata bits per kept value and a per-action energy table.
The spec schema is in `systolic_spec`, fold arithmetic and traffic in `systolic_folds`, the
pattern choice in `systolic_patterns` (ranked by the closed form of `systolic_pipeline`, pure
archs math); engines: `engines.systolic_analytic` (closed form) and `engines.systolic_event`
(simpy, fold by fold), both reading the typed payload `SystolicPlan`.

Non-GEMM ops (LayerWork kind "memory": norms, pooling, element-wise, softmax) run on the
accelerator's vector unit, streaming their bytes from/to DRAM: time = max(bytes / DRAM
bytes-per-clock, elements / vector elements-per-clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from simsparse.archs import ARCH_KINDS, ArchModel
from simsparse.archs.systolic_folds import FoldTraffic, Pass, fold_counts, fold_traffic, temporal_pieces
from simsparse.archs.systolic_patterns import Choice, choose, dense_choice
from simsparse.archs.systolic_pipeline import closed_form, fold_stream
from simsparse.archs.systolic_spec import SystolicSpec, spec_from_data
from simsparse.errors import GeometryError
from simsparse.records import ExecutionPlan, Gemm, LayerWork
from simsparse.units import dtype_bytes

KIND = "nm_systolic"


@dataclass(frozen=True, eq=False)
class PlannedPass:
    """One piece the array runs: a pass (or one temporal piece of it) and its per-fold traffic."""

    work: Pass
    folds_r: int                 # folds along Sr
    folds_c: int                 # folds along Sc
    traffic: FoldTraffic         # per-fold DRAM fill / write-back bytes, SRAM totals, cycles per fold


@dataclass(frozen=True, eq=False)
class SystolicPlan:
    """Payload of an `nm_systolic` plan. The pieces are one of the layer's `count` identical GEMMs
    (engines time it once and multiply); the totals cover all `count`. A non-GEMM op has no
    pieces and `vector_elements` elements for the vector unit."""

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
        if dense or work.pattern is None:
            choice = dense_choice(work)
        else:
            choice = choose(work, self.spec, nnz=nnz, cost=lambda c: self._cycles(work, c, nnz=nnz))
        return self._plan_gemm(work, choice, nnz=nnz)

    # ------------------------------------------------------------------ helpers

    def _cycles(self, work: LayerWork, choice: Choice, *, nnz: float) -> float:
        """Closed-form cycles (stalls included) of one repeat of `work` run in `choice`."""
        pieces = self._plan_gemm(work, choice, nnz=nnz).payload.pieces
        stream = fold_stream([p.traffic for p in pieces], dram_bytes_per_clk=self.spec.memory.dram_bytes_per_clk)
        return closed_form(stream, double_buffered=self.spec.memory.double_buffered).cycles

    def _plan_gemm(self, work: LayerWork, choice: Choice, *, nnz: float) -> ExecutionPlan[SystolicPlan]:
        g, s = work.gemm, self.spec
        b = dtype_bytes(g.dtype)
        pieces = []
        for q in (q for p in choice.passes for q in temporal_pieces(p, s, dtype_bytes=b)):
            fr, fc, _ = fold_counts(q, rows=s.rows, cols=s.cols, dataflow=s.dataflow)
            pieces.append(PlannedPass(work=q, folds_r=fr, folds_c=fc, traffic=fold_traffic(q, s, dtype_bytes=b)))
        dram_by_operand: dict[str, float] = {}
        for p in pieces:
            for op, v in p.traffic.dram_by_operand.items():
                dram_by_operand[op] = dram_by_operand.get(op, 0.0) + v * g.count
        sram_read = sum(p.traffic.sram_read_bytes for p in pieces) * g.count
        sram_write = sum(p.traffic.sram_write_bytes for p in pieces) * g.count
        slots = choice.weight_slots
        notes = choice.notes
        if g.dtype not in s.dtypes:
            notes += (f"{s.name} computes in {', '.join(s.dtypes)}; bytes counted at {g.dtype}",)
        padded_k = sum(p.k_c for p in choice.passes) if len(choice.passes) == 1 else g.k
        payload = SystolicPlan(
            pieces=tuple(pieces), count=g.count, nnz=nnz, weight_slots=slots, dram_bytes_by_operand=dram_by_operand,
            sram_read_bytes=sram_read, sram_write_bytes=sram_write,
            metadata_bits_read=sum(p.traffic.metadata_bits_read for p in pieces) * g.count,
            compute_cycles=sum(p.traffic.compute_cycles for p in pieces) * g.count,
            folds=sum(p.traffic.folds for p in pieces) * g.count)
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format=choice.label, gemm=g,
            padded=Gemm(m=g.m, n=g.n, k=padded_k, dtype=g.dtype, count=g.count),
            macs_dense=g.macs, macs_effective=g.m * nnz * g.count, macs_issued=g.m * slots * g.count,
            bytes_by_level={"dram": sum(dram_by_operand.values()), "sram": sram_read + sram_write},
            metadata_bytes=dram_by_operand.get("metadata", 0.0), payload=payload, notes=notes)

    def _plan_memory(self, work: LayerWork) -> ExecutionPlan[SystolicPlan]:
        payload = SystolicPlan(pieces=(), count=1, nnz=0.0, weight_slots=0, dram_bytes_by_operand={},
                               sram_read_bytes=0.0, sram_write_bytes=0.0, metadata_bits_read=0.0,
                               compute_cycles=0, folds=0, vector_elements=work.elements)
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format="memory", gemm=None, padded=None,
            macs_dense=0, macs_effective=0, macs_issued=0,
            bytes_by_level={"dram": float(work.bytes_moved), "sram": 0.0}, metadata_bytes=0.0, payload=payload,
            notes=(f"{work.op_kind} on the vector unit, streamed from DRAM",))


def _nnz_per_repeat(work: LayerWork) -> float:
    """Nonzeros of one of the `count` GEMMs (a grouped conv's mask stacks all groups' rows)."""
    g = work.gemm
    stacked = work.pattern is not None and g.count > 1 and work.pattern.rows == g.n * g.count
    return work.nnz / g.count if stacked else work.nnz
