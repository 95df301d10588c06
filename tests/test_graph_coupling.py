import numpy as np
import pytest

from simsparse.errors import GeometryError
from simsparse.graph import coupling, shrink
from simsparse.graph.catalog import load_workload
from simsparse.graph.synthetic import synthetic_masks


@pytest.fixture(scope="module")
def resnet():
    return load_workload("resnet50")


def _chase_masks(wl, removed=5):
    """Masks with the first `removed` out-channels of each bottleneck's conv1/conv2 zero."""
    masks = synthetic_masks(wl, "dense", seed=1)
    for name, m in masks.items():
        if name.endswith(("conv1.weight", "conv2.weight")) and name.startswith("layer"):
            m[:removed] = False
    return masks


def test_residual_stream_is_one_group_per_stage(resnet):
    groups = {g.name: g for g in coupling.channel_groups(resnet)}
    stage1 = groups["layer1.0.downsample.0.weight"]
    assert stage1.residual and stage1.channels == 256
    assert set(stage1.producers) == {"layer1.0.downsample.0.weight", "layer1.0.conv3.weight",
                                     "layer1.1.conv3.weight", "layer1.2.conv3.weight"}
    assert "layer2.0.conv1.weight" in stage1.consumers


def test_coupling_graph_links_producer_to_consumers_and_norm(resnet):
    g = coupling.build(resnet)
    assert g.has_edge("layer1.0.conv1.weight", "layer1.0.conv2.weight")
    assert g.has_edge("layer1.0.conv1.weight", "layer1.0.bn1")
    assert g.edges["layer4.2.conv3.weight", "fc.weight"]["channels"] == 2048


def test_chase_shrink_gives_smaller_dense_bottleneck_shapes(resnet):
    small = shrink.plan_from_masks(_chase_masks(resnet), resnet).workload
    assert small.op("layer1.0.conv1.weight").weight_shape == (59, 64, 1, 1)
    assert small.op("layer1.0.conv2.weight").weight_shape == (59, 59, 3, 3)
    assert small.op("layer1.0.conv3.weight").weight_shape == (256, 59, 1, 1)
    assert small.op("layer4.0.conv2.weight").weight_shape == (507, 507, 3, 3)
    bn1 = small.op("layer1.0.bn1")
    assert bn1.output_shape == (59, 56, 56) and bn1.elements_out == 59 * 56 * 56
    assert small.op("layer1.0.downsample.0.weight").weight_shape == (256, 64, 1, 1)  # residual untouched


def test_removing_a_channel_inside_a_residual_group_alone_is_refused_under_strict(resnet):
    masks = synthetic_masks(resnet, "dense", seed=2)
    masks["layer2.1.conv3.weight"][7] = False
    with pytest.raises(GeometryError, match=r"channel 7 of residual group layer2\.0\.downsample\.0\.weight is removed by "
                                            r"layer2\.1\.conv3\.weight but not by every member \(layer2\.0\.downsample"):
        shrink.plan_from_masks(masks, resnet, strict=True)


def test_shrink_keeps_a_residual_channel_not_every_member_removes_and_says_which_group(resnet):
    masks = synthetic_masks(resnet, "dense", seed=2)
    masks["layer2.1.conv3.weight"][7] = False
    ns = shrink.plan_from_masks(masks, resnet)
    assert ns.workload.op("layer2.1.conv3.weight").weight_shape == (512, 128, 1, 1)
    note, = ns.ops["layer2.1.conv3.weight"].notes
    assert "1 all-zero output channels kept: residual group layer2.0.downsample.0.weight" in note


def test_residual_channel_removed_by_every_member_is_removed_everywhere():
    wl = load_workload("wrn22_2")
    grp = next(g for g in coupling.channel_groups(wl) if g.residual and g.channels == 32)
    masks = synthetic_masks(wl, "dense", seed=0)
    for p in grp.producers:
        masks[p][3] = False
    small = shrink.plan_from_masks(masks, wl).workload
    assert all(small.op(p).weight_shape[0] == 31 for p in grp.producers)
    assert all(small.op(c).weight_shape[1] == 31 for c in grp.consumers)


def test_classifier_rows_are_kept_because_they_are_the_network_output():
    wl = load_workload("mlp")
    masks = synthetic_masks(wl, "dense", seed=0)
    masks["fc3.weight"][0] = False
    masks["fc1.weight"][:10] = False
    small = shrink.plan_from_masks(masks, wl).workload
    assert small.op("fc3.weight").weight_shape == (10, 256)
    assert small.op("fc1.weight").weight_shape == (246, 64) and small.op("fc2.weight").weight_shape == (256, 246)
