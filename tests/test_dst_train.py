"""simsparse.dst.train.run: checkpoint contents, resume, input errors, recipes, data."""

from pathlib import Path

import pytest
import torch

from simsparse.dst.data import BatchStream, load_data
from simsparse.dst.recipes import load_recipe
from simsparse.dst.train import load_methods, run
from simsparse.errors import SimSparseError, SpecError, UnknownNameError
from simsparse.masks.io import load
from simsparse.masks.patterns import analyze

pytestmark = pytest.mark.usefixtures("torch_single_thread")
SMALL_CNN = {"width": 4, "depth": 2, "convs_per_stage": 2}


def _run(tmp_path, method, name="ckpt.pt", **kw):
    args = dict(model="cnn", data="synthetic", sparsity=0.8, steps=24, out=tmp_path / name, progress=False,
                batch_size=32, lr=0.05, model_options=SMALL_CNN)
    args.update(kw)
    return run(method=method, **args)


def test_chase_checkpoint_records_removed_channels_and_inspect_sees_them(tmp_path):
    res = _run(tmp_path, "chase", recipe_overrides=("extra.channel_sparsity=0.5",))
    assert any(res.removed_channels.values())
    ms = load(res.out)
    meta = ms.provenance.get("meta", ms.provenance)
    assert meta["removed_channels"] == {k: list(v) for k, v in res.removed_channels.items()}
    for fqn, idx in res.removed_channels.items():
        if idx:
            pat = analyze(ms.layers[fqn].mask)
            assert set(idx) <= set(pat.removed_rows)
    # a short run ends a few final-phase updates after the memory bound ρ ≤ d + 0.05
    assert ms.geometry is not None and 0.19 <= ms.density <= 0.25
    assert meta["method_notes"]["channel_coupling"]["source"] == "graph.coupling"


def test_checkpoint_meta_holds_method_accuracy_flops_and_history(tmp_path):
    res = _run(tmp_path, "rigl")
    ms = load(res.out)
    meta = ms.provenance.get("meta", ms.provenance)
    assert meta["method"] == "rigl" and meta["hyperparameters"]["alpha"] == 0.3
    assert meta["test_accuracy"] == res.test_accuracy
    assert 0.0 < meta["train_flops_relative"] < 1.0
    assert meta["history"] and "density" in meta["history"][0]
    for fqn, layer in ms.layers.items():
        assert (ms.weights[fqn][~layer.mask] == 0).all()


def test_resuming_from_a_saved_state_continues_identically(tmp_path):
    straight = _run(tmp_path, "srigl", name="a.pt", steps=15, save_every=10)
    state = tmp_path / "a.pt.state.pt"
    assert state.is_file()
    resumed = _run(tmp_path, "srigl", name="b.pt", steps=15, resume_from=state)
    a, b = load(straight.out), load(resumed.out)
    for fqn in a.layers:
        assert (a.layers[fqn].mask == b.layers[fqn].mask).all()
        assert (a.weights[fqn] == b.weights[fqn]).all()
    assert straight.train_flops == resumed.train_flops


@pytest.mark.parametrize("kw, err", [
    (dict(method="rigl-x"), UnknownNameError), (dict(sparsity=1.0), SimSparseError),
    (dict(sparsity=-0.1), SimSparseError), (dict(method="srste", nm=(3, 2)), SimSparseError),
    (dict(method="srste", nm=None), SimSparseError), (dict(data="nope"), UnknownNameError),
    (dict(model="nope"), UnknownNameError), (dict(method="rigl", no_ablation=True), SimSparseError)])
def test_bad_input_is_a_one_line_user_error(tmp_path, kw, err):
    args = dict(method="rigl", model="mlp", data="synthetic", sparsity=0.9, steps=2, out=tmp_path / "x.pt",
                progress=False)
    args.update(kw)
    with pytest.raises(err) as info:
        run(**args)
    assert "\n" not in str(info.value)


def test_every_method_has_a_valid_shipped_recipe():
    for name in load_methods():
        assert load_recipe(method=name).method == name


def test_recipe_errors_name_the_field(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("version: 1\nmethod: rigl\nalpha: 2.0\noptimizer: {name: sgd, lr: 0.1}\nlr_schedule: {kind: cosine}\n")
    with pytest.raises(SpecError, match="alpha"):
        load_recipe(method="rigl", path=bad)


def test_synthetic_data_is_seeded_and_split():
    a, b = load_data("synthetic", seed=3), load_data("synthetic", seed=3)
    assert torch.equal(a.train_x, b.train_x) and a.input_shape == (3, 16, 16)
    assert len(a.test_y) > 0 and set(a.train_y.tolist()) == set(range(10))
    assert not torch.equal(a.train_x, load_data("synthetic", seed=4).train_x)


def test_image_folders_need_torchvision_or_an_existing_folder():
    with pytest.raises(SimSparseError, match="torchvision|does not exist"):
        load_data("folder:/nonexistent/dir", seed=0)


def test_batch_stream_state_resumes_the_same_batches():
    s = BatchStream(10, batch_size=4, seed=0)
    s.next_indices()
    state = s.state_dict()
    expected = [s.next_indices() for _ in range(4)]
    t = BatchStream(10, batch_size=4, seed=0)
    t.load_state_dict(state)
    assert all(torch.equal(x, t.next_indices()) for x in expected)


def test_digits_is_the_bundled_8x8_set_split_75_25():
    pytest.importorskip("sklearn")
    d = load_data("digits", seed=0)
    assert d.input_shape == (1, 8, 8) and d.num_classes == 10
    assert len(d.train_y) + len(d.test_y) == 1797 and len(d.test_y) == 1797 // 4
