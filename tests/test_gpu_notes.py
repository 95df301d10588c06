"""The GPU model says so when converting a layer to 2:4 makes it slower than dense."""

from simsparse import api


def test_a_decode_shape_in_eager_pytorch_notes_that_dense_would_be_faster():
    r = api.evaluate(arch="a100_2to4", gemm="1,4096,4096", pattern="2:4", software="pytorch-eager")
    assert r.speedup_vs_dense < 1.0
    assert any("keeping this layer dense would be faster" in n for n in r.estimates[0].notes)


def test_a_large_2to4_gemm_carries_no_such_note():
    r = api.evaluate(arch="a100_2to4", gemm="12288,768,3072", pattern="2:4")
    assert r.speedup_vs_dense > 1.0
    assert not any("dense would be faster" in n for n in r.estimates[0].notes)
