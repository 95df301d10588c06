"""Spec of a GPU with (or, without `compute.sparse`, without) sparse tensor cores
(`kind: gpu_sparse_tensor_core`): schema and frozen records.

The YAML is validated here (file, field, value and allowed range in every error) and turned
into `GpuSpec`; raw dicts never travel further in. Kernel libraries (the dense one, cuBLAS,
and the sparse back ends PyTorch exposes, cuSPARSELt and CUTLASS) are spec parameters: their
tile configurations, main-loop efficiency, split-K choices, minimum shapes and host overhead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from simsparse.errors import SpecError
from simsparse.specs import Field, ListOf, MapOf, Optional, validate

GPU_DTYPES = ("fp16", "bf16", "tf32", "int8")

_TILE = ListOf(Field(int, min=1, max=1024), min_len=3)
_SHAPE4 = ListOf(Field(int, min=1, max=4096), min_len=4)

LIBRARY_SCHEMA = {
    "library": Field(str, doc="name of the kernel library (cublas, cusparselt, cutlass)"),
    "mainloop_efficiency": Field(float, min=0.05, max=1.0,
                                 doc="fraction of the tensor-core peak a CTA's K-loop sustains"),
    "host_overhead_s": Field(float, min=0.0, max=1e-2, doc="host time per call (eager dispatch)"),
    "k_step_bytes": Field(int, min=16, max=1024, doc="bytes of K per pipeline stage (tile_k * dtype bytes)"),
    "split_k": ListOf(Field(int, min=1, max=64), min_len=1),
    "epilogue_clk": Field(int, min=0, max=100000, doc="exposed epilogue cycles per wave"),
    "tiles": ListOf(_TILE, min_len=1),
    "min_shapes": MapOf(_SHAPE4, keys=GPU_DTYPES),
    "output_copies": Field(int, required=False, default=0, min=0, max=8,
                           doc="extra kernels per call that copy the whole output once more "
                               "(e.g. transposing the transposed result back to row-major)"),
    "stream_k": Field(bool, required=False, default=False,
                      doc="persistent stream-K scheduling: the partial last wave is spread over all SMs "
                          "(K-split fix-up through global memory) instead of idling most of them"),
    "l2_multicast": Field(float, required=False, default=1.0, min=1.0, max=16.0,
                          doc="CTAs of a cluster sharing one L2->SM operand load (TMA multicast on Hopper); "
                              "divides the L2 egress bytes of a tile"),
}

GPU_SCHEMA = {
    "version": Field(int, min=1, max=1),
    "kind": Field(str, choices=("gpu_sparse_tensor_core",)),
    "name": Field(str),
    "description": Field(str, required=False, default=""),
    "clock_hz": Field(float, min=1e8, max=5e9),
    "compute": {
        "sms": Field(int, min=1, max=4096),
        "dense_fma_per_clk_per_sm": MapOf(Field(int, min=1, max=1 << 16), keys=GPU_DTYPES),
        "sparse": Optional({"pattern": Field(str, choices=("2:4",)), "speedup": Field(float, min=1.0, max=4.0)}),
        "max_ctas_per_sm": Field(int, min=1, max=32),
        "registers_bytes_per_sm": Field(int, required=False, default=262144, min=16384, max=1 << 22,
                                        doc="register file per SM (64K x 32-bit on A100/H100); a CTA's fp32 "
                                            "accumulator tile must fit in its share, which caps CTAs per SM"),
    },
    "memory": {
        "hbm_bytes_per_s": Field(float, min=1e9, max=1e14),
        "hbm_efficiency": Field(float, min=0.1, max=1.0),
        "l2_bytes": Field(float, min=1e5, max=1e10),
        "l2_bytes_per_clk": Field(float, min=64, max=1e6),
        "smem_bytes_per_sm": Field(int, min=16384, max=1 << 22),
        "sm_load_bytes_per_clk": Field(float, min=8, max=4096),
        "latency_s": Field(float, min=0.0, max=1e-4),
    },
    "software": {
        "backend": Field(str, required=False, default=""),
        "launch_gap_s": Field(float, min=0.0, max=1e-3),
        "include_host_overhead": Field(bool),
        "dense": LIBRARY_SCHEMA,
        "backends": MapOf(LIBRARY_SCHEMA, keys=("cusparselt", "cutlass"), required=False, default={}),
    },
    "fitted": Optional(MapOf(Field((str, float, int)))),
}


@dataclass(frozen=True)
class TileConfig:
    """One threadblock tile: rows of the weight operand x columns (tokens) x pipeline stages."""

    rows: int
    cols: int
    stages: int


@dataclass(frozen=True, eq=False)
class KernelLibrary:
    name: str
    mainloop_efficiency: float
    host_overhead_s: float
    k_step_bytes: int
    split_k: tuple[int, ...]
    epilogue_clk: int
    tiles: tuple[TileConfig, ...]
    min_shapes: Mapping[str, tuple[int, int, int, int]]  # dtype -> (sparse rows, sparse cols, dense rows, dense cols)
    output_copies: int = 0
    stream_k: bool = False
    l2_multicast: float = 1.0


@dataclass(frozen=True, eq=False)
class GpuSpec:
    name: str
    clock_hz: float
    sms: int
    dense_fma_per_clk_per_sm: Mapping[str, int]   # tensor-core dtypes this GPU runs (fp16 at least)
    sparse_pattern: str | None                     # None: no sparse tensor cores (a dense-only GPU)
    sparse_speedup: float
    max_ctas_per_sm: int
    hbm_bytes_per_s: float
    hbm_efficiency: float
    l2_bytes: float
    l2_bytes_per_clk: float
    smem_bytes_per_sm: int
    sm_load_bytes_per_clk: float
    latency_s: float
    backend: str
    launch_gap_s: float
    include_host_overhead: bool
    dense: KernelLibrary
    backends: Mapping[str, KernelLibrary]
    description: str = ""
    registers_bytes_per_sm: int = 262144

    @property
    def has_sparse_tensor_cores(self) -> bool:
        return self.sparse_pattern is not None

    @property
    def sparse_library(self) -> KernelLibrary:
        if not self.has_sparse_tensor_cores:
            raise SpecError(f"{self.name} has no sparse tensor cores (no compute.sparse block); "
                            "it runs masks dense or shrunk")
        return self.backends[self.backend]

    @property
    def tensor_dtypes(self) -> tuple[str, ...]:
        """The GPU dtypes its tensor cores run, in GPU_DTYPES order."""
        return tuple(d for d in GPU_DTYPES if d in self.dense_fma_per_clk_per_sm)

    @property
    def hbm_bytes_per_clk(self) -> float:
        """Achievable HBM bytes per clock (peak x efficiency)."""
        return self.hbm_bytes_per_s * self.hbm_efficiency / self.clock_hz


def _library(d: dict) -> KernelLibrary:
    return KernelLibrary(
        name=d["library"], mainloop_efficiency=d["mainloop_efficiency"], host_overhead_s=d["host_overhead_s"],
        k_step_bytes=d["k_step_bytes"], split_k=tuple(d["split_k"]), epilogue_clk=d["epilogue_clk"],
        tiles=tuple(TileConfig(rows=t[0], cols=t[1], stages=t[2]) for t in d["tiles"]),
        min_shapes={k: tuple(v[:4]) for k, v in d["min_shapes"].items()},
        output_copies=d.get("output_copies") or 0, stream_k=bool(d.get("stream_k") or False),
        l2_multicast=float(d.get("l2_multicast") or 1.0))


def _check_cross_fields(d: dict, source: str) -> None:
    backends = d["software"]["backends"] or {}
    if d["compute"]["sparse"] is None:
        if d["software"]["backend"] or backends:
            raise SpecError(f"{source}: field software.backend(s) is set but compute.sparse is absent; "
                            "a dense-only GPU has no sparse back end: remove them or add compute.sparse")
    elif d["software"]["backend"] not in backends:
        raise SpecError(f"{source}: field software.backend = {d['software']['backend']!r} is invalid; "
                        f"allowed: {', '.join(sorted(backends)) or '(no software.backends given)'}")
    for lib_path, lib in [("software.dense", d["software"]["dense"])] + [
            (f"software.backends.{k}", v) for k, v in backends.items()]:
        for i, t in enumerate(lib["tiles"]):
            if len(t) != 3 or t[2] < 1 or t[2] > 8:
                raise SpecError(f"{source}: field {lib_path}.tiles.{i} = {t!r} is invalid; "
                                "allowed: [rows, cols, stages] with 1 <= stages <= 8")
    if "fp16" not in d["compute"]["dense_fma_per_clk_per_sm"]:
        raise SpecError(f"{source}: missing field compute.dense_fma_per_clk_per_sm.fp16; add it to the spec "
                        "(dtypes the tensor cores lack, e.g. bf16 and tf32 before Ampere, may be left out)")


def parse_gpu_spec(data: dict, *, source: str) -> GpuSpec:
    """Validate plain YAML data and build the frozen `GpuSpec` (SpecError naming file/field/value)."""
    d = validate(data, GPU_SCHEMA, source=source)
    _check_cross_fields(d, source)
    c, m, s = d["compute"], d["memory"], d["software"]
    sparse = c["sparse"] or {"pattern": None, "speedup": 1.0}
    return GpuSpec(
        name=d["name"], clock_hz=d["clock_hz"], sms=c["sms"],
        dense_fma_per_clk_per_sm=dict(c["dense_fma_per_clk_per_sm"]),
        sparse_pattern=sparse["pattern"], sparse_speedup=sparse["speedup"],
        max_ctas_per_sm=c["max_ctas_per_sm"], hbm_bytes_per_s=m["hbm_bytes_per_s"],
        hbm_efficiency=m["hbm_efficiency"], l2_bytes=m["l2_bytes"], l2_bytes_per_clk=m["l2_bytes_per_clk"],
        smem_bytes_per_sm=m["smem_bytes_per_sm"], sm_load_bytes_per_clk=m["sm_load_bytes_per_clk"],
        latency_s=m["latency_s"], backend=s["backend"], launch_gap_s=s["launch_gap_s"],
        include_host_overhead=s["include_host_overhead"], dense=_library(s["dense"]),
        backends={k: _library(v) for k, v in (s["backends"] or {}).items()}, description=d.get("description") or "",
        registers_bytes_per_sm=c.get("registers_bytes_per_sm") or 262144)
