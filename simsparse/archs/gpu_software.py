"""The kernel libraries and software stacks of a GPU spec (`software:` block of
`kind: gpu_sparse_tensor_core`): their schema, frozen records and parsing.

- A kernel library (`software.dense`, cuBLAS; the sparse back ends `software.backends`, cuSPARSELt
  and CUTLASS): tiles, main-loop efficiency per dtype, split-K choices, minimum shapes, output
  dtypes, host time per call.
- A software stack (`software.profiles.NAME`, chosen with `--software NAME`): how a caller drives
  those libraries. A profile lists only what it changes in a library (`_merged`), its launch gap,
  and the host time per call of the CUDA-core kernels it drives (`cuda_cores:`,
  archs/gpu_cuda_spec.py); `on_top_of` another stack adds its own gaps and host times to that
  stack's.

archs/gpu_spec.py holds the silicon and the whole spec, and calls `parse_profile` and
`check_libraries` from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from simsparse.archs.gpu_cuda_spec import KERNELS, PROFILE_CUDA_CORES_SCHEMA, CudaCoreSpec
from simsparse.errors import SpecError
from simsparse.specs import Field, ListOf, MapOf, Optional

GPU_DTYPES = ("fp16", "bf16", "tf32", "fp8", "int8")
OUTPUT_DTYPES = GPU_DTYPES + ("fp32", "int32")
OUTPUT_BYTES = {"fp16": 2, "bf16": 2, "tf32": 4, "fp8": 1, "int8": 1, "fp32": 4, "int32": 4}
SPARSE_BACKENDS = ("cusparselt", "cutlass")

_TILE = ListOf(Field(int, min=1, max=1024), min_len=3)
_SHAPE4 = ListOf(Field(int, min=1, max=4096), min_len=4)


def _library_schema(*, partial: bool) -> dict:
    """A kernel library's fields; `partial` (a profile's changes): every field optional."""
    req = not partial

    def f(field):
        return replace(field, required=False, default=None) if partial else field

    return {
        "library": f(Field(str, doc="name of the kernel library (cublas, cusparselt, cutlass)")),
        "mainloop_efficiency": MapOf(Field(float, min=0.05, max=1.0), keys=GPU_DTYPES, required=req,
                                     default=None),   # per dtype: share of the tensor-core peak a K-loop sustains
        "host_overhead_s": Field(float, required=False, default=None if partial else 0.0, min=0.0, max=1e-2,
                                 doc="host time per call; a stream of calls runs at max(host, device)"),
        "k_step_bytes": f(Field(int, min=16, max=1024, doc="bytes of K per pipeline stage")),
        "split_k": ListOf(Field(int, min=1, max=64), min_len=1, required=req, default=None),
        "epilogue_clk": f(Field(int, min=0, max=100000, doc="exposed epilogue cycles per wave")),
        "tiles": ListOf(_TILE, min_len=1, required=req, default=None),
        "dtype_tiles": MapOf(ListOf(_TILE, min_len=1), keys=GPU_DTYPES, required=False,
                             default=None if partial else {}),   # dtype -> its own tile set (else `tiles`)
        "dtype_split_k": MapOf(ListOf(Field(int, min=1, max=64), min_len=1), keys=GPU_DTYPES, required=False,
                               default=None if partial else {}),  # dtype -> its own split-K choices
        "min_shapes": MapOf(_SHAPE4, keys=GPU_DTYPES, required=req, default=None),
        "output_dtypes": MapOf(Field(str, choices=OUTPUT_DTYPES), keys=GPU_DTYPES, required=False,
                               default=None if partial else {}),   # input dtype -> what the call writes
        "output_copies": Field(int, required=False, default=None if partial else 0, min=0, max=8),
        "stream_k": Field(bool, required=False, default=None if partial else False),
        "l2_multicast": Field(float, required=False, default=None if partial else 1.0, min=1.0, max=16.0),
        "auto_stages": Field(bool, required=False, default=None if partial else False,
                             doc="pipeline depth sized to the shared memory (CUTLASS 3 StageCountAuto)"),
    }


LIBRARY_SCHEMA = _library_schema(partial=False)
PROFILE_SCHEMA = {
    "description": Field(str, required=False, default=""),
    "launch_gap_s": Field(float, min=0.0, max=1e-4, doc="device gap per kernel launched back to back"),
    "warm_l2": Field(bool, required=False, default=False,
                     doc="calls repeat on the same tensors without an L2 flush: what fits stays in L2"),
    "op_host_overhead_s": Field(float, required=False, default=0.0, min=0.0, max=1e-2,
                                doc="host time per memory-bound op (norm, activation, add: a framework's dispatch, "
                                    "no library call); 0: ops launched back to back from C++"),
    "on_top_of": Field(str, required=False, default="",
                       doc="a stack this one runs on top of (a framework calling the same library API): its "
                           "launch_gap_s and host_overhead_s are its own extra seconds over that stack's"),
    "dense": Optional(_library_schema(partial=True), default={}),
    "backends": MapOf(_library_schema(partial=True), keys=SPARSE_BACKENDS, required=False, default={}),
    "cuda_cores": PROFILE_CUDA_CORES_SCHEMA,   # the CUDA-core kernels' host time per call under this stack
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
    mainloop_efficiency: Mapping[str, float]      # dtype -> share of peak; a dtype absent is not supported
    host_overhead_s: float
    k_step_bytes: int
    split_k: tuple[int, ...]
    epilogue_clk: int
    tiles: tuple[TileConfig, ...]
    min_shapes: Mapping[str, tuple[int, int, int, int]]  # dtype -> (sparse rows, sparse cols, dense rows, dense cols)
    output_dtypes: Mapping[str, str]              # input dtype -> output dtype (absent: the input dtype)
    output_copies: int = 0
    stream_k: bool = False
    l2_multicast: float = 1.0
    auto_stages: bool = False
    dtype_tiles: Mapping[str, tuple[TileConfig, ...]] = field(default_factory=dict)
    dtype_split_k: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def output_bytes(self, dtype: str) -> int:
        """Bytes per output element the call writes (int8 GEMMs write int32 or a low-precision type)."""
        return OUTPUT_BYTES[self.output_dtypes.get(dtype, dtype)]

    def tiles_for(self, dtype: str) -> tuple[TileConfig, ...]:
        """The tiles the library has for `dtype` (its own set where the spec gives one)."""
        return self.dtype_tiles.get(dtype) or self.tiles

    def split_k_for(self, dtype: str) -> tuple[int, ...]:
        return self.dtype_split_k.get(dtype) or self.split_k


@dataclass(frozen=True, eq=False)
class SoftwareProfile:
    """A software stack: the libraries as it drives them, its launch gap, and the spec's CUDA-core
    block with this stack's host time per call (None where the spec has no `cuda_cores:` block)."""

    name: str
    description: str
    launch_gap_s: float
    dense: KernelLibrary
    backends: Mapping[str, KernelLibrary]
    warm_l2: bool = False
    cuda_cores: CudaCoreSpec | None = None
    op_host_overhead_s: float = 0.0      # host time per memory-bound op (no library call)


