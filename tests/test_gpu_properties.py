"""Invariants of the GPU model: more bandwidth or more SMs never makes a layer slower."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simsparse.archs import load_arch
from simsparse.archs.gpu_call import closed_form_latency_s, library_call
from simsparse.records import Gemm

DIMS = st.sampled_from([1, 8, 33, 128, 768, 3072, 12288])
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def latency(model, gemm: Gemm, *, sparse: bool) -> float:
    spec = model.spec
    lib = spec.sparse_library if sparse else spec.dense
    return closed_form_latency_s(spec, library_call(spec, lib, gemm, sparse=sparse))


@pytest.fixture(scope="module")
def variants():
    return {
        "base": load_arch("a100_2to4"),
        "more_bw": load_arch("a100_2to4", overrides=["memory.hbm_bytes_per_s=3.0e12", "memory.l2_bytes_per_clk=7000"]),
        "more_sms": load_arch("a100_2to4", overrides=["compute.sms=132"]),
    }


@SETTINGS
@given(m=DIMS, n=DIMS, k=DIMS, sparse=st.booleans())
def test_latency_never_rises_with_more_bandwidth(variants, m, n, k, sparse):
    g = Gemm(m=m, n=n, k=k, dtype="fp16")
    assert latency(variants["more_bw"], g, sparse=sparse) <= latency(variants["base"], g, sparse=sparse) * (1 + 1e-12)


@SETTINGS
@given(m=DIMS, n=DIMS, k=DIMS, sparse=st.booleans())
def test_latency_never_rises_with_more_sms(variants, m, n, k, sparse):
    g = Gemm(m=m, n=n, k=k, dtype="fp16")
    assert latency(variants["more_sms"], g, sparse=sparse) <= latency(variants["base"], g, sparse=sparse) * (1 + 1e-12)


@SETTINGS
@given(m=DIMS, n=DIMS, k=DIMS)
def test_two_four_is_never_more_than_twice_as_fast_as_dense(variants, m, n, k):
    g = Gemm(m=m, n=n, k=k, dtype="fp16")
    model = variants["base"]
    assert latency(model, g, sparse=False) / latency(model, g, sparse=True) <= 2.0
