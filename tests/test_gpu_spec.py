"""The GPU arch specs: shipped files load with their datasheet peaks; bad values are rejected."""

from __future__ import annotations

import pytest

from simsparse import api
from simsparse.archs import arch_data, load_arch, shipped_arch_names
from simsparse.errors import SpecError
from simsparse.resources import data_dir


GPUS = tuple(a for a in shipped_arch_names() if arch_data(a)[0].get("kind") == "gpu_sparse_tensor_core")


@pytest.mark.parametrize("name,fp16_tflops,sms,hbm_tb_s,tdp_w", [
    ("a100_2to4", 312, 108, 2.039, 400), ("a100_pcie_2to4", 312, 108, 1.935, 300),
    ("h100_2to4", 989, 132, 3.35, 700), ("h100_pcie_2to4", 756, 114, 2.0, 350), ("h200_2to4", 989, 132, 4.8, 700),
    ("b200_2to4", 2250, 148, 8.0, 1000), ("rtx4090_2to4", 165.2, 128, 1.008, 450), ("rtx3090_2to4", 71, 82, 0.936, 350)])
def test_shipped_specs_match_the_datasheet(name, fp16_tflops, sms, hbm_tb_s, tdp_w):
    spec = load_arch(name).spec
    peak = 2 * spec.sms * spec.dense_fma_per_clk_per_sm["fp16"] * spec.clock_hz / 1e12
    assert peak == pytest.approx(fp16_tflops, rel=0.01)
    assert spec.sms == sms and spec.sparse_speedup == 2.0 and spec.power.tdp_w == tdp_w
    assert spec.hbm_bytes_per_s == pytest.approx(hbm_tb_s * 1e12)
    assert set(spec.backends) == {"cusparselt", "cutlass"}


@pytest.mark.parametrize("name", GPUS)
def test_every_gpu_spec_loads_with_both_validated_stacks(name):
    model = load_arch(name)
    assert {"kernel", "pytorch-eager"} <= set(model.software_stacks()) and model.software == "kernel"
    r = api.evaluate(arch=name, gemm="512,768,3072", pattern="2:4", software="pytorch-eager")
    assert r.total.latency_s > 0 and r.software == "pytorch-eager"


@pytest.mark.parametrize("name", GPUS)
def test_a_bad_field_of_any_gpu_spec_names_file_field_value_and_range(name):
    with pytest.raises(SpecError) as err:
        load_arch(name, overrides=["power.tdp_w=-5"])
    msg = str(err.value)
    assert f"{name}.yaml" in msg and "power.tdp_w" in msg and "-5" in msg and ">= 10.0" in msg


@pytest.mark.parametrize("name", GPUS)
def test_fitted_fields_exist_and_name_dev_rows_and_borrowed_priors_repeat_their_source(name):
    from simsparse.validate import gpu_fit, published

    for field, source in gpu_fit.fitted_block(name).items():
        gpu_fit.current_value(name, field)                       # raises if the field does not exist
        assert published.CORPORA[source.split()[0]][1] == "dev", (field, source)
    for field, value in gpu_fit.borrowed_values(name).items():
        assert gpu_fit.current_value(name, field) == pytest.approx(value, rel=1e-9), \
            f"{name}: {field} must repeat its source {gpu_fit.borrowed_block(name)[field]} (benchmarks --fit syncs it)"


@pytest.mark.parametrize("override,field", [
    ("compute.sms=0", "compute.sms"),
    ("memory.hbm_efficiency=1.5", "memory.hbm_efficiency"),
    ("software.backend=magic", "software.backend"),
    ("software.backends.cutlass.mainloop_efficiency=abc", "software.backends.cutlass.mainloop_efficiency"),
    ('compute.sparse.pattern="1:4"', "compute.sparse.pattern"),
])
def test_invalid_set_values_are_rejected_naming_field_and_value(override, field):
    with pytest.raises(SpecError) as err:
        load_arch("a100_2to4", overrides=[override])
    msg = str(err.value)
    assert field in msg and override.split("=", 1)[1].strip('"') in msg and "a100_2to4.yaml" in msg
    assert "allowed" in msg


def test_set_of_unknown_field_is_rejected():
    with pytest.raises(SpecError, match="no field compute.warp_size"):
        load_arch("a100_2to4", overrides=["compute.warp_size=32"])


def test_invalid_spec_file_names_file_field_and_value(tmp_path):
    from simsparse.resources import data_dir

    text = (data_dir("accelerators") / "a100_2to4.yaml").read_text()
    bad = tmp_path / "bad_gpu.yaml"
    bad.write_text(text.replace("sms: 108", "sms: -4"))
    with pytest.raises(SpecError) as err:
        load_arch(str(bad))
    assert str(bad) in str(err.value) and "compute.sms" in str(err.value) and "-4" in str(err.value)


def test_a_new_gpu_of_a_known_kind_is_a_yaml_file(tmp_path):
    from simsparse.resources import data_dir

    text = (data_dir("accelerators") / "a100_2to4.yaml").read_text()
    half = tmp_path / "a100_half.yaml"
    half.write_text(text.replace("name: a100_2to4", "name: a100_half").replace("sms: 108", "sms: 54"))
    model = load_arch(str(half))
    assert model.name == "a100_half" and model.spec.sms == 54


def test_the_dense_only_rtx2080ti_matches_turing_datasheet_peaks():
    spec = load_arch("rtx2080ti").spec
    tflops = 2 * spec.sms * spec.dense_fma_per_clk_per_sm["fp16"] * spec.clock_hz / 1e12
    assert tflops == pytest.approx(53.8, rel=0.01)             # fp16 with fp32 accumulate (GeForce)
    assert spec.hbm_bytes_per_s == pytest.approx(616e9)
    assert not spec.has_sparse_tensor_cores and spec.backends == {}
    # tensor cores run fp16/int8; fp32 runs as SIMT SGEMM on the CUDA cores (its cuda_cores block)
    assert load_arch("rtx2080ti").supported_dtypes() == ("fp16", "int8", "fp32")


@pytest.mark.parametrize("pattern,fmt", [("2:4", "dense"), ("channels=0.5", "shrunk")])
def test_a_gpu_without_sparse_tensor_cores_runs_masks_dense_or_shrunk_and_says_so(pattern, fmt):
    r = api.evaluate(arch="rtx2080ti", gemm="3072,768,3072", pattern=pattern)
    e = r.estimates[0]
    assert e.format == fmt
    if fmt == "dense":                       # every MAC, as the dense baseline
        assert any("no sparse tensor cores" in note for note in e.notes)
        assert e.flops_executed == e.flops_dense and r.speedup_vs_dense == 1.0
    else:                                    # the live channels (graph.shrink_works.standalone), densely
        assert e.flops_executed == e.flops_effective and r.speedup_vs_dense > 1.0


def test_a_sparse_back_end_without_sparse_tensor_cores_is_rejected(tmp_path):
    text = (data_dir("accelerators") / "rtx2080ti.yaml").read_text()
    spec = tmp_path / "bad.yaml"
    spec.write_text(text.replace("software:\n", "software:\n  backend: cusparselt\n"))
    with pytest.raises(SpecError, match="compute.sparse"):
        load_arch(str(spec))
