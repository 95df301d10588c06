"""`kind: nm_systolic` — a configurable N:M systolic-array accelerator (planning, no timing).

A rows x cols array (dataflow ws, os or is) with N:M weight compression along the reduction
axis, optional VEGETA-style row-wise N:M, double-buffered input/filter/output SRAMs, a DRAM
interface in bytes per clock, metadata bits per kept value and a per-action energy table.
The spec schema is in `systolic_spec`, fold arithmetic and traffic in `systolic_folds`, the
pattern choice in `systolic_patterns`; engines: `engines.systolic_analytic` (closed form) and
`engines.systolic_event` (simpy, fold by fold).

Non-GEMM ops (LayerWork kind "memory": norms, pooling, element-wise, softmax) run on the
accelerator's vector unit, streaming their bytes from/to DRAM: time = max(bytes / DRAM
bytes-per-clock, elements / vector elements-per-clock).
"""

from __future__ import annotations

from simsparse.archs import ARCH_KINDS, ArchModel
from simsparse.archs.systolic_folds import FoldTraffic, Pass, fold_counts, fold_traffic, temporal_pieces
from simsparse.archs.systolic_memory import pass_traffic, plan_pass
from simsparse.archs.systolic_patterns import Choice, choose, dense_choice
from simsparse.archs.systolic_spec import SystolicSpec, spec_from_data
from simsparse.errors import GeometryError
from simsparse.records import ExecutionPlan, LayerWork
from simsparse.units import dtype_bytes

KIND = "nm_systolic"


