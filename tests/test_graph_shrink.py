"""graph.shrink: one rule removes channels (and whole attention heads) across producers and consumers."""

import numpy as np
import pytest
import torch

from shrink_nets import DepthwiseNet, FlattenNet, channel_pruned, masks_of, physically_shrunk, registered, traced
from simsparse.errors import GeometryError
from simsparse.graph import shrink
from simsparse.graph.catalog import load_workload
from simsparse.graph.coupling import channel_groups
from simsparse.graph.lower import layer_works
from simsparse.graph.shrink_state import check_removable
from simsparse.graph.shrink_works import provenance, removals_of_works, shrink_network
from simsparse.graph.synthetic import channel_network, synthetic_masks, synthetic_works
from simsparse.graph.tracing import trace
from simsparse.masks.synthetic import parse_pattern


def test_a_removed_producer_channel_removes_the_consumers_input_channel_and_its_kh_kw_columns():
    wl = load_workload("cnn")
    masks = synthetic_masks(wl, "dense", seed=0)
    masks["features.0.weight"][3] = False
    ns = shrink.plan_from_masks(masks, wl)
    before, after = wl.op("features.3.weight"), ns.workload.op("features.3.weight")
    assert after.weight_shape == (64, 63, 3, 3)
    (w0,), (w1,) = (layer_works(x, batch=1, dtype="fp16", masks={})[3:4] for x in (wl, ns.workload))
    assert w0.gemm.k - w1.gemm.k == 3 * 3
    assert ns.workload.op("features.1").elements_out == wl.op("features.1").elements_out * 63 // 64
    assert before.weight_shape == (64, 64, 3, 3)


def test_a_residual_group_shrinks_only_by_the_channels_every_member_removes_and_not_under_no_skip():
    wl = load_workload("wrn22_2")
    grp = next(g for g in channel_groups(wl) if g.residual and g.channels == 32)
    masks = synthetic_masks(wl, "dense", seed=0)
    for p in grp.producers:
        masks[p][[3, 4]] = False
    masks[grp.producers[-1]][5] = False                      # one member alone
    ns = shrink.plan_from_masks(masks, wl)
    decision = next(d for d in ns.groups if d.group == grp.name)
    assert decision.removed == (3, 4) and decision.requested == 3
    assert all(ns.workload.op(p).weight_shape[0] == 30 for p in grp.producers)
    assert all(ns.workload.op(c).weight_shape[1] == 30 for c in grp.consumers)
    assert "removed by only some of its members" in ns.ops[grp.producers[-1]].notes[0]
    kept = shrink.plan_from_masks(masks, wl, policy="no-skip")
    assert all(kept.workload.op(p).weight_shape[0] == 32 for p in grp.producers)
    assert "no-skip" in kept.ops[grp.producers[0]].notes[0]


def test_an_open_group_never_shrinks_and_the_note_says_what_opened_it():
    wl = load_workload("resnet50")
    masks = synthetic_masks(wl, "dense", seed=0)
    masks["fc.weight"][:10] = False                          # the classifier's rows are the network output
    ns = shrink.plan_from_masks(masks, wl)
    assert ns.workload.op("fc.weight").weight_shape == (1000, 2048) and not ns.changed
    assert "open (network output)" in ns.ops["fc.weight"].notes[0]
    vit = load_workload("vit_tiny")
    masks = synthetic_masks(vit, "dense", seed=0)
    proj = "encoder.layers.encoder_layer_0.self_attention.in_proj_weight"
    masks[proj][5] = False                                   # one query row: the head stays
    ns = shrink.plan_from_masks(masks, vit)
    assert ns.workload.op(proj).weight_shape == (576, 192) and "matmul" in ns.ops[proj].notes[0]


