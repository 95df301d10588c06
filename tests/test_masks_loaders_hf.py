"""Checkpoints made the way their tools make them: compressed-tensors bitmasks (written from the
format's documented rules), save_pretrained-style safetensors shards, real torch.ao sparsifiers."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from simsparse import api
from simsparse.errors import CheckpointError
from simsparse.masks import io as mio
from simsparse.models.llm import SMALL_CONFIG


def _model_weights(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {f"model.layers.{i}.mlp.{p}.weight": torch.randn(64, 32, generator=g) for i in range(3)
            for p in ("up_proj", "gate_proj")}


def _nm(w: torch.Tensor) -> np.ndarray:
    groups = w.abs().reshape(w.shape[0], -1, 4)
    keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(2, groups.topk(2, dim=2).indices, True)
    return keep.reshape(w.shape).numpy()


def _write_compressed(folder, fmt):
    """compressed-tensors layout: values, bitmask packed little-endian per row, shape, row offsets."""
    tensors, truth = {"lm_head.weight": torch.randn(10, 32)}, {}
    for name, w in _model_weights().items():
        mask = _nm(w) if fmt == "sparse-24-bitmask" else (w.abs() > 1.0).numpy()
        prefix = name[: -len(".weight")]
        tensors[f"{prefix}.bitmask"] = torch.from_numpy(np.packbits(mask, axis=-1, bitorder="little"))
        tensors[f"{prefix}.compressed"] = w[torch.from_numpy(mask)]
        if fmt == "sparse-24-bitmask":
            tensors[f"{prefix}.compressed"] = tensors[f"{prefix}.compressed"].reshape(w.shape[0], -1)
            tensors[f"{prefix}.shape"] = torch.tensor(list(w.shape)).reshape(-1, 1)
        else:
            counts = torch.from_numpy(mask.sum(axis=1))
            tensors[f"{prefix}.shape"] = torch.tensor(list(w.shape))
            tensors[f"{prefix}.row_offsets"] = torch.cumsum(counts, 0) - counts
        truth[name] = mask
    save_file(tensors, str(folder / "model.safetensors"))
    cfg = {"model_type": "llama", "quantization_config": {"quant_method": "compressed-tensors", "sparsity_config": {
        "format": fmt, "sparsity_structure": "2:4" if "24" in fmt else "unstructured", "ignore": ["lm_head"]}}}
    (folder / "config.json").write_text(json.dumps(cfg))
    return truth


@pytest.mark.parametrize("fmt", ["sparse-bitmask", "sparse-24-bitmask"])
def test_compressed_tensors_bitmask_checkpoints_read_their_true_pattern(tmp_path, fmt):
    truth = _write_compressed(tmp_path, fmt)
    res = api.inspect(path=tmp_path)
    assert res.masks.provenance["format"] == f"compressed-tensors {fmt}"
    for name, mask in truth.items():
        assert np.array_equal(res.masks.layers[name].mask, mask)
    if fmt == "sparse-24-bitmask":
        assert all(res.patterns[n].is_nm(2, 4) for n in truth)
    assert res.masks.provenance["coverage"].startswith("masks for 7 of 7 GEMM layers")


def test_a_damaged_bitmask_is_a_clear_error(tmp_path):
    _write_compressed(tmp_path, "sparse-bitmask")
    from safetensors.torch import load_file
    sd = load_file(str(tmp_path / "model.safetensors"))
    sd["model.layers.0.mlp.up_proj.compressed"] = sd["model.layers.0.mlp.up_proj.compressed"][:-1].clone()
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="compressed holds"):
        mio.load(tmp_path)


def _write_shards(folder, n_shards=3):
    weights = {k: (v * (v.abs() > 0.5)).contiguous() for k, v in _model_weights(1).items()}
    names = sorted(weights)
    weight_map = {}
    for i in range(n_shards):
        part = {k: weights[k] for k in names[i::n_shards]}
        file = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        save_file(part, str(folder / file), metadata={"format": "pt"})
        weight_map.update({k: file for k in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text(json.dumps(dict(SMALL_CONFIG, hidden_size=32, num_attention_heads=4,
                                                          intermediate_size=64, num_hidden_layers=3)))
    return weights


@pytest.mark.parametrize("via_index", [False, True])
def test_sharded_directories_and_indexes_read_every_shard(tmp_path, via_index):
    weights = _write_shards(tmp_path)
    maskset = mio.load(tmp_path / "model.safetensors.index.json" if via_index else tmp_path)
    assert set(maskset.layers) == set(weights)
    for k, w in weights.items():
        assert np.array_equal(maskset.layers[k].mask, (w != 0).numpy())


def test_a_missing_shard_is_an_error_not_dense_layers(tmp_path):
    _write_shards(tmp_path)
    (tmp_path / "model-00002-of-00003.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        mio.load(tmp_path)


def test_a_directory_without_its_index_still_refuses_a_missing_numbered_shard(tmp_path):
    _write_shards(tmp_path)
    (tmp_path / "model.safetensors.index.json").unlink()
    (tmp_path / "model-00003-of-00003.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model-00003-of-00003.safetensors is missing"):
        mio.load(tmp_path)


def test_a_single_shard_of_a_model_fails_evaluate_unless_partial_is_allowed(tmp_path):
    _write_shards(tmp_path)
    shard = tmp_path / "model-00001-of-00003.safetensors"
    kw = dict(arch="a100_2to4", mask=str(shard), model=f"hf:{tmp_path}", seq=16)
    with pytest.raises(CheckpointError, match="--allow-partial"):
        api.evaluate(**kw)
    r = api.evaluate(**kw, allow_partial=True)
    assert r.provenance["coverage"].startswith("masks for 2 of 22 GEMM layers; dense:")


def _sparsified_model():
    from torch.ao.pruning import WeightNormSparsifier

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4))
    sp = WeightNormSparsifier(sparsity_level=1.0, sparse_block_shape=(1, 4), zeros_per_block=2)
    sp.prepare(model, config=[{"tensor_fqn": "0.weight"}, {"tensor_fqn": "2.weight"}])
    sp.step()
    return model, sp


def test_torch_ao_sparsifier_state_gives_the_masks(tmp_path):
    model, sp = _sparsified_model()
    torch.save({"model": model.state_dict(), "sparsifier": sp.state_dict()}, tmp_path / "ao.pt")
    maskset = mio.load(tmp_path / "ao.pt")
    assert maskset.provenance["format"] == "torch-ao-sparsifier"
    for fqn in ("0.weight", "2.weight"):
        assert np.array_equal(maskset.layers[fqn].mask, sp.state[fqn]["mask"].numpy())
        assert maskset.layers[fqn].density == 0.5


def test_a_parametrized_weight_without_its_mask_says_how_to_save_it(tmp_path):
    model, _ = _sparsified_model()
    torch.save(model.state_dict(), tmp_path / "p.pt")
    res = api.inspect(path=tmp_path / "p.pt")
    assert any("squash_mask()" in n and "sparsifier.state_dict()" in n for n in res.masks.provenance["notes"])


def test_a_plain_trainer_checkpoint_is_not_called_chase(tmp_path):
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.save({"epoch": 3, "arch": "mlp", "state_dict": model.state_dict(), "optimizer": opt.state_dict()},
               tmp_path / "t.pt")
    assert mio.load(tmp_path / "t.pt").provenance["format"] == "trainer-checkpoint"


def test_inspect_prints_the_coverage_line(tmp_path):
    from simsparse.report import inspect_table

    _write_shards(tmp_path)
    assert "masks for 6 of 6 GEMM layers" in inspect_table(api.inspect(path=tmp_path))
