import numpy as np
import pytest
import torch
import torch.nn.functional as F

from simsparse.errors import GeometryError
from simsparse.graph.catalog import dense_macs_per_sample, load_workload
from simsparse.graph.lower import layer_works, lower, op_gemm, shrunk_gemm
from simsparse.records import Op, Workload


def _conv(**kw):
    base = dict(name="c.weight", kind="conv", input_shape=(8, 11, 13), weight_shape=(16, 8, 3, 3))
    base.update(kw)
    return Op(**base)


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    ((1, 1), (0, 0), (1, 1), 1), ((2, 2), (1, 1), (1, 1), 1), ((1, 2), (2, 0), (2, 1), 1),
    ((1, 1), (1, 1), (1, 1), 4), ((2, 2), (1, 1), (1, 1), 8)])
def test_conv_lowering_matches_torch_output_size(stride, padding, dilation, groups):
    op = _conv(weight_shape=(16, 8 // groups, 3, 3), stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = F.conv2d(torch.zeros(1, 8, 11, 13), torch.zeros(16, 8 // groups, 3, 3), stride=stride, padding=padding,
                 dilation=dilation, groups=groups)
    g = op_gemm(op, batch=3)
    assert (g.m, g.n, g.k, g.count) == (3 * y.shape[2] * y.shape[3], 16 // groups, (8 // groups) * 9, groups)


def test_depthwise_conv_is_one_tiny_gemm_per_channel():
    g = op_gemm(_conv(weight_shape=(8, 1, 3, 3), padding=(1, 1), groups=8), batch=2)
    assert (g.n, g.k, g.count) == (1, 9, 8)


def test_linear_rows_are_batch_times_tokens():
    g = op_gemm(Op(name="l.weight", kind="linear", weight_shape=(30, 20), tokens=7), batch=4)
    assert (g.m, g.n, g.k) == (28, 30, 20)


def test_attention_matmul_is_batched_over_batch_and_heads():
    g = op_gemm(Op(name="a.qk", kind="matmul", gemm_mnk=(197, 197, 64), count=12), batch=8)
    assert (g.m, g.n, g.k, g.count) == (197, 197, 64, 96)


def test_lowered_macs_scale_linearly_with_batch():
    wl = load_workload("resnet50")
    assert sum(g.macs for _, g in lower(wl, batch=8) if g) == 8 * dense_macs_per_sample(wl)


def test_non_gemm_ops_become_memory_work_in_dtype_bytes():
    wl = Workload(name="w", input_shape=(4,), ops=(
        Op(name="fc.weight", kind="linear", weight_shape=(4, 4)),
        Op(name="act", kind="elementwise", elements_in=4, elements_out=4)))
    work = layer_works(wl, batch=3, dtype="fp16", masks={})
    assert work[1].kind == "memory" and work[1].bytes_moved == (4 + 4) * 3 * 2 and work[1].elements == 12


def test_unmasked_layer_is_dense():
    wl = Workload(name="w", input_shape=(4,), ops=(Op(name="fc.weight", kind="linear", weight_shape=(4, 6)),))
    (w,) = layer_works(wl, batch=2, dtype="fp16", masks={})
    assert w.mask is None and w.pattern is None and w.nnz == 24


def test_conv_mask_is_gemm_oriented_with_cin_innermost_and_shrunk_drops_dead_channels():
    op = _conv(weight_shape=(6, 4, 3, 3), input_shape=(4, 5, 5), padding=(1, 1))
    mask = np.ones((6, 4, 3, 3), bool)
    mask[2] = False            # output channel 2 removed
    mask[:, 1] = False         # input channel 1 removed everywhere
    mask[0, 3, 0, 0] = False
    (w,) = layer_works(Workload(name="w", input_shape=(4, 5, 5), ops=(op,)), batch=1, dtype="fp16",
                       masks={"c.weight": mask})
    assert w.mask.shape == (6, 36)
    assert not w.mask[0, 3]    # (kh=0, kw=0, cin=3) is column 3 when Cin is innermost
    shrunk = shrunk_gemm(w.gemm, w.pattern)
    assert (shrunk.n, shrunk.k) == (5, 27)
    assert w.pattern.rows_removed == 1 and w.pattern.cols_removed == 1


def test_mask_of_the_wrong_shape_names_the_layer_and_both_shapes():
    wl = Workload(name="w", input_shape=(4,), ops=(Op(name="fc.weight", kind="linear", weight_shape=(4, 6)),))
    with pytest.raises(GeometryError, match=r"fc\.weight.*\(6, 4\).*\(4, 6\)"):
        layer_works(wl, batch=1, dtype="fp16", masks={"fc.weight": np.ones((6, 4), bool)})


def test_shrunk_gemm_of_a_grouped_conv_spreads_the_kept_rows_over_the_groups():
    op = _conv(weight_shape=(8, 2, 3, 3), input_shape=(4, 5, 5), padding=(1, 1), groups=2)
    mask = np.ones((8, 2, 3, 3), bool)
    mask[:2] = False                       # two output channels of the first group removed
    (w,) = layer_works(Workload(name="w", input_shape=(4, 5, 5), ops=(op,)), batch=1, dtype="fp16",
                       masks={"c.weight": mask})
    shrunk = shrunk_gemm(w.gemm, w.pattern)
    assert (w.gemm.n, w.gemm.count) == (4, 2) and (shrunk.n, shrunk.k, shrunk.count) == (3, 18, 2)


def test_masks_keyed_by_names_of_no_op_must_be_bound_first():
    wl = Workload(name="w", input_shape=(4,), ops=(Op(name="fc.weight", kind="linear", weight_shape=(4, 6)),))
    with pytest.raises(GeometryError, match="bind"):
        layer_works(wl, batch=1, dtype="fp16", masks={"module.fc.weight": np.ones((4, 6), bool)})
