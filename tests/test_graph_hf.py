"""Geometry of Hugging Face models from their config alone (graph/hf.py), checked against a trace
of the reference PyTorch decoder (models/llm.py) and against hand-computed GQA shapes."""

import json
from collections import Counter

import pytest
import torch

from simsparse import api
from simsparse.errors import GeometryError
from simsparse.graph import hf, trace
from simsparse.graph.catalog import load_workload, write_workload
from simsparse.graph.lower import lower
from simsparse.models.llm import SMALL_CONFIG, LlamaLike

GQA = dict(SMALL_CONFIG, num_attention_heads=8, num_key_value_heads=2)


def _gemm_signature(wl):
    linears = {o.name: tuple(o.weight_shape) + (o.tokens,) for o in wl.ops if o.kind == "linear"}
    matmuls = Counter((g.m, g.n, g.k, g.count) for o, g in lower(wl, batch=1) if o.kind == "matmul")
    return linears, matmuls


@pytest.mark.parametrize("decode", [False, True])
def test_config_geometry_equals_a_trace_of_the_reference_decoder(decode):
    with torch.device("meta"):
        model = LlamaLike(GQA)
    ids = torch.zeros((1, 1 if decode else 12), dtype=torch.long, device="meta")
    traced = trace(model, (ids, 20) if decode else ids, name="ref")
    from_config = hf.hf_workload(GQA, name="cfg", seq=12, decode=decode, context=20)
    assert _gemm_signature(traced) == _gemm_signature(from_config)


def test_decode_gemm_shapes_follow_grouped_query_attention():
    cfg = dict(GQA, hidden_size=512, num_attention_heads=16, num_key_value_heads=4)   # head_dim 32, g = 4
    wl = hf.hf_workload(cfg, name="d", decode=True, context=100)
    qk = wl.op("model.layers.0.self_attn.qk")
    av = wl.op("model.layers.0.self_attn.av")
    assert qk.gemm_mnk == (4, 101, 32) and qk.count == 4
    assert av.gemm_mnk == (4, 32, 101) and av.count == 4
    assert wl.op("model.layers.0.self_attn.k_proj.weight").weight_shape == (4 * 32, 512)
    assert wl.op("lm_head.weight").tokens == 1 and wl.phase == "decode" and wl.tokens == 1


def test_meta_device_trace_equals_a_real_trace():
    torch.manual_seed(0)
    real_model = LlamaLike(GQA)
    with torch.device("meta"):
        meta_model = LlamaLike(GQA)
    ids = torch.zeros((1, 8), dtype=torch.long)
    assert trace(real_model, ids, name="m").ops == trace(meta_model, ids.to("meta"), name="m").ops


def test_a_70b_config_builds_in_well_under_a_second_without_weights():
    cfg = {"model_type": "llama", "hidden_size": 8192, "num_hidden_layers": 80, "num_attention_heads": 64,
           "num_key_value_heads": 8, "intermediate_size": 28672, "vocab_size": 128256}
    wl = hf.hf_workload(cfg, name="70b", seq=2048)
    assert 69e9 < hf.params(cfg) < 71e9 and len([o for o in wl.ops if o.kind == "linear"]) == 80 * 7 + 1


@pytest.mark.parametrize("model_type,extra", [("bert", {"vocab_size": 100}), ("vit", {"image_size": 32, "patch_size": 8}),
                                              ("gpt2", {"n_embd": 64, "n_head": 4, "n_layer": 2, "vocab_size": 100})])
def test_encoder_and_gpt2_configs_give_named_geometry(model_type, extra):
    cfg = {"model_type": model_type, "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
           "intermediate_size": 128, **extra}
    wl = hf.hf_workload(cfg, name=model_type, seq=16)
    assert any(o.kind == "matmul" for o in wl.ops) and all(o.weight_shape for o in wl.ops if o.kind == "linear")


@pytest.mark.parametrize("model_type", ["bert", "vit"])
def test_a_decode_step_of_an_encoder_is_refused_not_run_as_a_prefill(model_type):
    cfg = {"model_type": model_type, "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
           "intermediate_size": 128, "vocab_size": 100}
    with pytest.raises(GeometryError, match=f"--decode applies to decoders .* not {model_type}"):
        hf.hf_workload(cfg, name=model_type, decode=True, context=8)


def test_unknown_family_names_the_known_ones():
    with pytest.raises(GeometryError, match="llama"):
        hf.hf_workload({"model_type": "mamba"}, name="x", seq=4)


def test_shipped_llm_workloads_declare_their_phase_and_tokens():
    wl = load_workload("llama3_8b_decode_2048")
    assert wl.phase == "decode" and wl.context == 2048
    assert wl.op("model.layers.0.self_attn.qk").gemm_mnk == (4, 2049, 128)


def test_evaluate_reports_tokens_per_second_beside_dense():
    r = api.evaluate(arch="a100_2to4", workload="llama3_2_1b_decode_2048", pattern="2:4", batch=8)
    llm = r.provenance["llm"]
    assert llm["tokens_per_s"] == pytest.approx(8 / r.total.latency_s)
    assert llm["dense_time_per_output_token_s"] == r.dense_total.latency_s


def test_a_traced_workload_written_as_yaml_reads_back_unchanged(tmp_path):
    wl = api.trace(model="module:simsparse.models.llm:small_llama", seq=8)
    path = write_workload(wl, tmp_path / "w.yaml")
    assert load_workload(path).ops == wl.ops


def test_hf_spec_and_config_beside_a_checkpoint_give_geometry(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(GQA))
    wl = api.trace(model=f"hf:{tmp_path}", decode=True, context=64)
    assert wl.op("model.layers.1.self_attn.qk").gemm_mnk == (4, 65, 32)


def test_evaluate_takes_a_module_and_example_inputs():
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 8))
    r = api.evaluate(arch="a100_2to4", model=model, example_inputs=torch.zeros(4, 64), pattern="2:4")
    assert r.total.flops_dense == 2 * (64 * 32 + 32 * 8)


def test_torchvision_spec_without_torchvision_is_a_clear_error():
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001
        with pytest.raises(GeometryError, match="simsparse\\[torchvision\\]"):
            api.trace(model="torchvision:resnet18")
        return
    assert api.trace(model="torchvision:resnet18").op("conv1.weight").weight_shape == (64, 3, 7, 7)