@ARCH_KINDS.register(KIND)
class NmSystolic(ArchModel):
    kind = KIND
    spec: SystolicSpec

    parse_spec = staticmethod(spec_from_data)

    def default_dtype(self) -> str:
        return self.spec.dtypes[0]

    def supported_dtypes(self) -> tuple[str, ...]:
        return self.spec.dtypes

    def plan(self, work: LayerWork, *, dense: bool = False) -> ExecutionPlan:
        if work.kind == "memory":
            return self._plan_memory(work)
        if work.kind != "gemm" or work.gemm is None:
            raise GeometryError(f"layer {work.name}: kind {work.kind!r} is not runnable on {self.name}; "
                                "expected a 'gemm' (with its Gemm) or a 'memory' layer")
        nnz = _nnz_per_repeat(work)
        if dense or work.mask is None:
            choice = dense_choice(work)
        else:
            choice = choose(work, self.spec, nnz=nnz, cost=lambda c: self._cycles(work, c, nnz=nnz))
        return self._plan_gemm(work, choice, nnz=nnz)

    def plan_format(self, work: LayerWork, label: str) -> ExecutionPlan:
        """Plan a GEMM layer in one named format ("dense", "2:4", "row-wise:4"), not the fastest:
        for comparisons with a tool that is told the format (benchmarks/bench_vs_scalesim.py)."""
        nnz = _nnz_per_repeat(work)
        choice = dense_choice(work) if work.mask is None else choose(work, self.spec, nnz=nnz,
                                                                      cost=lambda c: c.label != label)
        if choice.label != label:
            raise GeometryError(f"layer {work.name}: format {label!r} cannot run this mask on {self.name}; "
                                f"it runs {choice.label!r}")
        return self._plan_gemm(work, choice, nnz=nnz)

    # ------------------------------------------------------------------ helpers

    def _cycles(self, work: LayerWork, choice: Choice, *, nnz: float) -> float:
        """Closed-form total cycles (stalls included) of running `work` in `choice`."""
        from simsparse.engines.systolic_analytic import analytic_timing

        return analytic_timing(self._plan_gemm(work, choice, nnz=nnz), self).cycles

    def traffic(self, plan: ExecutionPlan) -> list[FoldTraffic]:
        """Per-pass fold traffic of a GEMM plan (what the engines time)."""
        b = plan.details["dtype_bytes"]
        keys = Pass.__dataclass_fields__
        return [fold_traffic(Pass(**{k: v for k, v in p.items() if k in keys}), self.spec, dtype_bytes=b)
                for p in plan.tiles["passes"]]

    def _plan_gemm(self, work: LayerWork, choice: Choice, *, nnz: float) -> ExecutionPlan:
        g, s = work.gemm, self.spec
        b = dtype_bytes(g.dtype)
        pieces = [q for p in choice.passes for q in temporal_pieces(p, s, dtype_bytes=b)]
        scalesim = tuple(plan_pass(p, s, dtype_bytes=b) for p in pieces) if s.memory.reuse == "scalesim" else ()
        traffic = ([pass_traffic(sp) for sp in scalesim] if scalesim          # memory.reuse (systolic_spec)
                   else [fold_traffic(p, s, dtype_bytes=b) for p in pieces])
        dram_by_operand: dict[str, float] = {}
        for t in traffic:
            for op, v in t.dram_by_operand.items():
                dram_by_operand[op] = dram_by_operand.get(op, 0.0) + v * g.count
        sram_read = sum(t.sram_read_bytes for t in traffic) * g.count
        sram_write = sum(t.sram_write_bytes for t in traffic) * g.count
        passes = []
        for p in pieces:
            fr, fc, cpf = fold_counts(p, rows=s.rows, cols=s.cols, dataflow=s.dataflow)
            passes.append({**p.as_dict(), "folds_r": fr, "folds_c": fc, "cycles_per_fold": cpf})
        slots = choice.weight_slots
        notes = choice.notes + (_memory_note(s, b),)
        if g.dtype not in s.dtypes:
            notes += (f"{s.name} computes in {', '.join(s.dtypes)}; bytes counted at {g.dtype}",)
        macs_issued = g.m * slots * g.count
        padded_k = sum(p.k_c for p in choice.passes) if len(choice.passes) == 1 else g.k
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format=choice.label, gemm=g,
            padded=type(g)(m=g.m, n=g.n, k=padded_k, dtype=g.dtype, count=g.count),
            tiles={"dataflow": s.dataflow, "rows": s.rows, "cols": s.cols, "passes": passes, "scalesim": scalesim},
            macs_dense=g.macs, macs_effective=g.m * nnz * g.count, macs_issued=macs_issued,
            bytes_by_level={"dram": sum(dram_by_operand.values()), "sram": sram_read + sram_write},
            metadata_bytes=dram_by_operand.get("metadata", 0.0),
            notes=notes,
            details={
                "dtype_bytes": b, "count": g.count, "nnz": nnz, "weight_slots": slots,
                "wasted_slots": slots - nnz, "dram_by_operand": dram_by_operand,
                "sram_read_bytes": sram_read, "sram_write_bytes": sram_write,
                "metadata_bits_read": sum(t.metadata_bits_read for t in traffic) * g.count,
                "compute_cycles": sum(p["folds_r"] * p["folds_c"] * p["cycles_per_fold"] for p in passes) * g.count,
                "folds": sum(p["folds_r"] * p["folds_c"] for p in passes) * g.count,
            },
        )

    def _plan_memory(self, work: LayerWork) -> ExecutionPlan:
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format="memory", gemm=None, padded=None,
            tiles={}, macs_dense=0, macs_effective=0, macs_issued=0,
            bytes_by_level={"dram": float(work.bytes_moved), "sram": 0.0}, metadata_bytes=0.0,
            notes=(f"{work.op_kind} on the vector unit, streamed from DRAM",),
            details={"elements": work.elements, "bytes_moved": work.bytes_moved},
        )


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
    g = work.gemm
    stacked = work.mask is not None and g.count > 1 and work.mask.shape[0] == g.n * g.count
    return work.nnz / g.count if stacked else work.nnz


# engines of this kind register themselves on import
import simsparse.engines.systolic_analytic  # noqa: E402,F401
import simsparse.engines.systolic_event  # noqa: E402,F401
