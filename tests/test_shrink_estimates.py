"""Every arch kind runs a shrunk network as the physically shrunk dense network; `simsparse shrink`
writes that network; bad channel removals are refused or noted."""

import numpy as np
import pytest
import torch

from shrink_nets import DepthwiseNet, channel_pruned, masks_of, physically_shrunk, registered, traced
from simsparse import api
from simsparse.archs import load_arch
from simsparse.cli import main
from simsparse.graph.lower import layer_works
from simsparse.graph.shrink_works import shrink_network
from simsparse.masks import native

ONE_ARCH_PER_KIND = ("a100_2to4", "rtx2080ti", "systolic_128x128", "spr_socket")


def _dtype(arch):
    return load_arch(arch).default_dtype()


@pytest.fixture(scope="module")
def cnn_case():
    rebuild = registered("cnn", (3, 16, 16), width=8)
    model, x = rebuild(), torch.randn(1, 3, 16, 16)
    wl = traced(model, x, name="cnn")
    ns = channel_pruned(model, wl, "channels=0.5")
    return wl, masks_of(model, wl), traced(physically_shrunk(model, ns, rebuild), x, name="cnn")


@pytest.mark.parametrize("arch", ONE_ARCH_PER_KIND)
def test_every_kind_estimates_a_shrunk_network_as_the_physically_shrunk_dense_network(arch, cnn_case):
    wl, masks, small = cnn_case
    model, dtype = load_arch(arch), _dtype(arch)
    works = layer_works(wl, batch=8, dtype=dtype, masks=masks)
    shrunk, _ = shrink_network(works, wl, batch=8, dtype=dtype, policy="prune-skip")
    via_masks = api.run_model(model=model, works=shrunk, engine="analytic", dtype=dtype)
    physical = api.run_model(model=model, works=layer_works(small, batch=8, dtype=dtype, masks={}), engine="analytic",
                             dtype=dtype)
    for a, b in zip(via_masks.estimates, physical.estimates):
        assert (a.layer, a.latency_s, a.flops_executed) == (b.layer, b.latency_s, b.flops_executed)
    assert via_masks.total.latency_s == physical.total.latency_s
    assert via_masks.dense_total.flops_dense > physical.dense_total.flops_dense   # the baseline stays the original


@pytest.mark.parametrize("arch", ONE_ARCH_PER_KIND)
def test_a_depthwise_conv_with_half_its_channels_removed_costs_half_the_flops_on_every_kind(arch):
    net = DepthwiseNet()
    wl = traced(net, torch.randn(1, 8, 12, 12))
    masks = masks_of(net, wl)
    masks["dw.weight"][1::2] = False
    model, dtype = load_arch(arch), _dtype(arch)
    works = layer_works(wl, batch=4, dtype=dtype, masks=masks)
    shrunk, _ = shrink_network(works, wl, batch=4, dtype=dtype, policy="prune-skip")
    report = api.run_model(model=model, works=shrunk, engine="analytic", dtype=dtype)
    dw, dense = next((e, d) for e, d in zip(report.estimates, report.dense_estimates) if e.layer == "dw.weight")
    work, original = next((w, o) for w, o in zip(shrunk, works) if w.name == "dw.weight")
    plan = model.plan(work)
    assert plan.macs_dense * 2 == original.gemm.macs and plan.gemm.count == 8     # 8 of 16 groups, before padding
    assert dw.flops_effective == pytest.approx(dense.flops_dense / 2) and dw.density == pytest.approx(0.5)
    dense_plan = model.plan(original, dense=True)
    if dense_plan.macs_issued == dense_plan.macs_dense:       # no tile padding: exactly half issued too
        assert dw.flops_executed == pytest.approx(dense.flops_executed / 2)
    else:                                                     # a GPU library pads each group to its tile
        assert dw.flops_executed < dense.flops_executed
    unshrunk = api.run_model(model=model, works=works, engine="analytic", dtype=dtype)
    plain_dw = next(e for e in unshrunk.estimates if e.layer == "dw.weight")
    assert plain_dw.density == pytest.approx(0.5)          # per-group density, not per stack


