"""Bring-your-own-model inputs are untrusted too: Hugging Face configs, shard indexes and
compressed-tensors layers go through the same bounds as checkpoints, trace options through the one
strict parser, and big synthetic shapes need a mask only where one must be drawn."""

import time

import pytest

import hostile_corpus as hc
from simsparse import api, parse
from simsparse.cli import main
from simsparse.errors import CheckpointError, GeometryError, PatternError, SimSparseError
from simsparse.graph import hf
from simsparse.graph.resolve import TraceOptions
from simsparse.masks import io, loaders_hf, synthetic


def one_line_exit_2(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_deeply_nested_config_json_is_one_line(tmp_path, capsys):
    cfg = hc.make_hf_deep_config(tmp_path)
    with pytest.raises(GeometryError, match="nested too deeply"):
        hf.load_config(cfg)
    one_line_exit_2(capsys, ["trace", f"hf:{cfg}", "--seq", "8", "-o", str(tmp_path / "w.yaml")], "nested too deeply")
    assert not (tmp_path / "w.yaml").exists()


@pytest.mark.parametrize("field, value", [("num_hidden_layers", 10**9), ("hidden_size", 2**31), ("vocab_size", 10**20)])
def test_a_config_declaring_absurd_sizes_is_refused_before_building_ops(tmp_path, field, value):
    t0 = time.perf_counter()
    with pytest.raises(GeometryError, match=f"{field} = {value} is larger than"):
        api.trace(model=f"hf:{hc.make_hf_config(tmp_path, **{field: value})}", seq=8)
    assert time.perf_counter() - t0 < 2.0


def test_a_shard_index_nested_past_the_parser_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="shard index .* not readable JSON"):
        io.load(hc.make_hf_deep_index(tmp_path))


def test_a_shard_index_larger_than_the_cap_is_refused_before_it_is_read_whole(tmp_path, monkeypatch):
    folder = hc.make_hf_deep_index(tmp_path, depth=10)
    monkeypatch.setattr(loaders_hf, "MAX_JSON_BYTES", 16)
    with pytest.raises(CheckpointError, match="larger than 16 bytes"):
        io.load(folder)


def test_a_compressed_tensors_shape_larger_than_its_bitmask_is_refused_without_allocating(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="bitmask has shape"):
        io.load(hc.make_ct_declared_shape(tmp_path))
    assert time.perf_counter() - t0 < 2.0


def test_a_honest_compressed_tensors_layer_of_the_same_file_reads(tmp_path):
    ms = io.load(hc.make_ct_declared_shape(tmp_path, cols=8))
    assert ms.layers["model.layers.0.mlp.up_proj.weight"].mask.sum() == 8


@pytest.mark.parametrize("kwargs, fragment", [({"seq": "６４"}, "non-ASCII"), ({"seq": 0}, "--seq"),
                                              ({"context": -1}, "--context"), ({"input_shape": (3, 0, 4)}, "--input"),
                                              ({"input_shape": "3,224"}, None)])
def test_trace_options_are_checked_by_the_strict_parser_whoever_builds_them(kwargs, fragment):
    if fragment is None:
        assert TraceOptions(**kwargs).input_shape == (3, 224)
        return
    with pytest.raises(SimSparseError, match=fragment):
        TraceOptions(**kwargs)


def test_a_module_factory_that_raises_is_one_line(capsys, tmp_path):
    one_line_exit_2(capsys, ["trace", "module:os:system", "--seq", "8", "-o", str(tmp_path / "w.yaml")],
                    "the factory raised TypeError")


def test_the_api_and_the_patterns_share_the_one_parser():
    assert api.parse_gemm is parse.parse_gemm
    assert synthetic.parse_pattern is parse.parse_pattern and synthetic.PatternSpec is parse.PatternSpec


@pytest.mark.parametrize("pattern", ["2:4", "dense", "fanin=0.1", "channels=0.5"])
def test_a_huge_gemm_with_a_closed_form_pattern_needs_no_mask(pattern):
    t0 = time.perf_counter()
    r = api.evaluate(arch="a100_2to4", gemm="1,100000,100000", pattern=pattern)
    assert r.total.flops_dense == 2 * 10**10 and time.perf_counter() - t0 < 5.0


def test_a_huge_gemm_whose_mask_must_be_drawn_is_one_line():
    with pytest.raises(PatternError, match="must be drawn"):
        api.evaluate(arch="a100_2to4", gemm="1,100000,100000", pattern="density=0.5")


def test_a_pattern_wider_than_the_reduction_is_refused():
    with pytest.raises(PatternError, match="exceeds the reduction"):
        api.evaluate(arch="a100_2to4", gemm="1,64,64", pattern="1:100000000")


@pytest.mark.parametrize("argv, fragment", [
    (["--steps", "６４"], "non-ASCII"), (["--steps", "0"], "--steps"), (["--sparsity", "nan"], "--sparsity"),
    (["--seed", "-1"], "--seed"), (["--nm", "5:4"], "N:M"), (["--batch-size", "1_0"], "--batch-size")])
def test_train_explain_takes_the_same_strict_numbers_as_train(capsys, argv, fragment):
    base = ["train", "--explain", "--method", "srigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.9",
            "--steps", "4"]
    for flag, value in zip(argv[::2], argv[1::2]):
        base = base[:base.index(flag)] + base[base.index(flag) + 2:] if flag in base else base
        base += [flag, value]
    one_line_exit_2(capsys, base, fragment)


@pytest.mark.parametrize("kwargs", [{"steps": 0}, {"seed": -1}, {"sparsity": float("inf")}, {"batch_size": "1_0"}])
def test_api_training_functions_check_their_numbers(kwargs):
    args = {"method": "rigl", "model": "mlp", "data": "synthetic", "sparsity": 0.5, "steps": 2, **kwargs}
    with pytest.raises(SimSparseError):
        api.explain_training(**args)
    with pytest.raises(SimSparseError):
        api.train(out="never.pt", **args)
