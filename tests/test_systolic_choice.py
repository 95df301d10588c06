"""The accelerator runs a layer in its fastest supported mode: a mask never makes it slower than dense."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from simsparse import engines
from simsparse.graph.synthetic import synthetic_gemm_work
from simsparse.archs import load_arch


@settings(max_examples=30, deadline=None)
@given(arch=st.sampled_from(["systolic_32x32", "vegeta_like", "s2ta_like"]),
       pattern=st.sampled_from(["density=0.1", "fanin=0.1", "2:4", "1:8", "density=0.5"]),
       m=st.sampled_from([1, 64, 512]), n=st.sampled_from([32, 96]), k=st.sampled_from([64, 576]),
       dram=st.sampled_from([1, 4, 64]))
def test_a_sparse_mask_is_never_slower_than_dense(arch, pattern, m, n, k, dram):
    model = load_arch(arch, overrides=[f"memory.dram_bytes_per_clk={dram}"])
    work = synthetic_gemm_work(m=m, n=n, k=k, pattern=pattern, dtype=model.default_dtype())
    sparse = engines.estimate(model.plan(work), model, "analytic")
    dense = engines.estimate(model.plan(work, dense=True), model, "analytic")
    assert sparse.cycles <= dense.cycles * (1 + 1e-9)
