"""masks.io.load recovers the written masks from every supported checkpoint format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ckpt_factory as cf
from simsparse.masks import io as mio
from simsparse.masks.loaders_common import is_maskable_weight


def _assert_masks_equal(maskset, expected):
    assert list(maskset.layers) == list(expected)
    for fqn, mask in expected.items():
        layer = maskset.layers[fqn]
        assert layer.weight_shape == mask.shape
        assert layer.mask.dtype == bool
        np.testing.assert_array_equal(layer.mask, mask)


@pytest.mark.parametrize("fmt", sorted(cf.ALL_FORMATS))
def test_every_format_recovers_the_written_masks_and_names_its_loader(tmp_path, fmt):
    path = tmp_path / f"{fmt}.ckpt"
    expected = cf.ALL_FORMATS[fmt](path)
    maskset = mio.load(path)
    _assert_masks_equal(maskset, expected)
    assert maskset.provenance["format"] == fmt


def test_loader_order_covers_every_registered_loader():
    assert sorted(mio.ORDER) == mio.LOADERS.names()


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model"])
@pytest.mark.parametrize("ddp", [False, True])
def test_state_dict_wrappers_and_module_prefixes_are_unwrapped(tmp_path, wrapper, ddp):
    expected = cf.make_state_dict(tmp_path / "sd.pt", wrapper=wrapper, ddp=ddp)
    maskset = mio.load(tmp_path / "sd.pt")
    _assert_masks_equal(maskset, expected)
    assert maskset.provenance["format"] == "state_dict"


def test_embeddings_norms_and_biases_are_not_masked(tmp_path):
    cf.make_state_dict(tmp_path / "sd.pt")
    assert set(mio.load(tmp_path / "sd.pt").layers) == {"fc1.weight", "fc2.weight"}


def test_maskable_weight_rule_keeps_linear_and_conv_weights_only():
    assert is_maskable_weight("layer1.0.conv1.weight", torch.zeros(4, 3, 3, 3))
    assert is_maskable_weight("head.weight", torch.zeros(4, 3))
    assert not is_maskable_weight("bert.embeddings.word_embeddings.weight", torch.zeros(4, 3))
    assert not is_maskable_weight("bn1.weight", torch.zeros(4))
    assert not is_maskable_weight("fc.bias", torch.zeros(4, 3))
    assert not is_maskable_weight("fc.weight", torch.zeros(4, 3, dtype=torch.int64))


def test_weights_are_the_effective_masked_weights(tmp_path):
    expected = cf.make_prune(tmp_path / "p.pt")
    maskset = mio.load(tmp_path / "p.pt")
    for fqn, mask in expected.items():
        w = maskset.weights[fqn]
        assert np.all(w[~mask] == 0) and np.all(w[mask] != 0)


def test_keep_weights_false_loads_masks_only(tmp_path):
    cf.make_asp(tmp_path / "a.pt")
    assert mio.load(tmp_path / "a.pt", keep_weights=False).weights is None


def test_srigl_uses_pruner_masks_when_regrown_weights_are_exactly_zero(tmp_path):
    expected = cf.make_srigl(tmp_path / "s.pt", regrown_zero=3, ddp=True)
    maskset = mio.load(tmp_path / "s.pt")
    _assert_masks_equal(maskset, expected)
    assert maskset.provenance["mask_source"]["fc2.weight"] == "pruner.backward_masks"
    assert any("regrown" in n for n in maskset.provenance["notes"])
    assert maskset.provenance["meta"]["pruner"]["hyperparams"]["alpha"] == 0.3


def test_srigl_masks_keep_constant_fan_in_and_ablated_rows(tmp_path):
    cf.make_srigl(tmp_path / "s.pt")
    mask = mio.load(tmp_path / "s.pt").layers["fc2.weight"].mask
    per_row = mask.sum(axis=1)
    assert set(per_row[per_row > 0]) == {4} and list(np.flatnonzero(per_row == 0)) == [2, 5]


def test_srigl_pruner_mask_that_contradicts_weights_is_not_used(tmp_path):
    path = tmp_path / "s.pt"
    expected = cf.make_srigl(path)
    state = cf.torch_load_trusted(path)
    state["pruner"]["backward_masks"][1] = torch.zeros(8, 16, dtype=torch.bool)
    torch.save(state, path)
    maskset = mio.load(path)
    _assert_masks_equal(maskset, expected)
    assert maskset.provenance["mask_source"]["fc2.weight"] == "weight != 0"
    assert any("outside pruner.backward_masks" in n for n in maskset.provenance["notes"])


@pytest.mark.parametrize("imagenet", [False, True])
def test_chase_checkpoints_report_removed_channels(tmp_path, imagenet):
    expected = cf.make_chase(tmp_path / "c.pt", imagenet=imagenet)
    maskset = mio.load(tmp_path / "c.pt")
    _assert_masks_equal(maskset, expected)
    assert maskset.provenance["removed_channels"] == cf.CHASE_REMOVED
    if imagenet:
        assert maskset.provenance["meta"]["arch"] == "resnet50"


def test_safetensors_metadata_is_kept_as_meta(tmp_path):
    cf.make_safetensors(tmp_path / "w.safetensors")
    maskset = mio.load(tmp_path / "w.safetensors")
    assert maskset.provenance["container"] == "safetensors"
    assert maskset.provenance["meta"]["method"] == "test"


def test_whole_pickled_module_is_read_through_placeholders(tmp_path):
    masks = cf.mlp_masks()
    torch.save(cf.masked_mlp(masks), tmp_path / "model.pt")
    maskset = mio.load(tmp_path / "model.pt")
    _assert_masks_equal(maskset, masks)
    assert "ckpt_factory.TinyMLP" in maskset.provenance["foreign_objects"]


def test_mixed_state_dict_reads_pruned_and_plain_layers(tmp_path):
    import torch.nn.utils.prune as prune

    masks = cf.mlp_masks()
    model = cf.masked_mlp(masks)
    prune.custom_from_mask(model.fc1, "weight", torch.from_numpy(masks["fc1.weight"]))
    torch.save(model.state_dict(), tmp_path / "mixed.pt")
    maskset = mio.load(tmp_path / "mixed.pt")
    _assert_masks_equal(maskset, masks)
    assert maskset.provenance["mask_source"] == {"fc1.weight": "prune buffer *_mask", "fc2.weight": "weight != 0"}


def test_legacy_torch_pickle_of_a_state_dict_is_read(tmp_path):
    masks = cf.mlp_masks()
    torch.save(cf.masked_mlp(masks).state_dict(), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    maskset = mio.load(tmp_path / "old.pt")
    _assert_masks_equal(maskset, masks)
    assert maskset.provenance["container"] == "torch-legacy"


def test_a_foreign_tensor_subclass_inside_a_wrapped_state_dict_is_named_in_the_note():
    from simsparse.masks import coverage
    from simsparse.masks.loaders_common import RawCheckpoint
    from simsparse.masks.safe_pickle import _placeholder_class
    from simsparse.records import LayerMask, MaskSet

    foreign = _placeholder_class("torchao.dtypes.AffineQuantizedTensor")()
    raw = RawCheckpoint(path="x.pt", container="torch-zip",
                        obj={"state_dict": {"a.weight": torch.ones(4, 4), "b.weight": foreign}})
    mask = np.ones((4, 4), bool)
    maskset = MaskSet(layers={"a.weight": LayerMask(fqn="a.weight", weight_shape=(4, 4), mask=mask)})
    notes = coverage.annotate(maskset, raw).provenance["notes"]
    assert any(n.startswith("b.weight: a torchao.dtypes.AffineQuantizedTensor tensor subclass") for n in notes)
