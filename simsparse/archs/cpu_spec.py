"""`kind: cpu_simd` specs: the YAML schema, the frozen spec record, and the per-kernel parameters.

A spec names the core (clock, SIMD lanes, FMA/load/store ports, gather throughput, latencies),
the memory levels innermost first (capacity, read bandwidth for one core and for all cores), the
software (threads, cache state, parallel efficiency) and, per kernel, the few effective
parameters that calibration fits (`simsparse.calibrate`):

    overhead_s           fixed time per call (Python + torch/numba dispatch, allocations)
    parallel_overhead_s  extra per call when it runs on more than one thread (fork/join)
    compute_eff          fraction of the port-model throughput the inner loop reaches
    bw_eff               fraction of the probed bandwidth its streams reach
    parallel_eff         fraction of ideal thread scaling this kernel reaches (0 = the spec's
                         software.parallel_eff): measured here, MKL spmm and numba's batched
                         paths gain only ~1.2-1.5x from 2 threads while dense sgemv gains ~1.9x
    batched_eff          extra factor on both for the batched code path; NOT fitted (1.0): the
                         batch regimes are loop models of their own (archs/cpu_loops.py). Kept so
                         specs and stored calibrations that name it still load.

Documented defaults (KERNEL_DEFAULTS) apply when a spec leaves them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from simsparse.errors import SpecError
from simsparse.masks.formats import FORMATS
from simsparse.specs import Field, ListOf, MapOf, Optional, validate

KIND = "cpu_simd"
CACHE_STATES = ("warm", "cold")

# Per-kernel defaults (before calibration). Overheads are eager-PyTorch / numba call costs on a
# ~3 GHz core; efficiencies are typical sustained fractions of port peak and probed bandwidth.
KERNEL_DEFAULTS: dict[str, dict[str, float]] = {
    "dense": {"overhead_s": 6e-6, "parallel_overhead_s": 4e-6, "compute_eff": 0.85, "bw_eff": 0.9, "batched_eff": 1.0},
    "csr": {"overhead_s": 8e-6, "parallel_overhead_s": 6e-6, "compute_eff": 0.5, "bw_eff": 0.8, "batched_eff": 1.0},
    "condensed": {"overhead_s": 8e-6, "parallel_overhead_s": 8e-6, "compute_eff": 0.8, "bw_eff": 0.8, "batched_eff": 1.0},
    "nm": {"overhead_s": 8e-6, "parallel_overhead_s": 8e-6, "compute_eff": 0.7, "bw_eff": 0.8, "batched_eff": 1.0},
    "shrunk": {"overhead_s": 6e-6, "parallel_overhead_s": 4e-6, "compute_eff": 0.85, "bw_eff": 0.9,
               "batched_eff": 1.0},
}
PARAM_RANGES = {"overhead_s": (0.0, 1e-2), "parallel_overhead_s": (0.0, 1e-2),
                "compute_eff": (0.01, 4.0), "bw_eff": (0.01, 4.0), "batched_eff": (0.05, 20.0),
                "parallel_eff": (0.0, 1.0)}

_LEVEL = {
    "name": Field(str),
    "bytes": Field(float, min=0, doc="capacity per core (private) or in total (shared); 0 = unbounded"),
    "shared": Field(bool),
    "per_core_bytes_per_s": Field(float, min=1e6),
    "all_cores_bytes_per_s": Field(float, min=1e6),
}
_KPARAMS = {name: Field(float, required=False, default=None, min=lo, max=hi)
            for name, (lo, hi) in PARAM_RANGES.items()}

SCHEMA = {
    "version": Field(int),
    "kind": Field(str, choices=(KIND,)),
    "name": Field(str),
    "description": Field(str, required=False, default=""),
    "clock_hz": Field(float, min=1e8, max=1e10),
    "cores": Field(int, min=1, max=4096),
    "simd": {
        "isa": Field(str, choices=("avx512", "avx2", "sse", "neon", "sve")),
        "fp32_lanes": Field(int, min=1, max=64),
        "jit_fp32_lanes": Field(int, required=False, default=0, min=0, max=64,
                                doc="lanes numba's LLVM vectorises with (0 = fp32_lanes); LLVM prefers "
                                    "256-bit vectors on AVX-512 Intel targets, so 8 there"),
        "fma_ports": Field(int, min=1, max=8),
        "load_ports": Field(int, min=1, max=8),
        "store_ports": Field(int, required=False, default=1, min=1, max=8),
        "gather_elements_per_clk": Field(float, min=0.05, max=64),
        "fma_latency_clk": Field(float, required=False, default=4.0, min=1, max=64),
        "store_forward_clk": Field(float, required=False, default=5.0, min=1, max=64),
        "hsum_clk": Field(float, required=False, default=4.0, min=0, max=256),
        "row_overhead_clk": Field(float, required=False, default=2.0, min=0, max=1024),
        "bf16": Field(bool, required=False, default=False),
    },
    "memory": {
        "cache_state": Field(str, required=False, default="warm", choices=CACHE_STATES),
        "fill_fraction": Field(float, required=False, default=0.75, min=0.05, max=1.0),
        "gathered_row_efficiency": Field(float, required=False, default=1.0, min=0.01, max=1.0,
                                         doc="rows of x^T read per nonzero (batched sparse loops): measured "
                                             "~64 B per L2 bandwidth share, i.e. 1.0"),
        "gather_loop_efficiency": Field(float, required=False, default=0.5, min=0.01, max=1.0,
                                        doc="values/indices streamed by a gather-dot loop (batch 1 sparse): "
                                            "measured ~12-13 GB/s from LLC vs ~26 GB/s for sgemv here"),
        "cross_core_efficiency": Field(float, required=False, default=0.35, min=0.01, max=1.0,
                                       doc="lines just written by another core (x^T after a serial transpose), "
                                           "as a fraction of the LLC per-core bandwidth: measured 8-14 GB/s "
                                           "vs 29 GB/s here"),
        "levels": ListOf(_LEVEL, min_len=2),
    },
    "software": {
        "threads": Field(int, min=1, max=4096),
        "parallel_eff": Field(float, required=False, default=0.9, min=0.05, max=1.0),
        "dispatch_s": Field(float, required=False, default=3e-6, min=0, max=1e-2),
        "kernels": Optional(MapOf(_KPARAMS, keys=FORMATS), default={}),
        "calibration": Field(str, required=False, default=""),
    },
}


@dataclass(frozen=True)
class MemLevel:
    name: str
    bytes: float                 # per core when private, in total when shared; 0 = unbounded
    shared: bool
    per_core_bytes_per_s: float
    all_cores_bytes_per_s: float

    def bytes_per_s(self, threads: int) -> float:
        """Read bandwidth available to `threads` cores together."""
        if not self.shared:
            return self.per_core_bytes_per_s * threads
        return min(self.per_core_bytes_per_s * threads, max(self.all_cores_bytes_per_s,
                                                            self.per_core_bytes_per_s))

    def capacity_per_thread(self, threads: int) -> float:
        if self.bytes <= 0:
            return float("inf")
        return self.bytes if not self.shared else self.bytes / max(1, threads)


@dataclass(frozen=True)
class KernelParams:
    overhead_s: float
    parallel_overhead_s: float
    compute_eff: float
    bw_eff: float
    batched_eff: float = 1.0
    parallel_eff: float = 0.0        # 0: the spec's software.parallel_eff

    def for_phase(self, batched: bool) -> "KernelParams":
        """The efficiencies that apply to a phase of the batch-1 or the batched code path."""
        if not batched or self.batched_eff == 1.0:
            return self
        return replace(self, compute_eff=self.compute_eff * self.batched_eff, bw_eff=self.bw_eff * self.batched_eff)


@dataclass(frozen=True)
class CpuSpec:
    name: str
    description: str
    clock_hz: float
    cores: int
    isa: str
    fp32_lanes: int
    fma_ports: int
    load_ports: int
    store_ports: int
    gather_elements_per_clk: float
    fma_latency_clk: float
    store_forward_clk: float
    hsum_clk: float
    row_overhead_clk: float
    bf16: bool
    cache_state: str
    fill_fraction: float
    gathered_row_efficiency: float
    gather_loop_efficiency: float
    levels: tuple[MemLevel, ...]
    threads: int
    parallel_eff: float
    dispatch_s: float
    cross_core_efficiency: float = 0.35
    kernels: Mapping[str, KernelParams] = field(default_factory=dict)
    calibration: str = ""        # where the kernel parameters came from ("" = documented defaults)
    jit_fp32_lanes: int = 0      # lanes of the numba kernels' vector code (0 = fp32_lanes)

    @property
    def jit_lanes(self) -> int:
        return self.jit_fp32_lanes or self.fp32_lanes

    def level(self, name: str) -> MemLevel:
        for lvl in self.levels:
            if lvl.name == name:
                return lvl
        raise KeyError(name)

    def params(self, kernel: str) -> KernelParams:
        return self.kernels[kernel]


def kernel_params(raw: Mapping[str, Mapping[str, float]] | None) -> dict[str, KernelParams]:
    """Every kernel's parameters: the given ones over the documented defaults."""
    raw = raw or {}
    out = {}
    for name in FORMATS:
        values = dict(KERNEL_DEFAULTS[name])
        values.update({k: float(v) for k, v in (raw.get(name) or {}).items() if v is not None})
        out[name] = KernelParams(**values)
    return out