def _tiles(rows: list) -> tuple[TileConfig, ...]:
    return tuple(TileConfig(rows=t[0], cols=t[1], stages=t[2]) for t in rows)


def _library(d: dict) -> KernelLibrary:
    return KernelLibrary(
        name=d["library"], mainloop_efficiency=dict(d["mainloop_efficiency"]), host_overhead_s=d["host_overhead_s"],
        k_step_bytes=d["k_step_bytes"], split_k=tuple(d["split_k"]), epilogue_clk=d["epilogue_clk"],
        tiles=_tiles(d["tiles"]), min_shapes={k: tuple(v[:4]) for k, v in d["min_shapes"].items()},
        output_dtypes=dict(d["output_dtypes"] or {}), output_copies=d["output_copies"] or 0,
        stream_k=bool(d["stream_k"]), l2_multicast=float(d["l2_multicast"] or 1.0), auto_stages=bool(d["auto_stages"]),
        dtype_tiles={k: _tiles(v) for k, v in (d["dtype_tiles"] or {}).items()},
        dtype_split_k={k: tuple(v) for k, v in (d["dtype_split_k"] or {}).items()})


def _merged(base: dict, changes: dict | None) -> dict:
    """A library's fields with a profile's changes applied (maps merge key by key; a profile that
    sets `tiles` or `split_k` replaces the library's per-dtype sets too, unless it gives its own)."""
    out = dict(base)
    changes = changes or {}
    for plain, per_dtype in (("tiles", "dtype_tiles"), ("split_k", "dtype_split_k")):
        if changes.get(plain) is not None and changes.get(per_dtype) is None:
            out[per_dtype] = {}
    for key, value in changes.items():
        if value is None:
            continue
        out[key] = {**(base.get(key) or {}), **value} if isinstance(value, dict) else value
    return out


