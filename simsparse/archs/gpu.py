"""GPU with 2:4 sparse tensor cores (A100, H100), or a dense-only one (RTX 2080 Ti: no
`compute.sparse` block): `kind: gpu_sparse_tensor_core`.

Per layer the model decides the execution format the device can use for the measured mask:
  "2:4"    every group of 4 along K holds <= 2 nonzeros (tf32: every pair <= 1) -> the sparse
           back end (cuSPARSELt or CUTLASS, `software.backend`), weight compressed + metadata;
  "shrunk" all-zero output rows / input channels are removed -> the smaller dense GEMM;
  "dense"  otherwise (a non-compliant mask falls back to dense; the note gives the share of
           violating groups). On a GPU without sparse tensor cores every mask runs dense or
           shrunk, and the note says so.
When both 2:4 and shrunk apply, the faster one (closed form) is taken and the choice noted.
Each GEMM becomes a library call (`gpu_call.LibraryCall`): the library's padding and minimum
shapes, the fastest tile configuration (`gpu_kernel.best_config`) and extra copy kernels; the
engines add launch gaps and host overhead. Non-GEMM ops are memory-bound kernels. The typed
payload `GpuPlan` is what engines/gpu_analytic.py and engines/gpu_event.py read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from simsparse.archs import ARCH_KINDS, ArchModel
from simsparse.archs.gpu_call import LibraryCall, closed_form_latency_s, config_timing, gpu_dtype, library_call
from simsparse.archs.gpu_spec import GpuSpec, parse_gpu_spec
from simsparse.errors import SimSparseError
from simsparse.graph.lower import shrunk_gemm
from simsparse.records import ExecutionPlan, Gemm, LayerWork, Pattern

KIND = "gpu_sparse_tensor_core"


@dataclass(frozen=True)
class GpuPlan:
    """Payload of a `gpu_sparse_tensor_core` plan: what the device runs for one layer, no timing.

    A GEMM layer is one library call (`call`); any other op is one memory-bound kernel streaming
    `stream_bytes` through HBM (`call` None).
    """

    call: LibraryCall | None
    stream_bytes: float = 0.0


def _compliance(pattern: Pattern, dtype: str) -> tuple[bool, float]:
    """(2:4-compliant for this dtype, share of violating groups) from the measured pattern."""
    n_keep, group = (1, 2) if dtype == "tf32" else (2, 4)
    ok = pattern.is_nm(n_keep, group)
    return ok, (0.0 if ok else pattern.nm_violation_share(n_keep, group))


def _shrunk_gemm(work: LayerWork, pattern: Pattern) -> Gemm | None:
    if pattern.rows_removed == 0 and pattern.cols_removed == 0:
        return None
    return shrunk_gemm(work.gemm, pattern)


@ARCH_KINDS.register(KIND)
class GpuSparseTensorCore(ArchModel):
    """A GPU whose tensor cores run 2:4 sparse GEMMs through a chosen back end.

    Planning picks what a PyTorch user gets: the library's padding and tile configuration
    (`gpu_call.library_call`), and between 2:4 and shrunk the faster by the closed form
    (`gpu_call.closed_form_latency_s`, pure archs math); the plan itself carries no time.
    """

    kind = KIND
    kernels = ()
    unstructured = False       # unstructured masks run dense (or shrunk)
    engines_agree_rel = 0.05   # large compute-bound GEMMs (tests/test_engines_gpu_agree.py)
    spec: GpuSpec

    parse_spec = staticmethod(parse_gpu_spec)

    def default_dtype(self) -> str:
        return "fp16"

    def supported_dtypes(self) -> tuple[str, ...]:
        dtypes = self.spec.tensor_dtypes
        return dtypes + (("fp32",) if "tf32" in dtypes else ())   # fp32 GEMMs run as tf32

    @property
    def software(self) -> str:
        return self.spec.software

    def software_stacks(self) -> tuple[str, ...]:
        return tuple(self.spec.profiles)

    def with_software(self, name: str) -> "GpuSparseTensorCore":
        return type(self)(name=self.name, spec=self.spec.with_software(name), source=self.source)

    # ------------------------------------------------------------------ planning

    def plan(self, work: LayerWork, *, dense: bool = False, kernel: str | None = None) -> ExecutionPlan[GpuPlan]:
        self.check_kernel(kernel)
        if work.kind == "memory":
            return self._plan_memory(work)
        if work.gemm is None:
            raise SimSparseError(f"layer {work.name}: a gemm layer needs its GEMM geometry")
        if gpu_dtype(work.gemm.dtype) not in self.spec.tensor_dtypes:
            raise SimSparseError(f"dtype {work.gemm.dtype!r} is not supported by arch {self.name}; use one of "
                                 + ", ".join(self.supported_dtypes()))
        if dense or work.pattern is None:
            return self._plan_gemm(work, work.gemm, fmt="dense", notes=())
        return self._plan_masked(work, work.pattern)

    def _latency_s(self, plan: ExecutionPlan[GpuPlan]) -> float:
        return closed_form_latency_s(self.spec, plan.payload.call)

    def _plan_masked(self, work: LayerWork, pattern: Pattern) -> ExecutionPlan[GpuPlan]:
        dtype = gpu_dtype(work.gemm.dtype)
        ok, share = _compliance(pattern, dtype)
        rule = "1:2" if dtype == "tf32" else "2:4"
        shrunk = _shrunk_gemm(work, pattern)
        if not self.spec.has_sparse_tensor_cores:
            note = f"{self.name} has no sparse tensor cores: the mask runs dense"
            return self._dense_fallback(work, shrunk, (note + (" (shrunk to the live channels)" if shrunk else ""),))
        if ok:
            sparse_plan = self._plan_gemm(work, work.gemm, fmt="2:4", notes=())
            if shrunk is None:
                return self._flag_slower_than_dense(work, sparse_plan, rule=rule)
            shrunk_plan = self._plan_gemm(work, shrunk, fmt="shrunk", notes=())
            (best, best_s), (other, other_s) = sorted(
                [(p, self._latency_s(p)) for p in (sparse_plan, shrunk_plan)], key=lambda ps: ps[1])
            note = (f"both {rule} and shrunk ({shrunk.n}x{shrunk.k}) apply; {best.format} is faster "
                    f"({best_s * 1e6:.1f} us vs {other_s * 1e6:.1f} us)")
            return replace(best, notes=best.notes + (note,))
        if pattern.nnz == pattern.rows * pattern.cols:
            notes: tuple[str, ...] = ("mask is fully dense",)
        else:
            notes = (f"mask is not {rule}: {share:.1%} of groups along K hold too many nonzeros; "
                     "dense fallback" + (" (shrunk to the live channels)" if shrunk else ""),)
        return self._dense_fallback(work, shrunk, notes)

    def _dense_fallback(self, work: LayerWork, shrunk: Gemm | None,
                        notes: tuple[str, ...]) -> ExecutionPlan[GpuPlan]:
        """The masked layer as a dense GEMM: the shrunk one when channels are removed."""
        if shrunk is not None:
            return self._plan_gemm(work, shrunk, fmt="shrunk", notes=notes)
        return self._plan_gemm(work, work.gemm, fmt="dense", notes=notes)

    def _flag_slower_than_dense(self, work: LayerWork, plan: ExecutionPlan[GpuPlan], *,
                                rule: str) -> ExecutionPlan[GpuPlan]:
        """Keep the sparse plan (it is what converting the layer does) but say when dense is faster."""
        dense_s = self._latency_s(self._plan_gemm(work, work.gemm, fmt="dense", notes=()))
        sparse_s = self._latency_s(plan)
        if sparse_s <= dense_s:
            return plan
        note = (f"{rule} runs {dense_s / sparse_s:.2f}x of dense here ({sparse_s * 1e6:.1f} us vs "
                f"{dense_s * 1e6:.1f} us: padding/overhead dominate); keeping this layer dense would be faster")
        return replace(plan, notes=plan.notes + (note,))

    def _plan_gemm(self, work: LayerWork, gemm: Gemm, *, fmt: str,
                   notes: tuple[str, ...]) -> ExecutionPlan[GpuPlan]:
        spec = self.spec
        sparse = fmt == "2:4"
        lib = spec.sparse_library if sparse else spec.dense
        lc = library_call(spec, lib, gemm, sparse=sparse)
        t = config_timing(spec, lc)           # the closed-form kernel model: its traffic and MACs issued
        orig = work.gemm
        nnz = work.nnz                       # the mask's work, the dense baseline's too
        call = lc.call
        meta = call.rows * call.k * call.count / 8.0 if sparse else 0.0
        pad_note = () if (call.rows, call.cols, call.k) == (gemm.n, gemm.m, gemm.k) else (
            f"{lib.name} pads {gemm.m}x{gemm.n}x{gemm.k} to {call.cols}x{call.rows}x{call.k}",)
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format=fmt, gemm=orig,
            padded=Gemm(m=call.cols, n=call.rows, k=call.k, dtype=call.dtype, count=call.count),
            macs_dense=orig.macs, macs_effective=orig.m * nnz * orig.count, macs_issued=int(t.macs_issued),
            bytes_by_level={"hbm": t.hbm_bytes, "l2": t.l2_bytes, "smem": t.smem_bytes},
            metadata_bytes=meta, payload=GpuPlan(call=lc), notes=notes + pad_note)

    def _plan_memory(self, work: LayerWork) -> ExecutionPlan[GpuPlan]:
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format="memory", gemm=None, padded=None,
            macs_dense=0, macs_effective=0, macs_issued=0, bytes_by_level={"hbm": float(work.bytes_moved)},
            metadata_bytes=0.0, payload=GpuPlan(call=None, stream_bytes=float(work.bytes_moved)))
