"""GPU with 2:4 sparse tensor cores (A100, H100), or a dense-only one (RTX 2080 Ti: no
`compute.sparse` block): `kind: gpu_sparse_tensor_core`.

Per layer the model decides the execution format the device can use for the measured mask:
  "2:4"    every group of 4 along K holds <= 2 nonzeros (tf32: every pair <= 1) -> the sparse
           back end (cuSPARSELt or CUTLASS, `software.backend`), weight compressed + metadata;
  "dense"  otherwise (a non-compliant mask falls back to dense; the note gives the share of
           violating groups). On a GPU without sparse tensor cores every mask runs dense, and the
           note says so.
Removed channels are not this model's business: the graph layer shrinks the network first
(`graph.shrink`, coupled across producers and consumers) and this model runs the smaller layers
like any other; a layer's all-zero rows that shrinking keeps run as dense rows (as PyTorch does).
With a `cuda_cores` block in the spec the CUDA-core formats join the ranking (archs/gpu_cuda_core.py:
SRigL's `condensed`, cuSPARSE `csr` and `blocked-ell`, and fp32 as SIMT SGEMM under
`fp32_matmul_precision: highest`); the fastest by the closed form wins, the notes and
`alternatives` say what each would cost, and `plan(kernel=...)` forces one.
Each GEMM becomes a library call (`gpu_call.LibraryCall`): the library's padding and minimum
shapes, the fastest tile configuration (`gpu_kernel.best_config`) and extra copy kernels; the
engines add launch gaps and host overhead. Non-GEMM ops are memory-bound kernels. The typed
payload `GpuPlan` is what engines/gpu_analytic.py and engines/gpu_event.py read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from simsparse.archs import ARCH_KINDS, ArchModel
from simsparse.archs.gpu_call import LibraryCall, closed_form_latency_s, config_timing, gpu_dtype, library_call
from simsparse.archs.gpu_cuda_core import (CUDA_CORE_FORMATS, CudaCorePlan, candidates, choose, cuda_core_latency_s,
                                           forced_plan, fp32_on_cuda_cores, sgemm_plan)
from simsparse.archs.gpu_spec import GpuSpec, parse_gpu_spec
from simsparse.errors import PatternError, SimSparseError
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


def _nm_rule(dtype: str) -> tuple[int, int]:
    """(kept, group) the sparse tensor cores need along K: 2:4, or 1:2 for tf32 (fp32 GEMMs)."""
    return (1, 2) if gpu_dtype(dtype) == "tf32" else (2, 4)


def _compliance(pattern: Pattern, dtype: str) -> tuple[bool, float]:
    """(2:4-compliant for this dtype, share of violating groups) from the measured pattern."""
    n_keep, group = _nm_rule(dtype)
    ok = pattern.is_nm(n_keep, group)
    return ok, (0.0 if ok else pattern.nm_violation_share(n_keep, group))


@ARCH_KINDS.register(KIND)
class GpuSparseTensorCore(ArchModel):
    """A GPU whose tensor cores run 2:4 sparse GEMMs through a chosen back end.

    Planning picks what a PyTorch user gets: the library's padding and tile configuration
    (`gpu_call.library_call`), and notes where 2:4 runs slower than dense by the closed form
    (`gpu_call.closed_form_latency_s`, pure archs math); the plan itself carries no time.
    """

    kind = KIND
    kernels = ("dense", "2:4") + CUDA_CORE_FORMATS
    unstructured = True        # csr / condensed run any mask (where the spec has a cuda_cores block)
    engines_agree_rel = 0.05   # large compute-bound GEMMs (tests/test_engines_gpu_agree.py)
    spec: GpuSpec

    parse_spec = staticmethod(parse_gpu_spec)

    def default_dtype(self) -> str:
        return "fp16"

    def supported_dtypes(self) -> tuple[str, ...]:
        dtypes = self.spec.tensor_dtypes
        simt = self.spec.cuda_cores is not None          # IEEE fp32 on the CUDA cores
        return dtypes + (("fp32",) if "tf32" in dtypes or simt else ())   # fp32 GEMMs run as tf32 or SIMT

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
        if work.gemm.dtype not in self.supported_dtypes():
            raise SimSparseError(f"dtype {work.gemm.dtype!r} is not supported by arch {self.name}; use one of "
                                 + ", ".join(self.supported_dtypes()))
        if dense or (work.pattern is None and kernel in (None, "dense")):
            return self._plan_gemm(work, work.gemm, fmt="dense", notes=())
        if work.pattern is None:
            raise PatternError(f"layer {work.name}: kernel {kernel} needs a mask (the layer is dense)")
        if kernel is not None:
            return self._plan_forced(work, kernel)
        return self._choose_format(work)

    def _latency_s(self, plan: ExecutionPlan) -> float:
        if isinstance(plan.payload, CudaCorePlan):
            return cuda_core_latency_s(self.spec, plan.payload)
        return closed_form_latency_s(self.spec, plan.payload.call)

    def _plan_forced(self, work: LayerWork, kernel: str) -> ExecutionPlan:
        """`kernel` forced (the CLI's --kernel; PatternError when it cannot run this mask), with the
        model's own choice beside it."""
        p = work.pattern
        if kernel in CUDA_CORE_FORMATS:
            plan = forced_plan(self.spec, work, kernel, arch=self.name)
        elif kernel == "dense":
            plan = self._plan_gemm(work, work.gemm, fmt="dense", notes=())
        else:
            if not self.spec.has_sparse_tensor_cores or not _compliance(p, work.gemm.dtype)[0]:
                raise PatternError(f"layer {work.name}: kernel 2:4 needs sparse tensor cores and a "
                                   "{}:{} mask".format(*_nm_rule(work.gemm.dtype)))
            plan = self._plan_gemm(work, work.gemm, fmt="2:4", notes=())
        own = self._choose_format(work)
        forced_s, own_s = self._latency_s(plan), self._latency_s(own)
        note = (f"kernel {kernel} forced: {forced_s * 1e6:.1f} us; the model's own choice is {own.format} "
                f"({own_s * 1e6:.1f} us)")
        return replace(plan, notes=plan.notes + (note,),
                       alternatives={**(own.alternatives or {own.format: own_s}), kernel: forced_s})

    def _choose_format(self, work: LayerWork) -> ExecutionPlan:
        """The format a mask runs in, under the active software stack (its host times, launch gaps,
        tiles and split-K rank every candidate): the tensor-core plan (2:4 where the mask complies
        and the GPU has sparse tensor cores, else dense, the note saying why), ranked by the closed
        form against the CUDA-core formats the mask allows (`cuda_cores` block). A 2:4 mask keeps
        2:4 (converting the layer is the user's choice; a note says when dense would be faster)."""
        pattern, gemm = work.pattern, work.gemm
        ok, share = _compliance(pattern, gemm.dtype)
        rule = "{}:{}".format(*_nm_rule(gemm.dtype))
        if not self.spec.has_sparse_tensor_cores:
            base = self._plan_gemm(work, gemm, fmt="dense",
                                   notes=(f"{self.name} has no sparse tensor cores: the mask runs dense",))
        elif ok:
            base = self._flag_slower_than_dense(work, self._plan_gemm(work, gemm, fmt="2:4", notes=()), rule=rule)
        elif pattern.nnz == pattern.rows * pattern.cols:
            base = self._plan_gemm(work, gemm, fmt="dense", notes=("mask is fully dense",))
        else:
            base = self._plan_gemm(work, gemm, fmt="dense", notes=(
                f"mask is not {rule}: {share:.1%} of groups along K hold too many nonzeros; dense fallback",))
        if pattern.nnz in (0, pattern.rows * pattern.cols):
            return base
        if self.spec.cuda_cores is None:
            return replace(base, notes=base.notes + (f"{self.name} has no cuda_cores block: condensed / csr / "
                                                     "blocked-ell are not offered",))
        return choose([base] + candidates(self.spec, work, arch=self.name), self._latency_s,
                      keep=base if base.format == "2:4" else None)

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
        if fmt != "2:4" and fp32_on_cuda_cores(spec, gemm.dtype):
            plan = sgemm_plan(spec, work, gemm, arch=self.name, fmt=fmt)
            return replace(plan, notes=notes + plan.notes)
        sparse = fmt == "2:4"
        lib = spec.sparse_library if sparse else spec.dense
        lc = library_call(spec, lib, gemm, sparse=sparse)
        t = config_timing(spec, lc)           # the closed-form kernel model: its traffic and MACs issued
        orig = work.gemm
        nnz = work.nnz_per_gemm              # the mask's work (per group of a grouped conv), the dense baseline's too
        call = lc.call
        meta = call.rows * call.k * call.count / 8.0 if sparse else 0.0
        pad_note = () if (call.rows, call.cols, call.k) == (gemm.n, gemm.m, gemm.k) else (
            f"{lib.name} pads {gemm.m}x{gemm.n}x{gemm.k} to {call.cols}x{call.rows}x{call.k}",)
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format=fmt, gemm=orig,
            padded=Gemm(m=call.cols, n=call.rows, k=call.k, dtype=call.dtype, count=call.count),
            macs_dense=orig.macs, macs_effective=round(orig.m * nnz * orig.count), macs_issued=int(t.macs_issued),
            bytes_by_level={"hbm": t.hbm_bytes, "l2": t.l2_bytes, "smem": t.smem_bytes},
            metadata_bytes=meta, payload=GpuPlan(call=lc), notes=notes + pad_note)

    def _plan_memory(self, work: LayerWork) -> ExecutionPlan[GpuPlan]:
        return ExecutionPlan(
            layer=work.name, arch=self.name, kind=KIND, format="memory", gemm=None, padded=None,
            macs_dense=0, macs_effective=0, macs_issued=0, bytes_by_level={"hbm": float(work.bytes_moved)},
            metadata_bytes=0.0, payload=GpuPlan(call=None, stream_bytes=float(work.bytes_moved)))