def _pruned_checkpoint(tmp_path):
    rebuild = registered("cnn", (3, 16, 16), width=8)
    model, x = rebuild(), torch.randn(1, 3, 16, 16)
    wl = traced(model, x, name="cnn")
    channel_pruned(model, wl, "channels=0.5")
    masks = {k: torch.from_numpy(v) for k, v in masks_of(model, wl).items()}
    state = model.state_dict()
    path = tmp_path / "chase.pt"
    native.save(path, masks=masks, weights={k: state[k] for k in masks}, geometry=wl, state=state,
                meta={"model": "cnn", "model_options": {"width": 8}, "input_shape": [3, 16, 16], "num_classes": 10})
    return path, model, rebuild


def test_simsparse_shrink_output_loads_back_into_the_model_definition_with_matching_logits(tmp_path, capsys):
    from simsparse.models.resize import fit_to_state

    path, model, rebuild = _pruned_checkpoint(tmp_path)
    out = tmp_path / "small.pt"
    assert main(["shrink", str(path), "--out", str(out)]) == 0
    assert "parameters" in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)
    small = fit_to_state(rebuild(), saved["state"]).eval()
    small.load_state_dict(saved["state"])
    x = torch.randn(4, 3, 16, 16)
    assert torch.allclose(model(x), small(x), atol=1e-5)
    shrunk = saved["meta"]["shrunk"]
    assert shrunk["parameters_after"] < shrunk["parameters_before"]
    assert shrunk["flops_per_sample_after"] < 0.5 * shrunk["flops_per_sample_before"]


def test_shrink_refuses_a_removed_channel_whose_norm_still_adds_a_constant(tmp_path, capsys):
    path, model, _ = _pruned_checkpoint(tmp_path)
    data = torch.load(path, weights_only=True)
    data["state"]["features.1.bias"][:] = 0.5                 # the BN after the first conv: its shift survives
    torch.save(data, path)
    assert main(["shrink", str(path), "--out", str(tmp_path / "small.pt")]) == 2
    assert "norm features.1: removed channels keep a nonzero shift" in capsys.readouterr().err
    assert not (tmp_path / "small.pt").exists()


def test_a_channel_removed_by_one_residual_member_is_a_note_or_under_strict_an_error(tmp_path, capsys):
    rebuild = registered("wrn22_2", (3, 16, 16))
    state = rebuild().state_dict()
    with torch.no_grad():
        state["block1.layer.1.conv2.weight"][7] = 0
    path = tmp_path / "wrn.pt"
    torch.save(state, path)
    args = ["evaluate", "--mask", str(path), "--workload", "wrn22_2", "--arch", "a100_2to4", "--allow-partial"]
    assert main(args + ["--format", "json"]) == 0
    assert "residual group block1.layer.0.convShortcut.weight: removed by only some" in capsys.readouterr().out
    assert main(args + ["--strict"]) == 2
    err = capsys.readouterr().err
    assert "channel 7 of residual group block1.layer.0.convShortcut.weight is removed by block1.layer.1.conv2" in err
    assert "block1.layer.0.conv2.weight" in err                # the members are named


def test_evaluate_names_the_residual_policy_and_no_skip_keeps_the_residual_stream():
    prune = api.evaluate(arch="a100_2to4", workload="resnet50", pattern="channels=0.6", batch=8)
    keep = api.evaluate(arch="a100_2to4", workload="resnet50", pattern="channels=0.6", batch=8,
                        residual_policy="no-skip")
    off = api.evaluate(arch="a100_2to4", workload="resnet50", pattern="channels=0.6", batch=8, shrink=False)
    assert prune.provenance["shrink"]["policy"] == "prune-skip" and keep.provenance["shrink"]["policy"] == "no-skip"
    macs = [r.provenance["shrink"]["macs_per_sample_after"] for r in (prune, keep)]
    assert macs[0] < macs[1] < prune.provenance["shrink"]["macs_per_sample_before"]
    assert prune.total.flops_dense == off.total.flops_dense == off.dense_total.flops_dense
    assert off.speedup_vs_dense == pytest.approx(1.0)
    assert 1.0 < keep.speedup_vs_dense < prune.speedup_vs_dense
    assert np.isclose(prune.dense_total.latency_s, off.dense_total.latency_s)
