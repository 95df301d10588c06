"""kernels.grouped: a depthwise / grouped conv lowered to per-group GEMMs runs on every CPU kernel."""

import pytest
import torch
import torch.nn.functional as F

from simsparse.archs import load_arch
from simsparse.graph.lower import layer_works
from simsparse.kernels.grouped import prepare_grouped, run_grouped
from simsparse.masks.patterns import as_matrix, gemm_rows
from simsparse.masks.synthetic import make_mask
from simsparse.records import Op, Workload


def _conv_as_groups(x, groups, kernel_size):
    """im2col per group: [groups, batch*H*W, Cin/groups*kh*kw] with Cin innermost (the GEMM orientation)."""
    b, c, h, w = x.shape
    cols = F.unfold(x, kernel_size, padding=kernel_size // 2)               # [b, c*kh*kw, h*w], c outermost
    cols = cols.reshape(b, groups, c // groups, kernel_size * kernel_size, h * w)
    return cols.permute(1, 0, 4, 3, 2).reshape(groups, b * h * w, -1)        # (kh, kw, Cin) innermost Cin


@pytest.mark.parametrize("kernel", ["dense", "csr", "shrunk"])
@pytest.mark.parametrize("groups,c_in,c_out", [(16, 16, 16), (4, 16, 8)])
def test_grouped_kernels_compute_the_grouped_conv(kernel, groups, c_in, c_out):
    torch.manual_seed(0)
    weight = torch.randn(c_out, c_in // groups, 3, 3)
    mask = torch.rand(weight.shape) < 0.6
    if kernel == "shrunk":
        mask[: c_out // 2] = False                            # rows for the shrunk kernel to drop
    x = torch.randn(2, c_in, 5, 5)
    want = F.conv2d(x, weight * mask, padding=1, groups=groups)             # [2, c_out, 5, 5]
    prepared = prepare_grouped(kernel, gemm_rows(weight), as_matrix(mask.numpy()), groups=groups)
    y = run_grouped(prepared, _conv_as_groups(x, groups, 3))                 # [groups, 2*25, c_out/groups]
    got = y.reshape(groups, 2, 25, c_out // groups).permute(1, 0, 3, 2).reshape(2, c_out, 5, 5)
    assert torch.allclose(got, want, atol=1e-4)


def test_the_cpu_model_runs_a_depthwise_conv_as_one_call_over_its_groups():
    op = Op(name="dw.weight", kind="conv", input_shape=(64, 28, 28), output_shape=(64, 28, 28),
            weight_shape=(64, 1, 3, 3), padding=(1, 1), groups=64, inputs=("input",))
    (work,) = layer_works(Workload(name="w", input_shape=(64, 28, 28), ops=(op,)), batch=1, dtype="fp32", masks={})
    model = load_arch("spr_socket")
    plan = model.plan(work, dense=True)
    assert plan.payload.count == 1 and plan.payload.calls == 1
    assert plan.macs_issued == work.gemm.macs == 28 * 28 * 9 * 64


def test_a_grouped_conv_whose_groups_are_2to4_runs_2to4_at_half_density_on_the_gpu(a100):
    op = Op(name="g.weight", kind="conv", input_shape=(64, 56, 56), output_shape=(128, 56, 56),
            weight_shape=(128, 32, 3, 3), padding=(1, 1), groups=2, inputs=("input",))
    wl = Workload(name="w", input_shape=(64, 56, 56), ops=(op,))
    (work,) = layer_works(wl, batch=32, dtype="fp16", masks={"g.weight": make_mask((128, 32, 3, 3), "2:4", seed=0)})
    plan = a100.plan(work)
    assert plan.format == "2:4" and plan.gemm.count == 2
    assert plan.density == pytest.approx(0.5) and plan.macs_effective * 2 == plan.macs_dense
