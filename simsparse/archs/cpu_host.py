"""`cpu_host`: `kind: cpu_simd` spec data detected from this machine.

Cores, SIMD and caches come from simsparse.hostinfo; per-level bandwidth from its cached probe
(`SIMSPARSE_SKIP_PROBE=1`: documented per-clock defaults); kernel parameters from the
calibration file of this machine (`simsparse calibrate --device cpu`) when there is one, else the
documented defaults of archs/cpu_spec.py.
"""

from __future__ import annotations

from pathlib import Path

from simsparse import hostcache, hostinfo
from simsparse.archs.cpu_spec import KIND, SCHEMA
from simsparse.specs import validate

GATHER_ELEMENTS_PER_CLK = {"avx512": 2.0, "avx2": 1.5, "sse": 1.0}
LEVEL_NAMES = {1: "l1", 2: "l2", 3: "llc", 4: "llc"}


def calibration_path(key: str) -> Path:
    return hostcache.cache_dir() / f"cpu_calibration_{key}.json"


CALIBRATION_VERSION = 1


def load_calibration(key: str) -> dict | None:
    """The stored calibration of machine `key` ({"kernels": {...}, ...}) or None; a malformed or
    other-version file is discarded with a note (hostcache.read_cache)."""
    return hostcache.read_cache(calibration_path(key), version=CALIBRATION_VERSION, what="calibration cache",
                               valid=lambda d: d["machine"] == key and _valid_kernels(d),
                               unversioned=CALIBRATION_VERSION)


def _valid_kernels(data: dict) -> bool:
    """The stored kernels pass the cpu_simd schema (so a bad file can never fail every cpu_host use)."""
    validate(data["kernels"], SCHEMA["software"]["kernels"], source="calibration")
    return "parallel_eff" not in data or hostcache.positive_number(data["parallel_eff"])


def store_calibration(key: str, data: dict) -> str:
    """Write machine `key`'s calibration (versioned, atomic); its path."""
    path = calibration_path(key)
    hostcache.write_json(path, {**data, "machine": key, "cache_version": CALIBRATION_VERSION})
    return str(path)


def levels_data(host: hostinfo.Host, bandwidth: dict) -> list[dict]:
    """memory.levels from the caches and the per-level bandwidth (innermost first, memory last)."""
    out = []
    for cache in host.caches:
        name = LEVEL_NAMES.get(cache.level, f"l{cache.level}")
        bw = bandwidth.get(name)
        if bw is None or any(lvl["name"] == name for lvl in out):
            continue
        out.append({"name": name, "bytes": float(cache.size_bytes), "shared": cache.shared_cpus > 1,
                    "per_core_bytes_per_s": float(bw["per_core_bytes_per_s"]),
                    "all_cores_bytes_per_s": float(bw["all_cores_bytes_per_s"])})
    dram = bandwidth["dram"]
    out.append({"name": "dram", "bytes": 0.0, "shared": True,
                "per_core_bytes_per_s": float(dram["per_core_bytes_per_s"]),
                "all_cores_bytes_per_s": float(dram["all_cores_bytes_per_s"])})
    if len(out) < 2:   # no cache information: one notional cache level in front of memory
        out.insert(0, {"name": "l1", "bytes": 32768.0, "shared": False,
                       "per_core_bytes_per_s": 64.0 * host.clock_hz, "all_cores_bytes_per_s": 64.0 * host.clock_hz})
    return out


def host_spec_data(*, host: hostinfo.Host | None = None, probe: bool | None = None) -> dict:
    """Plain spec data (as if read from YAML) for this machine."""
    host = host or hostinfo.detect()
    bandwidth = hostinfo.host_bandwidth(host, probe=probe)
    simd = host.simd
    data = {
        "version": 1, "kind": KIND, "name": "cpu_host",
        "description": f"{host.info.model_name}, {host.cores} usable cores (detected; machine {host.key})",
        "clock_hz": float(host.clock_hz or 2.0e9), "cores": int(host.cores),
        "simd": {"isa": simd["isa"], "fp32_lanes": simd["fp32_lanes"], "fma_ports": simd["fma_ports"],
                 "jit_fp32_lanes": simd.get("jit_fp32_lanes", 0),
                 "load_ports": simd["load_ports"], "store_ports": 1,
                 "gather_elements_per_clk": GATHER_ELEMENTS_PER_CLK[simd["isa"]],
                 "bf16": "avx512_bf16" in host.info.flags},
        "memory": {"cache_state": "warm", "levels": levels_data(host, bandwidth)},
        "software": {"threads": int(host.cores), "kernels": {}, "calibration": ""},
    }
    calib = load_calibration(host.key)
    if calib is not None:
        data["software"]["kernels"] = {k: dict(v) for k, v in calib["kernels"].items()}
        data["software"]["parallel_eff"] = float(calib.get("parallel_eff", 0.9))
        data["software"]["calibration"] = str(calibration_path(host.key))
    return data