def _cuda_host_s(p: dict) -> dict[str, float]:
    """A stack's own host time per call of each CUDA-core kernel (kernel -> seconds)."""
    block = p["cuda_cores"] or {}
    return {k: (block.get(k) or {}).get("host_overhead_s") or 0.0 for k in KERNELS}


def parse_profile(name: str, p: dict, s: dict, cuda: CudaCoreSpec | None) -> SoftwareProfile:
    """Software stack `name` (validated profile `p` of software block `s`), its libraries merged."""
    backends = s["backends"] or {}
    cuda_host = _cuda_host_s(p)
    dense = _merged(s["dense"], p["dense"])
    sparse = {k: _merged(v, (p["backends"] or {}).get(k)) for k, v in backends.items()}
    base_name = p["on_top_of"]
    launch_gap_s, op_host_s = p["launch_gap_s"], p["op_host_overhead_s"]
    if base_name:                      # the base stack's launch gap and host time per call, plus this stack's own
        base = s["profiles"][base_name]
        launch_gap_s += base["launch_gap_s"]
        op_host_s += base["op_host_overhead_s"]
        dense["host_overhead_s"] += _merged(s["dense"], base["dense"])["host_overhead_s"]
        for k in sparse:
            sparse[k]["host_overhead_s"] += _merged(backends[k], (base["backends"] or {}).get(k))["host_overhead_s"]
        cuda_host = {k: v + _cuda_host_s(base)[k] for k, v in cuda_host.items()}
    return SoftwareProfile(
        name=name, description=p["description"] or "", launch_gap_s=launch_gap_s, warm_l2=bool(p["warm_l2"]),
        dense=_library(dense), backends={k: _library(v) for k, v in sparse.items()},
        cuda_cores=cuda.with_host_overheads(cuda_host) if cuda is not None else None, op_host_overhead_s=op_host_s)


def check_libraries(d: dict, source: str) -> None:
    """Cross-field checks of every library and profile change (tiles, dtypes the tensor cores run)."""
    s = d["software"]
    tensor = d["compute"]["dense_fma_per_clk_per_sm"]
    libs = [("software.dense", s["dense"])] + [(f"software.backends.{k}", v) for k, v in (s["backends"] or {}).items()]
    for name, p in s["profiles"].items():
        libs += [(f"software.profiles.{name}.dense", p["dense"])]
        libs += [(f"software.profiles.{name}.backends.{k}", v) for k, v in (p["backends"] or {}).items()]
    for lib_path, lib in libs:
        tile_lists = [("tiles", lib.get("tiles") or [])] + [
            (f"dtype_tiles.{k}", v) for k, v in (lib.get("dtype_tiles") or {}).items()]
        for where, tiles in tile_lists:
            for i, t in enumerate(tiles):
                if len(t) != 3 or t[2] < 1 or t[2] > 8:
                    raise SpecError(f"{source}: field {lib_path}.{where}.{i} = {t!r} is invalid; "
                                    "allowed: [rows, cols, stages] with 1 <= stages <= 8")
        for dtype in (lib.get("mainloop_efficiency") or {}):
            if dtype not in tensor:
                raise SpecError(f"{source}: field {lib_path}.mainloop_efficiency.{dtype} is set but the tensor "
                                f"cores run no {dtype} (compute.dense_fma_per_clk_per_sm); remove it or add the rate")
    if "fp16" not in s["dense"]["mainloop_efficiency"]:
        raise SpecError(f"{source}: missing field software.dense.mainloop_efficiency.fp16; add it to the spec")