def test_a_linear_after_flatten_shrinks_by_hw_columns_per_channel():
    model = FlattenNet()
    wl = traced(model, torch.randn(1, 3, 4, 4))
    masks = masks_of(model, wl)
    masks["conv.weight"][[1, 6]] = False
    ns = shrink.plan_from_masks(masks, wl)
    assert ns.workload.op("fc.weight").weight_shape == (10, 6 * 16)
    assert set(range(16, 32)) | set(range(96, 112)) == set(range(128)) - set(ns.ops["fc.weight"].kept_in)


def test_shrinking_twice_changes_nothing():
    wl = load_workload("resnet50")
    masks = synthetic_masks(wl, "density=0.5", seed=0)
    masks["layer2.1.conv3.weight"][7] = False                # kept (one residual member alone), with a note
    for name in ("layer1.0.conv1.weight", "layer3.2.conv2.weight"):
        masks[name][:9] = False
    works = layer_works(wl, batch=1, dtype="fp16", masks=masks)
    once, ns = shrink_network(works, wl, batch=1, dtype="fp16", policy="prune-skip")
    assert ns.changed
    again = shrink.plan(ns.workload, removals_of_works(once))
    assert not again.changed and again.workload.ops == ns.workload.ops


def test_a_shrunk_layer_whose_mask_is_also_2to4_runs_2to4(a100):
    from simsparse import api   # api wires the run; the shrink itself is graph's

    wl = load_workload("mlp")
    masks = synthetic_masks(wl, "dense", seed=0)
    masks["fc1.weight"][:56] = False                          # 56 of fc1's 256 neurons removed
    two_four = np.zeros((256, 200), bool)
    two_four[:, 0::2] = True
    masks["fc2.weight"][:, 56:] = two_four                    # 2:4 on the columns that stay
    works = layer_works(wl, batch=4096, dtype="fp16", masks=masks)
    shrunk, _ = shrink_network(works, wl, batch=4096, dtype="fp16", policy="prune-skip")
    report = api.run_model(model=a100, works=shrunk, engine="analytic", dtype="fp16")
    formats = {e.layer: e.format for e in report.estimates}
    assert formats["fc2.weight"] == "shrunk+2:4" and formats["fc1.weight"] == "shrunk"
    fc2 = next(e for e in report.estimates if e.layer == "fc2.weight")
    assert (fc2.n, fc2.k) == (256, 200) and fc2.flops_dense == 2 * 4096 * 256 * 256


def test_a_depthwise_conv_shrinks_per_group_and_its_only_reader_role_removes_the_expand_rows():
    model = DepthwiseNet()
    wl = traced(model, torch.randn(1, 8, 6, 6))
    masks = masks_of(model, wl)
    masks["dw.weight"][::2] = False                          # half the depthwise filters zero
    ns = shrink.plan_from_masks(masks, wl)
    dw = ns.workload.op("dw.weight")
    assert dw.weight_shape == (8, 1, 3, 3) and dw.groups == 8
    assert ns.workload.op("expand.weight").weight_shape == (8, 8, 1, 1)       # rows only the dw read
    assert ns.workload.op("project.weight").weight_shape == (8, 8, 1, 1)


def test_channels_pattern_on_a_network_removes_the_same_channels_in_producers_and_consumers():
    wl = load_workload("resnet50")
    patterns = channel_network(wl, parse_pattern("channels=0.5,skip=keep"), seed=3)
    for grp in channel_groups(wl):
        rows = [set(patterns[p].removed_rows) if p in patterns else set() for p in grp.producers]
        cols = [set(patterns[c].removed_cols) if c in patterns else set() for c in grp.consumers]
        assert all(r == rows[0] for r in rows) and all(c == rows[0] for c in cols), grp.name
        if grp.residual or grp.open:
            assert rows[0] == set(), grp.name
        else:
            assert len(rows[0]) == grp.channels // 2, grp.name
    again = channel_network(wl, parse_pattern("channels=0.5,skip=keep"), seed=3)
    assert all(again[k].removed_rows == p.removed_rows for k, p in patterns.items())


