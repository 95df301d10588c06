"""The native simsparse checkpoint: plain tensors only, validated, written atomically."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ckpt_factory as cf
from simsparse.errors import CheckpointError, SimSparseError
from simsparse.masks import io as mio
from simsparse.masks import native
from simsparse.records import Op, Workload


def _workload() -> Workload:
    return Workload(name="tiny_mlp", input_shape=(32,), source="test", ops=(
        Op(name="fc1.weight", kind="linear", input_shape=(32,), output_shape=(16,), weight_shape=(16, 32)),
        Op(name="fc2.weight", kind="linear", input_shape=(16,), output_shape=(8,), weight_shape=(8, 16)),
    ))


def test_native_file_is_plain_tensors_loadable_weights_only(tmp_path):
    cf.make_native(tmp_path / "n.pt", geometry=_workload())
    data = torch.load(tmp_path / "n.pt", weights_only=True)
    assert data["format"] == "simsparse-masks" and data["version"] == 1
    assert all(t.dtype == torch.bool for t in data["masks"].values())


def test_native_roundtrip_keeps_masks_weights_geometry_and_meta(tmp_path):
    meta = {"method": "srigl", "hyperparameters": {"alpha": 0.3, "delta_t": 100}, "accuracy": 0.91,
            "train_flops": 1.5e12, "history": [{"step": 100, "density": 0.1}], "seed": np.int64(3)}
    expected = cf.make_native(tmp_path / "n.pt", geometry=_workload(), meta=meta)
    maskset = mio.load(tmp_path / "n.pt")
    assert maskset.provenance["format"] == "native"
    for fqn, mask in expected.items():
        np.testing.assert_array_equal(maskset.layers[fqn].mask, mask)
        assert np.all(maskset.weights[fqn][~mask] == 0)
    assert maskset.geometry == _workload()
    assert maskset.provenance["meta"] == {**meta, "seed": 3}


def test_native_without_weights_loads_masks_only(tmp_path):
    cf.make_native(tmp_path / "n.pt", with_weights=False)
    assert mio.load(tmp_path / "n.pt").weights is None


def test_save_accepts_torch_masks_with_zero_one_values(tmp_path):
    native.save(tmp_path / "n.pt", masks={"fc.weight": torch.tensor([[1.0, 0.0], [0.0, 1.0]])})
    np.testing.assert_array_equal(mio.load(tmp_path / "n.pt").layers["fc.weight"].mask, np.eye(2, dtype=bool))


@pytest.mark.parametrize("meta", [{"model": torch.nn.Linear(2, 2)}, {"tensor": torch.ones(2)},
                                  {1: "non-string key"}, {"path": object()}])
def test_save_refuses_meta_that_is_not_plain_data_and_writes_nothing(tmp_path, meta):
    with pytest.raises(CheckpointError, match="meta"):
        native.save(tmp_path / "n.pt", masks=cf.mlp_masks(), meta=meta)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_non_boolean_mask_values(tmp_path):
    with pytest.raises(CheckpointError, match="other than 0/1"):
        native.save(tmp_path / "n.pt", masks={"fc.weight": np.array([[0.0, 0.5]])})


def test_save_refuses_weight_shape_that_differs_from_its_mask(tmp_path):
    with pytest.raises(CheckpointError, match="shape"):
        native.save(tmp_path / "n.pt", masks={"fc.weight": np.ones((2, 2), bool)}, weights={"fc.weight": np.ones((2, 3))})


def test_save_refuses_nan_weights(tmp_path):
    with pytest.raises(CheckpointError, match="NaN"):
        native.save(tmp_path / "n.pt", masks={"fc.weight": np.ones((1, 2), bool)},
                    weights={"fc.weight": np.array([[1.0, np.nan]])})


def test_failed_write_leaves_the_previous_file_intact_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "n.pt"
    cf.make_native(path)
    before = path.read_bytes()

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(native.torch, "save", broken_save)
    with pytest.raises(SimSparseError, match="disk full"):  # one line for the user, no partial file
        native.save(path, masks=cf.mlp_masks())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["n.pt"]


def test_save_into_missing_folder_says_which_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        native.save(tmp_path / "nope" / "n.pt", masks=cf.mlp_masks())


def test_native_file_from_a_newer_simsparse_asks_for_an_upgrade(tmp_path):
    torch.save({"format": "simsparse-masks", "version": 99, "masks": {"a.weight": torch.ones(2, 2, dtype=torch.bool)}},
               tmp_path / "n.pt")
    with pytest.raises(CheckpointError, match="upgrade simsparse"):
        mio.load(tmp_path / "n.pt")


def test_native_geometry_that_disagrees_with_a_mask_shape_is_refused(tmp_path):
    masks = cf.mlp_masks()
    masks["fc2.weight"] = np.ones((8, 17), bool)
    native.save(tmp_path / "n.pt", masks=masks, geometry=_workload())
    with pytest.raises(CheckpointError, match="fc2.weight"):
        mio.load(tmp_path / "n.pt")


def test_native_geometry_that_is_malformed_is_a_checkpoint_error(tmp_path):
    torch.save({"format": "simsparse-masks", "version": 1, "masks": {"a.weight": torch.ones(2, 2, dtype=torch.bool)},
                "geometry": {"name": "x", "ops": [{"kind": "conv"}]}}, tmp_path / "n.pt")
    with pytest.raises(CheckpointError, match="geometry"):
        mio.load(tmp_path / "n.pt")
