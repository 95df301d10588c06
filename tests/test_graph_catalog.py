from pathlib import Path

import pytest

from simsparse.errors import SpecError, UnknownNameError
from simsparse.graph import catalog
from simsparse.graph.catalog import dense_macs_per_sample, list_workloads, load_workload


@pytest.mark.parametrize("name,gmacs", [("resnet50", 4.1), ("vit_b16", 17.6), ("bert_base_128", 11.2)])
def test_catalog_dense_macs_match_public_figures_within_3_percent(name, gmacs):
    macs = dense_macs_per_sample(load_workload(name))
    assert abs(macs / 1e9 - gmacs) / gmacs < 0.03


def test_bert_384_costs_more_than_three_times_bert_128_because_attention_is_quadratic():
    ratio = dense_macs_per_sample(load_workload("bert_base_384")) / dense_macs_per_sample(load_workload("bert_base_128"))
    assert 3.0 < ratio < 3.3


@pytest.mark.parametrize("name", sorted(catalog.ENTRIES))
def test_shipped_catalog_file_equals_a_fresh_trace_of_the_model(name):
    _, text = catalog.generate(name)
    assert catalog.workload_path(name).read_text(encoding="utf-8") == text


def test_list_workloads_reports_params_and_macs_for_every_entry():
    infos = {w.name: w for w in list_workloads()}
    assert set(catalog.ENTRIES) <= set(infos)
    assert infos["resnet50"].params == 25_557_032
    assert infos["resnet50"].dense_macs_per_sample == dense_macs_per_sample(load_workload("resnet50"))


def test_catalog_holds_non_gemm_ops_with_element_counts():
    wl = load_workload("vit_b16")
    kinds = {o.kind for o in wl.ops}
    assert {"conv", "linear", "matmul", "softmax", "norm", "elementwise"} <= kinds
    softmax = next(o for o in wl.ops if o.kind == "softmax")
    assert softmax.elements_out == 12 * 197 * 197


def test_unknown_workload_lists_known_names():
    with pytest.raises(UnknownNameError, match="resnet50"):
        load_workload("resnet51")


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "w.yaml"
    p.write_text(text)
    return p


def test_invalid_field_names_file_field_and_value(tmp_path):
    p = _write(tmp_path, "version: 1\nname: x\ninput_shape: [4]\nops:\n- {name: fc.weight, kind: lineer}\n")
    with pytest.raises(SpecError, match=r"w\.yaml.*ops\.0\.kind.*lineer"):
        load_workload(str(p))


def test_conv_with_inconsistent_channels_is_refused(tmp_path):
    p = _write(tmp_path, "version: 1\nname: x\ninput_shape: [3, 8, 8]\nops:\n"
                         "- {name: c.weight, kind: conv, input_shape: [4, 8, 8], weight_shape: [8, 3, 3, 3]}\n")
    with pytest.raises(SpecError, match="weight_shape"):
        load_workload(str(p))


def test_user_workload_file_loads_by_path(tmp_path):
    p = _write(tmp_path, "version: 1\nname: tiny\ninput_shape: [16]\nops:\n"
                         "- {name: fc.weight, kind: linear, weight_shape: [8, 16]}\n")
    wl = load_workload(str(p))
    assert wl.name == "tiny" and dense_macs_per_sample(wl) == 128
