"""Bad checkpoints fail with one CheckpointError line saying what is wrong and how to fix it."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import ckpt_factory as cf
from simsparse.errors import CheckpointError
from simsparse.masks import io as mio


def _error(path) -> str:
    with pytest.raises(CheckpointError) as info:
        mio.load(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    assert "no such file" in _error(tmp_path / "absent.pt")


def test_directory(tmp_path):
    assert "is a directory" in _error(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "e.pt").write_bytes(b"")
    assert "empty" in _error(tmp_path / "e.pt")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "u.pt"
    cf.make_state_dict(path)
    path.chmod(0)
    try:
        assert "not readable" in _error(path)
    finally:
        path.chmod(0o600)


def test_text_file_is_not_a_checkpoint(tmp_path):
    (tmp_path / "t.pt").write_text("hello: world\n")
    message = _error(tmp_path / "t.pt")
    assert "not a checkpoint" in message and "safetensors" in message


def test_random_bytes(tmp_path):
    (tmp_path / "r.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    _error(tmp_path / "r.pt")


@pytest.mark.parametrize("fmt", ["state_dict", "native", "safetensors", "srigl"])
def test_truncated_file(tmp_path, fmt):
    path = tmp_path / "c.pt"
    cf.ALL_FORMATS[fmt](path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert "complete" in _error(path)


def test_checkpoint_without_weight_tensors(tmp_path):
    torch.save({"bn.weight": torch.ones(4), "fc.bias": torch.ones(4), "step": 3}, tmp_path / "n.pt")
    assert "no conv/linear weight" in _error(tmp_path / "n.pt")


def test_checkpoint_without_tensors_lists_the_loaders_tried(tmp_path):
    torch.save({"epoch": 3, "note": "nothing here"}, tmp_path / "n.pt")
    message = _error(tmp_path / "n.pt")
    assert "tried: native, " in message and "safetensors, srigl, chase" in message


def test_prune_mask_with_wrong_shape(tmp_path):
    torch.save({"fc.weight_orig": torch.ones(4, 8), "fc.weight_mask": torch.ones(4, 4)}, tmp_path / "p.pt")
    assert "shape" in _error(tmp_path / "p.pt")


def test_asp_mask_with_wrong_shape(tmp_path):
    torch.save({"fc.weight": torch.ones(4, 8), "fc.__weight_mma_mask": torch.ones(8, 4, dtype=torch.bool)},
               tmp_path / "a.pt")
    assert "shape" in _error(tmp_path / "a.pt")


@pytest.mark.parametrize("bad", [2.0, 0.5, -1.0, float("nan")])
def test_mask_with_values_other_than_zero_and_one(tmp_path, bad):
    mask = torch.ones(4, 8)
    mask[0, 0] = bad
    torch.save({"fc.weight_orig": torch.ones(4, 8), "fc.weight_mask": mask}, tmp_path / "p.pt")
    assert "other than 0/1" in _error(tmp_path / "p.pt")


def test_native_mask_with_values_other_than_zero_and_one(tmp_path):
    torch.save({"format": "simsparse-masks", "version": 1, "masks": {"fc.weight": torch.full((2, 2), 3)}},
               tmp_path / "n.pt")
    assert "other than 0/1" in _error(tmp_path / "n.pt")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_with_nan_or_inf(tmp_path, bad):
    weight = torch.ones(4, 8)
    weight[1, 2] = bad
    torch.save({"fc.weight": weight}, tmp_path / "w.pt")
    assert "NaN or Inf" in _error(tmp_path / "w.pt")


def test_asp_mask_without_its_weight(tmp_path):
    torch.save({"fc.__weight_mma_mask": torch.ones(4, 8, dtype=torch.bool), "other.weight": torch.ones(2, 2)},
               tmp_path / "a.pt")
    assert "no weight" in _error(tmp_path / "a.pt")
