"""The optional `cuda_cores:` block of a GPU spec (`kind: gpu_sparse_tensor_core`): schema and
frozen record of what the CUDA cores (not the tensor cores) offer the unstructured formats.

A spec without the block runs masks as 2:4 / dense only (archs/gpu.py says so in a note); with it,
the kind also plans SRigL's `condensed` kernel, cuSPARSE `csr` and `blocked-ell`
(archs/gpu_cuda_core.py), and fp32 GEMMs under `fp32_matmul_precision: highest` run as SIMT SGEMM
on the CUDA cores. Fields are datasheet values or stated microbenchmark / software priors (the
YAML names the source of each); nothing here is fitted.

Host time per call follows the software stack, as the tensor-core libraries' does: each kernel's
`host_overhead_s` here is the base every stack starts from (0 unless given; the shipped specs give
none, so under `kernel` these kernels have no host time), and a stack adds its own in
`software.profiles.NAME.cuda_cores.KERNEL.host_overhead_s` (`PROFILE_CUDA_CORES_SCHEMA`;
`with_host_overheads` applies it).

This module imports nothing from gpu_spec (gpu_spec imports it): the SIMT SGEMM library is
described with its own small schema and turned into a `KernelLibrary` by gpu_cuda_core.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from simsparse.errors import SpecError
from simsparse.specs import Field, ListOf, Optional, validate

PRECISIONS = ("high", "highest")          # torch.set_float32_matmul_precision names
INPUT_LAYOUTS = ("transposed", "transpose", "row_major")
KERNELS = ("sgemm", "condensed", "csr", "blocked_ell")     # the block's kernels, each with a host time per call


def _host(*, partial: bool = False) -> Field:
    return Field(float, required=False, default=None if partial else 0.0, min=0.0, max=1e-2,
                 doc="host time per call (base stack; software.profiles.NAME.cuda_cores adds a stack's own)")


_SGEMM_SCHEMA = {
    "mainloop_efficiency": Field(float, min=0.05, max=1.0,
                                 doc="share of the CUDA cores' FP32 peak a CTA's K-loop sustains"),
    "host_overhead_s": _host(),
    "k_step_bytes": Field(int, min=4, max=1024, doc="bytes of K per pipeline stage"),
    "split_k": ListOf(Field(int, min=1, max=64), min_len=1),
    "epilogue_clk": Field(int, min=0, max=100000),
    "max_ctas_per_sm": Field(int, min=1, max=32),
    "tiles": ListOf(ListOf(Field(int, min=1, max=1024), min_len=3), min_len=1),
}

_CONDENSED_SCHEMA = {
    "threads_per_block": Field(int, min=32, max=1024),
    "registers_per_thread": Field(int, min=16, max=255),
    "vector_width": Field(int, min=1, max=16, doc="values / indices loaded per vector load; rows padded to it"),
    "index_bytes": Field(int, choices=(2, 4), doc="narrowest index width while k fits (int16 below 32768)"),
    "input": Field(str, choices=INPUT_LAYOUTS,
                   doc="transposed: x^T given (coalesced gathers); transpose: the call transposes x first; "
                       "row_major: gathers of x rows (one line per lane)"),
    "host_overhead_s": _host(),
}

_CSR_SCHEMA = {
    "threads_per_block": Field(int, min=32, max=1024),
    "registers_per_thread": Field(int, min=16, max=255),
    "host_overhead_s": _host(),
}

_BLOCKED_ELL_SCHEMA = {
    "block_sizes": ListOf(Field(int, min=2, max=64), min_len=1),
    "efficiency": Field(float, min=0.05, max=1.0,
                        doc="share of the dense tensor-core main loop the Blocked-ELL kernel sustains"),
    "host_overhead_s": _host(),
}

CUDA_CORES_SCHEMA = Optional({
    "fp32_matmul_precision": Field(str, choices=PRECISIONS),
    "fp32_fma_per_clk_per_sm": Field(int, min=8, max=1024),
    "max_threads_per_sm": Field(int, min=256, max=4096),
    "max_blocks_per_sm": Field(int, min=1, max=64),
    "l2_latency_clk": Field(float, min=10, max=5000),
    "dram_latency_clk": Field(float, min=10, max=10000),
    "fma_latency_clk": Field(float, min=1, max=64),
    "shuffle_latency_clk": Field(float, min=1, max=256),
    "lsu_wavefronts_per_clk": Field(float, min=0.1, max=16),
    "sgemm": _SGEMM_SCHEMA,
    "condensed": _CONDENSED_SCHEMA,
    "csr": _CSR_SCHEMA,
    "blocked_ell": _BLOCKED_ELL_SCHEMA,
    "sources": Field(str, required=False, default=""),
})

# what a software stack changes in the block: each kernel's host time per call (added to the base)
PROFILE_CUDA_CORES_SCHEMA = Optional({k: Optional({"host_overhead_s": _host(partial=True)}) for k in KERNELS},
                                     default={})


@dataclass(frozen=True)
class SgemmSpec:
    mainloop_efficiency: float
    host_overhead_s: float
    k_step_bytes: int
    split_k: tuple[int, ...]
    epilogue_clk: int
    max_ctas_per_sm: int
    tiles: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class CondensedKernelSpec:
    threads_per_block: int
    registers_per_thread: int
    vector_width: int
    index_bytes: int
    input: str
    host_overhead_s: float


@dataclass(frozen=True)
class CsrKernelSpec:
    threads_per_block: int
    registers_per_thread: int
    host_overhead_s: float


@dataclass(frozen=True)
class BlockedEllSpec:
    block_sizes: tuple[int, ...]
    efficiency: float
    host_overhead_s: float


@dataclass(frozen=True)
class CudaCoreSpec:
    """CUDA-core facts (per SM, in SM clocks) and the software priors of the unstructured kernels."""

    fp32_matmul_precision: str
    fp32_fma_per_clk_per_sm: int
    max_threads_per_sm: int
    max_blocks_per_sm: int
    l2_latency_clk: float
    dram_latency_clk: float
    fma_latency_clk: float
    shuffle_latency_clk: float
    lsu_wavefronts_per_clk: float
    sgemm: SgemmSpec
    condensed: CondensedKernelSpec
    csr: CsrKernelSpec
    blocked_ell: BlockedEllSpec

    @property
    def fp32_on_cuda_cores(self) -> bool:
        """fp32 GEMMs run as IEEE fp32 on the CUDA cores (PyTorch 'highest'), not as TF32."""
        return self.fp32_matmul_precision == "highest"

    def with_host_overheads(self, extra_s: Mapping[str, float]) -> "CudaCoreSpec":
        """The block with `extra_s` (kernel -> seconds, a software stack's own) added to each
        kernel's host time per call."""
        return replace(self, **{k: replace(getattr(self, k), host_overhead_s=getattr(self, k).host_overhead_s + v)
                                for k, v in extra_s.items() if v})


def parse_cuda_cores(data: dict | None, *, source: str) -> CudaCoreSpec | None:
    """The validated block (None when the spec has none). `data` is the whole spec's raw dict."""
    raw = data.get("cuda_cores") if data else None
    if raw is None:
        return None
    d = validate(raw, CUDA_CORES_SCHEMA, source=source, path=["cuda_cores"])
    for i, t in enumerate(d["sgemm"]["tiles"]):
        if len(t) != 3 or not 1 <= t[2] <= 8:
            raise SpecError(f"{source}: field cuda_cores.sgemm.tiles.{i} = {t!r} is invalid; "
                            "allowed: [rows, cols, stages] with 1 <= stages <= 8")
    if d["condensed"]["threads_per_block"] % 32 or d["csr"]["threads_per_block"] % 32:
        raise SpecError(f"{source}: field cuda_cores.condensed/csr.threads_per_block is invalid; "
                        "allowed: a multiple of 32 (whole warps)")
    s, c, r, b = d["sgemm"], d["condensed"], d["csr"], d["blocked_ell"]
    return CudaCoreSpec(
        fp32_matmul_precision=d["fp32_matmul_precision"], fp32_fma_per_clk_per_sm=d["fp32_fma_per_clk_per_sm"],
        max_threads_per_sm=d["max_threads_per_sm"], max_blocks_per_sm=d["max_blocks_per_sm"],
        l2_latency_clk=d["l2_latency_clk"], dram_latency_clk=d["dram_latency_clk"],
        fma_latency_clk=d["fma_latency_clk"], shuffle_latency_clk=d["shuffle_latency_clk"],
        lsu_wavefronts_per_clk=d["lsu_wavefronts_per_clk"],
        sgemm=SgemmSpec(mainloop_efficiency=s["mainloop_efficiency"], host_overhead_s=s["host_overhead_s"],
                        k_step_bytes=s["k_step_bytes"], split_k=tuple(s["split_k"]), epilogue_clk=s["epilogue_clk"],
                        max_ctas_per_sm=s["max_ctas_per_sm"], tiles=tuple(tuple(t) for t in s["tiles"])),
        condensed=CondensedKernelSpec(**c),
        csr=CsrKernelSpec(**r),
        blocked_ell=BlockedEllSpec(block_sizes=tuple(b["block_sizes"]), efficiency=b["efficiency"],
                                   host_overhead_s=b["host_overhead_s"]))
