"""Spec of a GPU with (or, without `compute.sparse`, without) sparse tensor cores
(`kind: gpu_sparse_tensor_core`): schema and frozen records.

The YAML is validated here (file, field, value and allowed range in every error) and turned
into `GpuSpec`; raw dicts never travel further in. Three parts:
- the silicon: SMs, tensor-core rate per dtype, clocks, memory, and (optional `power:`) the
  board power limit that lowers the sustained clock under heavy tensor-core load (here);
- the kernel libraries (`software.dense`, cuBLAS, and the sparse back ends `software.backends`,
  cuSPARSELt and CUTLASS) and the software stacks (`software.profiles`, chosen with
  `--software NAME`: how a caller drives those libraries): archs/gpu_software.py. `kernel` (the
  library alone, best algorithm: the default) and `pytorch-eager` (`to_sparse_semi_structured`
  in eager PyTorch) exist in every spec (checked here); a spec may define more;
- the optional `cuda_cores:` block (the unstructured formats' CUDA-core facts):
  archs/gpu_cuda_spec.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from simsparse.archs.gpu_cuda_spec import CUDA_CORES_SCHEMA, CudaCoreSpec, parse_cuda_cores
from simsparse.archs.gpu_software import (GPU_DTYPES, LIBRARY_SCHEMA, PROFILE_SCHEMA, SPARSE_BACKENDS, KernelLibrary,
                                          SoftwareProfile, check_libraries, parse_profile)
from simsparse.errors import SpecError
from simsparse.specs import Field, MapOf, Optional, validate

REQUIRED_PROFILES = ("kernel", "pytorch-eager")
DEFAULT_PROFILE = "kernel"

POWER_SCHEMA = {
    "tdp_w": Field(float, min=10.0, max=5000.0, doc="board power limit (datasheet)"),
    "idle_w": Field(float, min=0.0, max=2000.0, doc="power that does not scale with tensor-core load"),
    "tensor_w_per_sm_at_1ghz": Field(float, min=0.0, max=100.0,
                                     doc="power of one SM issuing dense fp16 MMAs at 1 GHz (cubic in clock)"),
    "sparse_power_ratio": Field(float, required=False, default=1.0, min=0.25, max=4.0),
    "dtype_power_ratio": MapOf(Field(float, min=0.25, max=4.0), keys=GPU_DTYPES, required=False, default={}),
    "min_clock_hz": Field(float, min=1e8, max=5e9, doc="the clock the power limit never goes below (base clock)"),
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
        "l2_resident_share": Field(float, required=False, default=0.5, min=0.05, max=1.0,
                                   doc="share of the L2 that keeps a repeated call's tensors between calls"),
        "smem_bytes_per_sm": Field(int, min=16384, max=1 << 22),
        "sm_load_bytes_per_clk": Field(float, min=8, max=4096),
        "latency_s": Field(float, min=0.0, max=1e-4),
    },
    "power": Optional(POWER_SCHEMA),
    "software": {
        "backend": Field(str, required=False, default=""),
        "profile": Field(str, required=False, default=DEFAULT_PROFILE,
                         doc="the active software stack (--software NAME)"),
        "dense": LIBRARY_SCHEMA,
        "backends": MapOf(LIBRARY_SCHEMA, keys=SPARSE_BACKENDS, required=False, default={}),
        "profiles": MapOf(PROFILE_SCHEMA),
    },
    # documentation with teeth: `fitted:` field -> the dev rows it is fitted on (CORPUS [GPU NAME]);
    # `borrowed:` field -> SPEC or SPEC:FIELD whose value it repeats as a prior (tests check both)
    "fitted": Optional(MapOf(Field(str))),
    "borrowed": Optional(MapOf(Field(str))),
    "cuda_cores": CUDA_CORES_SCHEMA,   # optional: the unstructured formats on CUDA cores (gpu_cuda_spec.py)
}


@dataclass(frozen=True)
class PowerLimit:
    """Board power limit: P = idle_w + (tensor-core power of the busy SMs) <= tdp_w, the tensor power
    cubic in the clock (dynamic power ~ f V^2 with the voltage rising with f on the DVFS curve)."""

    tdp_w: float
    idle_w: float
    tensor_w_per_sm_at_1ghz: float
    sparse_power_ratio: float
    dtype_power_ratio: Mapping[str, float]
    min_clock_hz: float


@dataclass(frozen=True, eq=False)
class GpuSpec:
    name: str
    clock_hz: float                                # tensor clock the datasheet peaks are quoted at (the highest)
    sms: int
    dense_fma_per_clk_per_sm: Mapping[str, int]   # tensor-core dtypes this GPU runs (fp16 at least)
    sparse_pattern: str | None                     # None: no sparse tensor cores (a dense-only GPU)
    sparse_speedup: float
    max_ctas_per_sm: int
    hbm_bytes_per_s: float
    hbm_efficiency: float
    l2_bytes: float
    l2_bytes_per_clk: float
    l2_resident_share: float
    smem_bytes_per_sm: int
    sm_load_bytes_per_clk: float
    latency_s: float
    backend: str
    software: str                                  # the active profile
    profiles: Mapping[str, SoftwareProfile]
    power: PowerLimit | None = None
    description: str = ""
    registers_bytes_per_sm: int = 262144

    @property
    def has_sparse_tensor_cores(self) -> bool:
        return self.sparse_pattern is not None

    @property
    def profile(self) -> SoftwareProfile:
        return self.profiles[self.software]

    @property
    def dense(self) -> KernelLibrary:
        return self.profile.dense

    @property
    def backends(self) -> Mapping[str, KernelLibrary]:
        return self.profile.backends

    @property
    def launch_gap_s(self) -> float:
        return self.profile.launch_gap_s

    @property
    def cuda_cores(self) -> CudaCoreSpec | None:
        """The CUDA-core block under the active stack (None: no condensed / csr / blocked-ell formats)."""
        return self.profile.cuda_cores

    def with_dense_library(self, lib: KernelLibrary, **changes) -> "GpuSpec":
        """The same GPU whose active stack's dense library is `lib` (a derived library such as the CUDA
        cores' SIMT SGEMM), with other GpuSpec `changes`."""
        profile = replace(self.profile, dense=lib)
        return replace(self, profiles={**self.profiles, self.software: profile}, **changes)

    @property
    def sparse_library(self) -> KernelLibrary:
        if not self.has_sparse_tensor_cores:
            raise SpecError(f"{self.name} has no sparse tensor cores (no compute.sparse block); "
                            "it runs masks dense (or, with a cuda_cores block, on the CUDA cores)")
        return self.backends[self.backend]

    @property
    def tensor_dtypes(self) -> tuple[str, ...]:
        """The GPU dtypes its tensor cores run, in GPU_DTYPES order."""
        return tuple(d for d in GPU_DTYPES if d in self.dense_fma_per_clk_per_sm)

    @property
    def hbm_bytes_per_clk(self) -> float:
        """Achievable HBM bytes per clock at `clock_hz` (peak x efficiency)."""
        return self.hbm_bytes_per_s * self.hbm_efficiency / self.clock_hz

    def with_software(self, name: str) -> "GpuSpec":
        """The same GPU under another software stack (SpecError naming the known ones)."""
        if name not in self.profiles:
            raise SpecError(f"{self.name}: unknown software stack {name!r}; known: {', '.join(self.profiles)}")
        return replace(self, software=name)


