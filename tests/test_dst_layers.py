"""Which layers a run keeps dense, as each method's reference code does, and the checkpoint says why."""

import pytest
import torch

from simsparse.dst.train import run
from simsparse.masks.io import load

torch.set_num_threads(1)
CNN = {"width": 16, "depth": 2, "convs_per_stage": 1}   # features.0 (stem, 3 -> 16), features.4 (16 -> 32), classifier


def _train(tmp_path, method, **kw):
    args = dict(model="cnn", model_options=CNN, data="synthetic", sparsity=0.8, steps=3, batch_size=16,
                out=tmp_path / f"{method}.pt", progress=False)
    args.update(kw)
    res = run(method=method, **args)
    ckpt = load(res.out)
    return res, ckpt, ckpt.provenance.get("meta", ckpt.provenance)


def test_rigl_keeps_the_first_conv_dense_like_googles_rigl_and_spends_the_budget_on_the_rest(tmp_path):
    res, ckpt, meta = _train(tmp_path, "rigl", sparsity=0.9)
    masks = {f: layer.mask for f, layer in ckpt.layers.items()}
    stem = next(iter(masks))
    rest = [m for f, m in masks.items() if f != stem]
    assert masks[stem].all()
    assert sum(int(m.sum()) for m in rest) / sum(m.size for m in rest) == pytest.approx(0.1, abs=0.005)
    assert "first layer" in meta["dense_layers"][stem] and list(res.dense_layers) == [stem]


def test_the_first_layer_is_sparse_when_the_recipe_says_so(tmp_path):
    _, ckpt, meta = _train(tmp_path, "rigl", recipe_overrides=("first_layer=sparse",))
    assert meta["dense_layers"] == {} and not next(iter(ckpt.layers.values())).mask.all()


def test_srste_keeps_the_classifier_dense_and_masks_the_stem_in_flat_groups(tmp_path):
    _, ckpt, meta = _train(tmp_path, "srste", sparsity=0.0, nm=(2, 4))
    stem = ckpt.layers["features.0.weight"].mask            # k = 3·3·3 = 27: groups wrap across rows
    assert stem.sum() * 2 == stem.size and ckpt.layers["classifier.weight"].mask.all()
    assert list(meta["dense_layers"]) == ["classifier.weight"]


def test_asp_one_shot_leaves_the_layers_sparse_tensor_cores_cannot_run_dense_and_says_why(tmp_path):
    _, ckpt, meta = _train(tmp_path, "nm-oneshot", sparsity=0.0, nm=(2, 4), steps=4)
    assert ckpt.layers["features.0.weight"].mask.all() and ckpt.layers["classifier.weight"].mask.all()
    assert set(meta["dense_layers"]) == {"features.0.weight", "classifier.weight"}
    assert "3 input channels" in meta["dense_layers"]["features.0.weight"]
    assert "10 output rows" in meta["dense_layers"]["classifier.weight"]
    middle = ckpt.layers["features.4.weight"].mask
    assert middle.sum() * 2 == middle.size


@pytest.mark.parametrize("method", ["nm-mask-decay", "nm-structure-decay"])
def test_the_decay_methods_keep_stem_and_classifier_dense_as_pgf_does(tmp_path, method):
    _, ckpt, meta = _train(tmp_path, method, sparsity=0.0, nm=(1, 4), steps=4)
    assert ckpt.layers["features.0.weight"].mask.all() and ckpt.layers["classifier.weight"].mask.all()
    assert set(meta["dense_layers"]) == {"features.0.weight", "classifier.weight"}
    assert ckpt.layers["features.4.weight"].mask.sum() * 4 == ckpt.layers["features.4.weight"].mask.size


def test_an_n_m_target_the_hardware_cannot_run_is_a_clear_error(tmp_path):
    from simsparse.errors import SpecError
    with pytest.raises(SpecError, match="1:8 does not run on sparse_tensor_core"):
        _train(tmp_path, "nm-oneshot", sparsity=0.0, nm=(1, 8))
