"""cpu_simd specs: the shipped Sapphire Rapids socket loads; bad specs name file, field and value."""

import copy

import pytest

from simsparse.archs import load_arch
from simsparse.archs.cpu_spec import KERNEL_DEFAULTS, parse_cpu_spec
from simsparse.errors import SpecError
from simsparse.specs import load_yaml
from simsparse.resources import data_dir

SPR = data_dir("accelerators") / "spr_socket.yaml"


def spr_data() -> dict:
    return copy.deepcopy(load_yaml(SPR))


def test_spr_socket_loads_with_documented_kernel_defaults():
    model = load_arch("spr_socket")
    assert model.kind == "cpu_simd"
    assert model.spec.cores == 56 and model.spec.fp32_lanes == 16 and model.spec.fma_ports == 2
    assert model.spec.params("condensed").compute_eff == KERNEL_DEFAULTS["condensed"]["compute_eff"]
    assert [lvl.name for lvl in model.spec.levels] == ["l1", "l2", "llc", "dram"]


def test_missing_field_names_the_file_and_field():
    data = spr_data()
    del data["simd"]["fp32_lanes"]
    with pytest.raises(SpecError, match=r"spr\.yaml: missing field simd\.fp32_lanes"):
        parse_cpu_spec(data, source="spr.yaml")


def test_out_of_range_value_names_field_value_and_range():
    data = spr_data()
    data["simd"]["fma_ports"] = 0
    with pytest.raises(SpecError, match=r"simd\.fma_ports = 0 is invalid; allowed: >= 1"):
        parse_cpu_spec(data, source="x.yaml")


def test_last_memory_level_must_be_unbounded_main_memory():
    data = spr_data()
    data["memory"]["levels"][-1]["bytes"] = 1024
    with pytest.raises(SpecError, match=r"memory\.levels\.3\.bytes"):
        parse_cpu_spec(data, source="x.yaml")


def test_unknown_kernel_in_parameters_lists_the_known_ones():
    data = spr_data()
    data["software"]["kernels"] = {"blocked": {"overhead_s": 1e-6}}
    with pytest.raises(SpecError, match=r"unknown key software\.kernels\.blocked.*condensed"):
        parse_cpu_spec(data, source="x.yaml")


def test_given_kernel_parameters_override_only_what_they_name():
    data = spr_data()
    data["software"]["kernels"] = {"csr": {"bw_eff": 0.5}}
    spec = parse_cpu_spec(data, source="x.yaml")
    assert spec.params("csr").bw_eff == 0.5
    assert spec.params("csr").overhead_s == KERNEL_DEFAULTS["csr"]["overhead_s"]


def test_set_override_changes_thread_count():
    assert load_arch("spr_socket", ["software.threads=8"]).spec.threads == 8
