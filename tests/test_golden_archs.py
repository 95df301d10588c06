"""Golden files for the shipped arch specs: a fixed set of GEMMs per arch must keep its estimates
(within 1e-6 relative) unless a model change is intended. After an intended change, regenerate:

    SIMSPARSE_REGEN_GOLDEN=1 python -m pytest tests/test_golden_archs.py

and say in the commit why the numbers moved. `cpu_host` is machine-specific and not golden.
"""

import json
import os
from pathlib import Path

import pytest

from simsparse import api
from simsparse.archs import arch_data, load_arch, shipped_arch_names

GOLDEN = Path(__file__).parent / "golden" / "archs.json"
OTHER_ARCHS = ("systolic_32x32", "systolic_128x128", "s2ta_like", "vegeta_like", "spr_socket")
CASES = (("1,4096,4096", "2:4"), ("3072,768,3072", "2:4"), ("196608,768,3072", "dense"),
         ("64,256,576", "1:8"), ("16,768,3072", "fanin=0.1"), ("256,512,1024", "channels=0.5"))
# every shipped GPU spec under both validated software stacks, with device-bound 2:4 GEMMs: under
# pytorch-eager the small 2:4 rows above sit at the host floor, where a device-side change would
# not show
GPU_ARCHS = tuple(name for name in shipped_arch_names()
                  if arch_data(name)[0].get("kind") == "gpu_sparse_tensor_core")
SOFTWARE = ("kernel", "pytorch-eager")
GPU_CASES = (("49152,768,3072", "2:4"), ("16384,4096,4096", "2:4"))


def _row(r) -> dict:
    return {"format": r.estimates[0].format, "latency_s": r.total.latency_s,
            "dense_latency_s": r.dense_total.latency_s, "flops_executed": r.total.flops_executed}


def current() -> dict:
    out = {}
    for arch in OTHER_ARCHS:
        for gemm, pattern in CASES:
            out[f"{arch} {gemm} {pattern}"] = _row(api.evaluate(arch=arch, gemm=gemm, pattern=pattern))
    for arch in GPU_ARCHS:
        for software in SOFTWARE:
            for gemm, pattern in CASES + GPU_CASES:
                r = api.evaluate(arch=arch, gemm=gemm, pattern=pattern, software=software)
                out[f"{arch} {software} {gemm} {pattern}"] = _row(r)
    return out


def test_shipped_archs_keep_their_golden_estimates():
    now = current()
    if os.environ.get("SIMSPARSE_REGEN_GOLDEN"):
        GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    assert set(now) == set(golden)
    for key, want in golden.items():
        got = now[key]
        assert got["format"] == want["format"], key
        for field in ("latency_s", "dense_latency_s", "flops_executed"):
            assert got[field] == pytest.approx(want[field], rel=1e-6), f"{key}: {field}"


def test_the_golden_file_holds_every_gpu_spec_under_both_software_stacks():
    golden = json.loads(GOLDEN.read_text())
    assert len(GPU_ARCHS) >= 7
    for arch in GPU_ARCHS:
        for software in SOFTWARE:
            assert sum(key.startswith(f"{arch} {software} ") for key in golden) == len(CASES + GPU_CASES), (arch, software)


def test_the_golden_file_holds_device_bound_2to4_rows_on_every_sparse_gpu():
    golden = json.loads(GOLDEN.read_text())
    for arch in GPU_ARCHS:
        model = load_arch(arch).with_software("pytorch-eager")
        if not model.spec.has_sparse_tensor_cores:
            continue
        floor = model.spec.sparse_library.host_overhead_s
        above = [key for key, row in golden.items()
                 if key.startswith(f"{arch} pytorch-eager ") and row["format"] == "2:4" and row["latency_s"] > 2 * floor]
        assert len(above) >= 2, f"{arch}: no 2:4 golden row is device-bound (all at the {floor * 1e6:.0f} us host floor)"