def test_a_gated_product_shrinks_where_both_projections_agree_even_under_no_skip():
    wl = load_workload("llama3_2_1b_prefill_512")
    masks = {n: np.ones(wl.op(n).weight_shape, bool) for n in
             ("model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight")}
    masks["model.layers.0.mlp.gate_proj.weight"][:100] = False
    masks["model.layers.0.mlp.up_proj.weight"][50:100] = False
    ns = shrink.plan_from_masks(masks, wl, policy="no-skip")
    assert ns.workload.op("model.layers.0.mlp.down_proj.weight").weight_shape == (2048, 8192 - 50)
    with pytest.raises(GeometryError, match="gated group model.layers.0.mlp.gate_proj.weight"):
        shrink.plan_from_masks(masks, wl, strict=True)


def test_whole_attention_heads_go_and_the_shrunk_bert_computes_the_same_logits():
    rebuild = registered("bert_base", (16,), width=64, depth=2, heads=4, vocab=100)
    model, ids = rebuild(), torch.randint(0, 100, (3, 16))
    wl = trace(model, (ids,), name="bert")
    state = model.state_dict()
    with torch.no_grad():
        for h in (0, 2):                                     # the value rows of two heads of layer 0
            for key in ("weight", "bias"):
                state[f"bert.encoder.layer.0.attention.self.value.{key}"][h * 16:(h + 1) * 16] = 0
    model.load_state_dict(state)
    ns = shrink.plan_from_masks(masks_of(model, wl), wl)
    assert ns.removed("heads") == 2
    assert ns.workload.op("bert.encoder.layer.0.attention.self.matmul").count == 2
    assert ns.workload.op("bert.encoder.layer.0.attention.output.dense.weight").weight_shape == (64, 32)
    small = physically_shrunk(model, ns, rebuild)
    assert torch.allclose(model(ids), small(ids), atol=1e-5)
    assert trace(small, (ids,), name="bert").ops == ns.workload.ops


@pytest.mark.parametrize("name,shape,options,pattern", [
    ("resnet50", (3, 32, 32), {"width": 8}, "channels=0.6"),
    ("wrn22_2", (3, 16, 16), {}, "channels=0.5,skip=0.75"),
    ("vit_tiny", (3, 32, 32), {"depth": 2}, "channels=0.5"),
])
def test_the_shrunk_geometry_is_the_geometry_of_the_physically_shrunk_model(name, shape, options, pattern):
    rebuild = registered(name, shape, **options)
    model, x = rebuild(), torch.randn(2, *shape)
    wl = traced(model, x, name=name)
    ns = channel_pruned(model, wl, pattern)
    small = physically_shrunk(model, ns, rebuild)
    assert torch.allclose(model(x), small(x), atol=1e-5)
    assert traced(small, x, name=name).ops == ns.workload.ops


def test_synthetic_channels_works_shrink_to_dense_layers_of_the_kept_channels():
    wl = load_workload("resnet50")
    works = synthetic_works(wl, "channels=0.6", seed=0, batch=1, dtype="fp16")
    shrunk, ns = shrink_network(works, wl, batch=1, dtype="fp16", policy="prune-skip")
    assert all(w.pattern is None for w in shrunk)
    assert all(w.shrink.original.gemm == o.gemm for w, o in zip(shrunk, works) if w.shrink and w.gemm)
    assert 0.33 < ns.workload.op("layer2.0.conv2.weight").weight_shape[0] / 128 < 0.62


def test_a_removed_head_whose_value_bias_is_still_read_is_refused():
    model, ids = registered("bert_base", (16,), width=64, depth=1, heads=4, vocab=100)(), torch.randint(0, 100, (2, 16))
    wl = trace(model, (ids,), name="bert")
    state = model.state_dict()
    with torch.no_grad():
        state["bert.encoder.layer.0.attention.self.value.weight"][:16] = 0      # head 0's value rows, bias kept
    ns = shrink.plan_from_masks(masks_of(model, wl), wl)
    assert ns.removed("heads") == 1
    with pytest.raises(GeometryError, match="removed head 0 keeps a nonzero value bias"):
        check_removable(state, ns)


