import numpy as np
import pytest

from simsparse.errors import GeometryError
from simsparse.graph.bind import bind
from simsparse.records import LayerMask, MaskSet, Op, Workload

WL = Workload(name="w", input_shape=(3, 8, 8), ops=(
    Op(name="conv1.weight", kind="conv", input_shape=(3, 8, 8), weight_shape=(4, 3, 3, 3)),
    Op(name="fc.weight", kind="linear", weight_shape=(2, 4)),
))


def _maskset(**masks):
    return MaskSet(layers={k: LayerMask(k, v.shape, v) for k, v in masks.items()})


def test_ddp_and_wrapper_prefixes_are_tolerated():
    ms = _maskset(**{"module.model.conv1.weight": np.ones((4, 3, 3, 3), bool)})
    res = bind(ms, WL)
    assert set(res.masks) == {"conv1.weight"} and res.dense == ("fc.weight",) and res.unmatched == ()


def test_names_that_do_not_match_are_reported():
    res = bind({"conv1.weight": np.ones((4, 3, 3, 3), bool), "extra.weight": np.ones((2, 2), bool)}, WL)
    assert res.unmatched == ("extra.weight",)


def test_shape_mismatch_names_layer_and_both_shapes():
    with pytest.raises(GeometryError, match=r"fc\.weight.*\(4, 2\).*\(2, 4\)"):
        bind({"fc.weight": np.ones((4, 2), bool)}, WL)


def test_nothing_matching_lists_names_of_both_sides():
    with pytest.raises(GeometryError, match=r"other\.weight.*conv1\.weight"):
        bind({"other.weight": np.ones((2, 2), bool)}, WL)