def parse_cpu_spec(data: dict, *, source: str) -> CpuSpec:
    """Validate plain spec data (SpecError naming file, field, value) and build the record."""
    d = validate(data, SCHEMA, source=source)
    levels = tuple(MemLevel(**lvl) for lvl in d["memory"]["levels"])
    names = [lvl.name for lvl in levels]
    if len(set(names)) != len(names):
        raise SpecError(f"{source}: field memory.levels has duplicate level names {names}; name each once")
    if levels[-1].bytes != 0:
        raise SpecError(f"{source}: field memory.levels.{len(levels) - 1}.bytes = {levels[-1].bytes!r} "
                        "is invalid; allowed: 0 (the last level is main memory, unbounded)")
    simd, sw, mem = d["simd"], d["software"], d["memory"]
    return CpuSpec(
        name=d["name"], description=d["description"], clock_hz=d["clock_hz"], cores=d["cores"],
        isa=simd["isa"], fp32_lanes=simd["fp32_lanes"], fma_ports=simd["fma_ports"],
        load_ports=simd["load_ports"], store_ports=simd["store_ports"],
        gather_elements_per_clk=simd["gather_elements_per_clk"], fma_latency_clk=simd["fma_latency_clk"],
        store_forward_clk=simd["store_forward_clk"], hsum_clk=simd["hsum_clk"],
        row_overhead_clk=simd["row_overhead_clk"], bf16=simd["bf16"], jit_fp32_lanes=simd["jit_fp32_lanes"],
        cache_state=mem["cache_state"], fill_fraction=mem["fill_fraction"],
        gathered_row_efficiency=mem["gathered_row_efficiency"],
        gather_loop_efficiency=mem["gather_loop_efficiency"], levels=levels,
        cross_core_efficiency=mem["cross_core_efficiency"],
        threads=sw["threads"], parallel_eff=sw["parallel_eff"], dispatch_s=sw["dispatch_s"],
        kernels=kernel_params(sw["kernels"]), calibration=sw["calibration"])


def with_threads(spec: CpuSpec, threads: int) -> CpuSpec:
    """The same machine run at another thread count."""
    return replace(spec, threads=int(threads))
