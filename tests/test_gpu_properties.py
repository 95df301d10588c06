"""Invariants of the GPU model on every shipped GPU spec under both validated software stacks:
more bandwidth, more SMs (on the same power budget per SM) or a higher clock never make a layer
slower, and 2:4 is never faster than the sparse/dense math ratio allows."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simsparse.archs import arch_data, load_arch, shipped_arch_names
from simsparse.archs.gpu_call import closed_form_latency_s, library_call
from simsparse.records import Gemm

GPUS = tuple(a for a in shipped_arch_names() if arch_data(a)[0].get("kind") == "gpu_sparse_tensor_core")
SOFTWARE = ("kernel", "pytorch-eager")
DIMS = st.sampled_from([1, 8, 33, 128, 768, 3072, 12288])
CASE = dict(arch=st.sampled_from(GPUS), software=st.sampled_from(SOFTWARE), m=DIMS, n=DIMS, k=DIMS, sparse=st.booleans())
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def latency(model, gemm: Gemm, *, sparse: bool) -> float:
    spec = model.spec
    lib = spec.sparse_library if sparse else spec.dense
    return closed_form_latency_s(spec, library_call(spec, lib, gemm, sparse=sparse))


def _variant(arch: str, software: str, kind: str):
    spec = load_arch(arch).spec
    if kind == "bandwidth":
        sets = [f"memory.hbm_bytes_per_s={spec.hbm_bytes_per_s * 1.5:g}",
                f"memory.l2_bytes_per_clk={spec.l2_bytes_per_clk * 1.4:g}"]
    elif kind == "sms":                      # more SMs, each with the same share of the power budget
        sms = int(spec.sms * 1.25)
        sets = [f"compute.sms={sms}"]
        if spec.power is not None:
            p = spec.power
            sets.append(f"power.tdp_w={p.idle_w + (p.tdp_w - p.idle_w) * sms / spec.sms:g}")
    else:
        sets = [f"clock_hz={spec.clock_hz * 1.2:g}"]
    return load_arch(arch).with_software(software), load_arch(arch, sets).with_software(software)


@pytest.fixture(scope="module")
def variants():
    cache: dict = {}

    def get(arch: str, software: str, kind: str):
        if (arch, software, kind) not in cache:
            cache[(arch, software, kind)] = _variant(arch, software, kind)
        return cache[(arch, software, kind)]
    return get


def _never_slower(variants, kind, arch, software, m, n, k, sparse):
    base, more = variants(arch, software, kind)
    sparse = sparse and base.spec.has_sparse_tensor_cores
    g = Gemm(m=m, n=n, k=k, dtype="fp16")
    assert latency(more, g, sparse=sparse) <= latency(base, g, sparse=sparse) * (1 + 1e-12)


@SETTINGS
@given(**CASE)
def test_latency_never_rises_with_more_bandwidth(variants, arch, software, m, n, k, sparse):
    _never_slower(variants, "bandwidth", arch, software, m, n, k, sparse)


@SETTINGS
@given(**CASE)
def test_latency_never_rises_with_more_sms_on_the_same_power_per_sm(variants, arch, software, m, n, k, sparse):
    _never_slower(variants, "sms", arch, software, m, n, k, sparse)


@SETTINGS
@given(**CASE)
def test_latency_never_rises_with_a_higher_clock(variants, arch, software, m, n, k, sparse):
    _never_slower(variants, "clock", arch, software, m, n, k, sparse)


@SETTINGS
@given(arch=st.sampled_from(GPUS), software=st.sampled_from(SOFTWARE), m=DIMS, n=DIMS, k=DIMS,
       dtype=st.sampled_from(["fp16", "bf16"]))
def test_two_four_is_never_faster_than_the_sparse_dense_math_ratio(arch, software, m, n, k, dtype):
    """The math ratio: 2:4 issues half the MACs, at the rate its library's K-loop sustains against
    the dense one's. (16-bit only: int8 and fp8 calls of the two libraries write different output
    dtypes and have different tile sets, and measured int8 speedups do exceed 2x: up to 2.41 in the
    kernel corpus, where cuBLASLt's int8 kernels are the slower ones.)"""
    model = load_arch(arch).with_software(software)
    spec = model.spec
    if not spec.has_sparse_tensor_cores or dtype not in spec.tensor_dtypes:
        return
    g = Gemm(m=m, n=n, k=k, dtype=dtype)
    ratio = latency(model, g, sparse=False) / latency(model, g, sparse=True)
    rates = spec.sparse_library.mainloop_efficiency[dtype] / spec.dense.mainloop_efficiency[dtype]
    assert ratio <= spec.sparse_speedup * max(1.0, rates) * (1 + 1e-9)
