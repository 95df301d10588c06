"""Untrusted checkpoints are bounded: every size a file declares is checked before it is allocated,
and what it unpickled before any loader walks it."""

import time

import pytest
import torch

import hostile_corpus as hc
from simsparse.cli import main
from simsparse.errors import CheckpointError
from simsparse.masks import io
from simsparse.masks.bounds import check_object_graph


@pytest.mark.parametrize("maker, fragment", [
    (lambda d: hc.make_zip_bomb(d, inflated_bytes=64 << 20), "zip bomb"),
    (lambda d: hc.make_stride0_view(d, side=20000), "overlapping view"),
    (lambda d: hc.make_aliased_storage(d, side=256, aliases=2000), "aliased behind many weights"),
    (lambda d: hc.make_safetensors_offsets(d, side=100000), "declares bytes"),
    (lambda d: hc.make_srigl_laughs(d), "billion laughs"),
    (lambda d: hc.make_chase_laughs(d), "billion laughs"),
    (lambda d: hc.make_deep_meta(d, depth=5000, layout="chase"), "nests deeper"),
    (lambda d: hc.make_deep_meta(d, depth=5000, layout="native"), "nests deeper"),
    (lambda d: hc.make_bad_geometry(d, op={"tokens": -3}), "tokens"),
    (lambda d: hc.make_bad_geometry(d, op={"kind": "frobnicate"}), "kind"),
    (lambda d: hc.make_bad_geometry(d, op={"weight_shape": [-8, 16]}), "weight_shape"),
])
def test_hostile_checkpoints_are_refused_quickly_with_one_line(tmp_path, maker, fragment):
    path = maker(tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match=fragment) as err:
        io.load(path)
    assert time.perf_counter() - t0 < 5.0
    assert "\n" not in str(err.value) and "MemoryError" not in str(err.value)


def test_tied_weights_sharing_one_storage_are_accepted():
    w = torch.randn(64, 32)
    check_object_graph({"embed.weight": w, "head.weight": w, "other.weight": torch.randn(8, 8)}, source="t")


def test_a_view_of_part_of_a_storage_is_accepted():
    base = torch.randn(100, 100)
    check_object_graph({"a.weight": base[:10, :10], "b.weight": base[50:]}, source="t")


def test_shared_metadata_lists_are_walked_once_not_expanded(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError):
        check_object_graph({"meta": hc.shared_list_bomb(width=10, levels=12)}, source="t")
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("content", ["garbage", "list", "masks", "csv"])
def test_train_resume_of_something_that_is_not_a_training_state_is_one_line(tmp_path, capsys, content):
    resume = tmp_path / "state.pt"
    if content == "garbage":
        resume.write_bytes(b"\x80\x04garbage" * 10)
    elif content == "list":
        torch.save([1, 2, 3], resume)
    elif content == "masks":
        import ckpt_factory as cf

        cf.make_native(resume)
    else:
        resume.write_bytes(bytes(range(256)) * 8)
    code = main(["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.5",
                 "--steps", "2", "--resume", str(resume), "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--resume" in err
    assert not (tmp_path / "x.pt").exists()


def test_train_out_naming_a_folder_is_refused_before_training(tmp_path, capsys):
    code = main(["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.5",
                 "--steps", "2", "--out", str(tmp_path)])
    assert code == 2 and "is a folder" in capsys.readouterr().err


def test_save_every_replaces_a_planted_state_symlink_without_writing_its_target(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "x.pt.state.pt").symlink_to(victim)
    code = main(["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.5",
                 "--steps", "2", "--save-every", "1", "--out", str(tmp_path / "x.pt")])
    assert code == 0 and victim.read_text() == "precious"
    assert not (tmp_path / "x.pt.state.pt").is_symlink()


def test_a_language_model_geometry_keeps_its_phase_tokens_and_context_through_a_checkpoint():
    from simsparse.geometry_io import workload_from_dict, workload_to_dict
    from simsparse.graph.catalog import load_workload

    wl = load_workload("llama3_2_1b_decode_2048")
    back = workload_from_dict(workload_to_dict(wl))
    assert (back.phase, back.tokens, back.context) == ("decode", 1, 2048) and back.ops == wl.ops


@pytest.mark.parametrize("field, value", [("phase", "sideways"), ("tokens", -3), ("context", -1), ("phase", 7)])
def test_checkpoint_geometry_phase_fields_are_validated_like_workload_yaml(field, value):
    from simsparse.errors import GeometryError
    from simsparse.geometry_io import workload_from_dict, workload_to_dict
    from simsparse.graph.catalog import load_workload

    data = {**workload_to_dict(load_workload("mlp")), field: value}
    with pytest.raises(GeometryError, match=field):
        workload_from_dict(data)
