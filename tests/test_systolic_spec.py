"""nm_systolic YAML specs: shipped instances load; bad fields are named with value and range."""

import pytest

from simsparse.archs import load_arch
from simsparse.archs.nm_systolic import NmSystolic
from simsparse.errors import SpecError
from simsparse.specs import load_yaml
from simsparse.resources import data_dir

SHIPPED = ["systolic_32x32", "systolic_128x128", "s2ta_like", "vegeta_like"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_instance_loads_with_its_name(name):
    arch = load_arch(name)
    assert isinstance(arch, NmSystolic) and arch.name == name
    assert arch.default_dtype() == arch.spec.dtypes[0]


def test_vegeta_like_enables_row_wise_and_s2ta_like_supports_only_n_of_8():
    assert load_arch("vegeta_like").spec.row_wise is not None
    assert {p.m for p in load_arch("s2ta_like").spec.patterns} == {8}


def data(**changes):
    d = load_yaml(data_dir("accelerators") / "systolic_32x32.yaml")
    for path, value in changes.items():
        node = d
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return d


@pytest.mark.parametrize("changes, message", [
    ({"array__dataflow": "rs"}, "array.dataflow = 'rs' is invalid; allowed: one of ws, os, is"),
    ({"array__rows": 0}, "array.rows = 0 is invalid; allowed: >= 1"),
    ({"sparsity__patterns": ["2:4", "4:2"]}, "sparsity.patterns.1 = '4:2' is invalid"),
    ({"sparsity__patterns": ["1:16"]}, "sparsity.metadata_bits_per_value.16"),
    ({"memory__dram_bytes_per_clk": -1}, "memory.dram_bytes_per_clk = -1.0 is invalid"),
])
def test_invalid_field_is_named_with_value_and_allowed_range(changes, message):
    with pytest.raises(SpecError) as exc:
        NmSystolic.from_data(data(**changes), source="x.yaml")
    assert "x.yaml" in str(exc.value) and message in str(exc.value)


def test_row_wise_choices_must_be_below_m():
    d = data(sparsity__row_wise={"enabled": True, "m": 4, "n_choices": [1, 4]})
    with pytest.raises(SpecError, match="row_wise.n_choices"):
        NmSystolic.from_data(d, source="x.yaml")


def test_unknown_field_is_rejected():
    d = data()
    d["array"]["pes"] = 1024
    with pytest.raises(SpecError, match="unknown field array.pes"):
        NmSystolic.from_data(d, source="x.yaml")