def _check_cross_fields(d: dict, source: str) -> None:
    s = d["software"]
    backends = s["backends"] or {}
    if d["compute"]["sparse"] is None:
        if s["backend"] or backends:
            raise SpecError(f"{source}: field software.backend(s) is set but compute.sparse is absent; "
                            "a dense-only GPU has no sparse back end: remove them or add compute.sparse")
    elif s["backend"] not in backends:
        raise SpecError(f"{source}: field software.backend = {s['backend']!r} is invalid; "
                        f"allowed: {', '.join(sorted(backends)) or '(no software.backends given)'}")
    missing = [p for p in REQUIRED_PROFILES if p not in s["profiles"]]
    if missing:
        raise SpecError(f"{source}: missing field software.profiles.{missing[0]}; every GPU spec defines the "
                        f"software stacks {', '.join(REQUIRED_PROFILES)}")
    if s["profile"] not in s["profiles"]:
        raise SpecError(f"{source}: field software.profile = {s['profile']!r} is invalid; "
                        f"allowed: {', '.join(s['profiles'])}")
    for name, p in s["profiles"].items():
        base = p["on_top_of"]
        if base and (base not in s["profiles"] or s["profiles"][base]["on_top_of"]):
            raise SpecError(f"{source}: field software.profiles.{name}.on_top_of = {base!r} is invalid; allowed: "
                            "a stack of this spec that is not itself on top of another")
        for k in (p["backends"] or {}):
            if k not in backends:
                raise SpecError(f"{source}: field software.profiles.{name}.backends.{k} changes a back end the "
                                f"spec does not define (software.backends: {', '.join(backends) or 'none'})")
        if p["cuda_cores"] and d.get("cuda_cores") is None:
            raise SpecError(f"{source}: field software.profiles.{name}.cuda_cores is set but the spec has no "
                            "cuda_cores block; remove it or add the block")
    if "fp16" not in d["compute"]["dense_fma_per_clk_per_sm"]:
        raise SpecError(f"{source}: missing field compute.dense_fma_per_clk_per_sm.fp16; add it to the spec "
                        "(dtypes the tensor cores lack, e.g. bf16 and tf32 before Ampere, may be left out)")
    power = d["power"]
    if power is not None and not power["idle_w"] < power["tdp_w"]:
        raise SpecError(f"{source}: field power.idle_w = {power['idle_w']!r} is invalid; allowed: below "
                        f"power.tdp_w ({power['tdp_w']!r})")
    if power is not None and power["min_clock_hz"] > d["clock_hz"]:
        raise SpecError(f"{source}: field power.min_clock_hz = {power['min_clock_hz']!r} is invalid; allowed: "
                        f"at most clock_hz ({d['clock_hz']!r})")


