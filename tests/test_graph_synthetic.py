import pytest

from simsparse.errors import PatternError
from simsparse.graph.catalog import load_workload
from simsparse.graph.lower import layer_works
from simsparse.graph.synthetic import synthetic_masks


def test_every_conv_and_linear_gets_a_mask_of_the_pattern():
    wl = load_workload("cnn")
    masks = synthetic_masks(wl, "2:4", seed=0)
    assert set(masks) == {o.name for o in wl.ops if o.kind in ("conv", "linear")}
    works = [w for w in layer_works(wl, batch=1, dtype="fp16", masks=masks) if w.mask is not None]
    assert works and all(w.pattern.is_nm(2, 4) for w in works)


def test_synthetic_masks_are_seeded():
    wl = load_workload("mlp")
    a, b = synthetic_masks(wl, "density=0.2", seed=3), synthetic_masks(wl, "density=0.2", seed=3)
    assert all((a[k] == b[k]).all() for k in a)
    assert not (a["fc1.weight"] == synthetic_masks(wl, "density=0.2", seed=4)["fc1.weight"]).all()


def test_bad_pattern_is_a_pattern_error():
    with pytest.raises(PatternError):
        synthetic_masks(load_workload("mlp"), "3:2", seed=0)