class _GroupedNet(torch.nn.Module):
    """conv 3->8, grouped conv 8->8 (2 groups), flatten, Linear 128 -> 10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.g = torch.nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.fc = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.g(self.conv(x)), 1))


def test_a_grouped_conv_keeps_its_output_channels_so_its_groups_stay_equal():
    model = _GroupedNet()
    wl = traced(model, torch.zeros(1, 3, 4, 4))
    masks = masks_of(model, wl)
    masks["g.weight"][1] = False                 # one output channel of the first group
    masks["fc.weight"][:, 16:32] = False         # and what reads it after the flatten
    ns = shrink.plan_from_masks(masks, wl)
    after = ns.workload.op("g.weight")
    assert after.weight_shape[0] % after.groups == 0
    assert after.weight_shape == (8, 4, 3, 3)
    grp = next(g for g in channel_groups(wl) if g.name == "g.weight")
    assert grp.open and "grouped conv g.weight" in grp.open_reason


def test_value_rows_that_leave_with_their_head_are_not_reported_as_kept_channels():
    rebuild = registered("bert_base", (16,), width=64, depth=1, heads=4, vocab=100)
    model, ids = rebuild(), torch.randint(0, 100, (2, 16))
    wl = trace(model, (ids,), name="bert")
    value = "bert.encoder.layer.0.attention.self.value.weight"
    masks = masks_of(model, wl)
    masks[value][16:32] = False                              # head 1's value rows
    ns = shrink.plan_from_masks(masks, wl)
    assert ns.removed("heads") == 1
    grp = next(g for g in ns.groups if g.group == value)
    assert grp.requested == 0
    assert not any(value in line for line in provenance(ns)["kept"])


def test_a_channel_only_its_depthwise_reader_drops_may_keep_a_shift_and_the_shrunk_net_is_the_same():
    model, x = DepthwiseNet().eval(), torch.randn(2, 8, 4, 4)
    state = model.state_dict()
    with torch.no_grad():
        state["dw.weight"][3] = 0                            # the depthwise filter of channel 3: unread
        state["bn1.bias"][3] = 0.5                           # ... so the expand side's shift is harmless
        state["bn2.bias"][3], state["bn2.weight"][3] = 0, 0  # the dw output channel 3 carries nothing
    model.load_state_dict(state)
    wl = traced(model, x)
    ns = shrink.plan_from_masks(masks_of(model, wl), wl)
    assert ns.workload.op("expand.weight").weight_shape[0] == 15
    check_removable(model.state_dict(), ns)
    small = physically_shrunk(model, ns, DepthwiseNet)
    assert torch.allclose(model(x), small(x), atol=1e-5)


class _TwoReaders(torch.nn.Module):
    """expand 8->16, then a depthwise conv -> project, and a second 1x1 conv reading the same map."""

    def __init__(self) -> None:
        super().__init__()
        self.expand = torch.nn.Conv2d(8, 16, 1, bias=False)
        self.dw = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.project = torch.nn.Conv2d(16, 8, 1, bias=False)
        self.side = torch.nn.Conv2d(16, 8, 1, bias=False)

    def forward(self, x):
        x = torch.relu(self.expand(x))
        return self.project(self.dw(x)) + self.side(x)


def test_a_depthwise_conv_keeps_the_channels_another_reader_of_its_input_keeps():
    model, x = _TwoReaders().eval(), torch.randn(2, 8, 4, 4)
    with torch.no_grad():
        model.dw.weight[3] = 0                               # channel 3 of the dw output is zero ...
    wl = traced(model, x)
    ns = shrink.plan_from_masks(masks_of(model, wl), wl)     # ... but `side` still reads input channel 3
    dw = ns.workload.op("dw.weight")
    assert dw.input_shape[0] == dw.groups == dw.weight_shape[0]
    assert dw.input_shape[0] == ns.workload.op("expand.weight").weight_shape[0]
    small = physically_shrunk(model, ns, _TwoReaders)
    assert torch.allclose(model(x), small(x), atol=1e-5)
