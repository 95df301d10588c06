import pytest
import torch
from torch import nn

from simsparse.errors import GeometryError
from simsparse.geometry_io import workload_from_dict, workload_to_dict
from simsparse.graph.tracing import trace


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, stride=2, padding=1, dilation=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        y = torch.relu(self.dw(self.conv(x)))
        t = y.flatten(2).transpose(1, 2)          # (B, 16 tokens, 8)
        a, _ = self.attn(t, t, t, need_weights=False)
        return self.fc((a + t).mean(1))


def test_trace_keys_gemm_ops_by_fully_qualified_weight_name():
    wl = trace(Tiny(), torch.zeros(5, 4, 8, 8), name="tiny")
    names = [o.name for o in wl.ops if o.kind in ("conv", "linear")]
    assert names == ["conv.weight", "dw.weight", "attn.in_proj_weight", "attn.out_proj.weight", "fc.weight"]


def test_trace_records_conv_parameters_and_per_sample_shapes():
    wl = trace(Tiny(), torch.zeros(5, 4, 8, 8), name="tiny")
    conv, dw = wl.op("conv.weight"), wl.op("dw.weight")
    assert (conv.stride, conv.padding, conv.input_shape, conv.output_shape) == ((2, 2), (1, 1), (4, 8, 8), (8, 4, 4))
    assert dw.groups == 8 and dw.weight_shape == (8, 1, 3, 3)


def test_multihead_attention_becomes_projections_and_head_matmuls():
    wl = trace(Tiny(), torch.zeros(2, 4, 8, 8), name="tiny")
    qk, av = wl.op("attn.qk"), wl.op("attn.av")
    assert qk.gemm_mnk == (16, 16, 4) and qk.count == 2
    assert av.gemm_mnk == (16, 4, 16) and av.count == 2
    assert wl.op("attn.in_proj_weight").tokens == 16
    assert wl.op("attn.softmax").elements_out == 2 * 16 * 16


def test_trace_records_dataflow_inputs():
    wl = trace(Tiny(), torch.zeros(1, 4, 8, 8), name="tiny")
    assert wl.op("conv.weight").inputs == ("input",)
    assert wl.op("dw.weight").inputs == ("conv.weight",)
    add = next(o for o in wl.ops if o.kind == "elementwise" and len(o.inputs) == 2)
    assert set(add.inputs) == {"attn.out_proj.weight", "relu"}


def test_trace_restores_training_mode():
    m = Tiny().train()
    trace(m, torch.zeros(1, 4, 8, 8), name="tiny")
    assert m.training and m.fc.training


def test_model_that_fails_on_the_inputs_is_a_geometry_error():
    with pytest.raises(GeometryError, match="cannot trace model 'tiny'"):
        trace(Tiny(), torch.zeros(1, 3, 8, 8), name="tiny")


def test_model_without_gemm_is_a_geometry_error():
    with pytest.raises(GeometryError, match="no conv, linear or matmul"):
        trace(nn.ReLU(), torch.zeros(2, 3), name="relu")


def test_traced_geometry_round_trips_through_plain_data_for_checkpoints():
    wl = trace(Tiny(), torch.zeros(1, 4, 8, 8), name="tiny")
    assert workload_from_dict(workload_to_dict(wl)).ops == wl.ops