def _power(p: dict | None) -> PowerLimit | None:
    if p is None:
        return None
    return PowerLimit(tdp_w=p["tdp_w"], idle_w=p["idle_w"], tensor_w_per_sm_at_1ghz=p["tensor_w_per_sm_at_1ghz"],
                      sparse_power_ratio=p["sparse_power_ratio"], dtype_power_ratio=dict(p["dtype_power_ratio"] or {}),
                      min_clock_hz=p["min_clock_hz"])


def _refuse_retired_fields(data: dict, source: str) -> None:
    software = data.get("software")
    for old in ("include_host_overhead", "launch_gap_s"):
        if isinstance(software, dict) and old in software:
            raise SpecError(f"{source}: field software.{old} was replaced by software stacks: move it into "
                            "software.profiles.NAME (launch_gap_s; host time per library: host_overhead_s) and "
                            "pick one with --software kernel|pytorch-eager")


def parse_gpu_spec(data: dict, *, source: str) -> GpuSpec:
    """Validate plain YAML data and build the frozen `GpuSpec` (SpecError naming file/field/value)."""
    _refuse_retired_fields(data, source)
    d = validate(data, GPU_SCHEMA, source=source)
    _check_cross_fields(d, source)
    check_libraries(d, source)
    c, m, s = d["compute"], d["memory"], d["software"]
    sparse = c["sparse"] or {"pattern": None, "speedup": 1.0}
    cuda = parse_cuda_cores(d, source=source)
    return GpuSpec(
        name=d["name"], clock_hz=d["clock_hz"], sms=c["sms"],
        dense_fma_per_clk_per_sm=dict(c["dense_fma_per_clk_per_sm"]),
        sparse_pattern=sparse["pattern"], sparse_speedup=sparse["speedup"],
        max_ctas_per_sm=c["max_ctas_per_sm"], hbm_bytes_per_s=m["hbm_bytes_per_s"],
        hbm_efficiency=m["hbm_efficiency"], l2_bytes=m["l2_bytes"], l2_bytes_per_clk=m["l2_bytes_per_clk"],
        l2_resident_share=m["l2_resident_share"],
        smem_bytes_per_sm=m["smem_bytes_per_sm"], sm_load_bytes_per_clk=m["sm_load_bytes_per_clk"],
        latency_s=m["latency_s"], backend=s["backend"], software=s["profile"],
        profiles={name: parse_profile(name, p, s, cuda) for name, p in s["profiles"].items()}, power=_power(d["power"]),
        description=d.get("description") or "", registers_bytes_per_sm=c.get("registers_bytes_per_sm") or 262144)
