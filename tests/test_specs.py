"""YAML specs are plain, versioned and validated at the boundary; errors name file, field and value."""

import pytest

from simsparse.errors import SpecError, UnknownNameError
from simsparse.registry import Registry
from simsparse.overrides import apply_overrides
from simsparse.specs import Field, ListOf, MapOf, check_version, load_yaml, parse_yaml, validate

SCHEMA = {
    "version": Field(int),
    "clock_hz": Field(float, min=1e6, max=1e11),
    "compute": {"sms": Field(int, min=1), "dtypes": ListOf(Field(str, choices=("fp16", "int8")))},
    "tiles": MapOf(Field(int, min=1), required=False, default={}),
}


def test_duplicate_keys_are_rejected_with_the_line(tmp_path):
    p = tmp_path / "a.yaml"
    p.write_text("version: 1\nclock_hz: 1e9\nclock_hz: 2e9\n")
    with pytest.raises(SpecError, match=r"a.yaml: duplicate key 'clock_hz' at line 3"):
        load_yaml(p)


def test_custom_tags_are_refused():
    with pytest.raises(SpecError, match="invalid YAML"):
        parse_yaml("x: !!python/object/apply:os.system ['true']\n", name="t.yaml")


def test_out_of_range_value_names_file_field_value_and_range():
    data = {"version": 1, "clock_hz": 5.0, "compute": {"sms": 4, "dtypes": ["fp16"]}}
    with pytest.raises(SpecError, match=r"s.yaml: field clock_hz = 5.0 is invalid; allowed: >= 1000000.0"):
        validate(data, SCHEMA, source="s.yaml")


def test_wrong_choice_in_a_list_names_its_index():
    data = {"version": 1, "clock_hz": 1e9, "compute": {"sms": 4, "dtypes": ["fp16", "fp64"]}}
    with pytest.raises(SpecError, match=r"compute.dtypes.1 = 'fp64'"):
        validate(data, SCHEMA, source="s.yaml")


def test_unknown_and_missing_fields_are_named():
    with pytest.raises(SpecError, match="unknown field compute.smz"):
        validate({"version": 1, "clock_hz": 1e9, "compute": {"smz": 4, "dtypes": []}}, SCHEMA, source="s")
    with pytest.raises(SpecError, match="missing field compute.sms"):
        validate({"version": 1, "clock_hz": 1e9, "compute": {"dtypes": []}}, SCHEMA, source="s")


def test_scientific_notation_strings_are_numbers_and_defaults_fill_in():
    out = validate({"version": 1, "clock_hz": "1.41e9", "compute": {"sms": 2, "dtypes": []}}, SCHEMA, source="s")
    assert out["clock_hz"] == 1.41e9 and out["tiles"] == {}


def test_booleans_are_not_numbers():
    with pytest.raises(SpecError):
        validate({"version": 1, "clock_hz": True, "compute": {"sms": 2, "dtypes": []}}, SCHEMA, source="s")


def test_version_is_required():
    with pytest.raises(SpecError, match="version"):
        check_version({"kind": "x"}, source="s.yaml")


def test_overrides_set_existing_dotted_fields_only():
    data = {"compute": {"sms": 108}}
    assert apply_overrides(data, ["compute.sms=54"], source="s")["compute"]["sms"] == 54
    assert data["compute"]["sms"] == 108  # the original is untouched
    with pytest.raises(SpecError, match="has no field compute.smz"):
        apply_overrides(data, ["compute.smz=1"], source="s")
    with pytest.raises(SpecError, match="FIELD=VALUE"):
        apply_overrides(data, ["compute.sms"], source="s")


def test_registry_lookup_failure_lists_known_names():
    reg = Registry("widget")
    reg.register("b", 1)
    reg.register("a", 2)
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; known: a, b"):
        reg.get("c")
