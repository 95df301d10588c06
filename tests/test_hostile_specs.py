"""One safe YAML loader (bounded depth, aliases and size; clear encoding errors) and typed overrides."""

import time

import pytest

import hostile_corpus as hc
from simsparse.archs import load_arch
from simsparse.cli import main
from simsparse.dst.recipes import load_recipe
from simsparse.errors import SpecError
from simsparse.overrides import Override, apply_overrides, parse_override
from simsparse.specs import MAX_YAML_BYTES, load_yaml, parse_yaml


def test_an_alias_bomb_is_refused_before_it_expands():
    t0 = time.perf_counter()
    with pytest.raises(SpecError, match="alias bomb"):
        parse_yaml("version: 1\n" + hc.yaml_laughs(), name="laughs.yaml")
    assert time.perf_counter() - t0 < 2.0


def test_a_recursive_alias_is_refused():
    with pytest.raises(SpecError, match="refers to itself"):
        parse_yaml("a: &a [1, *a]\n", name="r.yaml")


def test_deep_nesting_is_refused_without_a_recursion_error():
    with pytest.raises(SpecError, match="nesting deeper"):
        parse_yaml("a: " + hc.deep_yaml(20000) + "\n", name="deep.yaml")


def test_control_bytes_are_named_with_their_line(tmp_path):
    with pytest.raises(SpecError, match=r"U\+0000 at line 2"):
        load_yaml(hc.make_control_bytes_sweep(tmp_path))


def test_latin1_text_is_refused_with_the_byte_and_line(tmp_path):
    with pytest.raises(SpecError, match=r"not UTF-8 text \(byte 0xe9 at line 1\)"):
        load_yaml(hc.make_latin1_sweep(tmp_path))


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    p = tmp_path / "bom.yaml"
    p.write_bytes(b"\xef\xbb\xbfversion: 1\n")
    assert load_yaml(p) == {"version": 1}


def test_oversized_and_empty_files_and_folders_are_refused(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_YAML_BYTES + 1))
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    for path, fragment in ((big, "larger than"), (empty, "empty"), (tmp_path, "folder")):
        with pytest.raises(SpecError, match=fragment):
            load_yaml(path)


def test_scalars_follow_yaml_1_2_core_so_nm_patterns_stay_strings():
    data = parse_yaml("a: 2:4\nb: 1_0\nc: 1e9\nd: yes\ne: 0x10\nf: true\n", name="t.yaml")
    assert data == {"a": "2:4", "b": "1_0", "c": 1e9, "d": "yes", "e": "0x10", "f": True}


@pytest.mark.parametrize("text, path, value", [
    ("compute.sms=54", ("compute", "sms"), 54),
    ("memory.hbm_bytes_per_s=2.0e12", ("memory", "hbm_bytes_per_s"), 2.0e12),
    ("sparsity.patterns=[2:4,1:8]", ("sparsity", "patterns"), ["2:4", "1:8"]),
    ("sparsity.patterns=['2:4', \"1:8\"]", ("sparsity", "patterns"), ["2:4", "1:8"]),
    ("alpha=1:8", ("alpha",), "1:8"),
    ("name='123'", ("name",), "123"),
    ("software.include_host_overhead=false", ("software", "include_host_overhead"), False),
    ("x=1_0", ("x",), "1_0"),
    ("x=６４", ("x",), "６４"),
    ("sparsity.metadata_bits_per_value={4: 0, 8: 3}", ("sparsity", "metadata_bits_per_value"), {4: 0, 8: 3}),
    ("options={2:4: 1, name: '8', on: true}", ("options",), {"2:4": 1, "name": "8", "on": True}),
    ("options={}", ("options",), {}),
    ("names=['a, b', \"[c]\"]", ("names",), ["a, b", "[c]"]),
    ("options={a: '1, 2', b: 3}", ("options",), {"a": "1, 2", "b": 3}),
])
def test_override_values_are_typed_once_and_never_read_as_yaml(text, path, value):
    assert parse_override(text) == Override(path=path, value=value)


@pytest.mark.parametrize("text", ["compute.sms", "=3", "a..b=1", "a=", "a=[[1]]", "a={b: {c: 1}}", "a={b: [1]}",
                                  "a={4:0}", "a={b}", "a={b: 1, b: 2}", "a={true: 1}", "a={b: }", "a={b: 1", "a b=1"])
def test_malformed_overrides_are_refused(text):
    with pytest.raises(SpecError):
        parse_override(text)


@pytest.mark.parametrize("text", ["sparsity.metadata_bits_per_value={4: 0, 8: 3}", "options={2:4: 1, name: x}",
                                  "sparsity.patterns=[2:4,1:8]", "name='123'", "names=['a, b', c]", "x=''"])
def test_a_rendered_override_parses_back_to_itself(text):
    ov = parse_override(text)
    assert parse_override(str(ov)) == ov


def test_an_empty_override_value_is_named_as_empty():
    with pytest.raises(SpecError, match="empty value"):
        parse_override("compute.sms=")


def test_a_flat_mapping_override_is_typed_by_the_spec_schema():
    model = load_arch("systolic_32x32", ["sparsity.patterns=[2:4,1:8]",
                                         "sparsity.metadata_bits_per_value={4: 1, 8: 3}"])
    assert [(p.label, p.metadata_bits_per_value) for p in model.spec.patterns] == [("2:4", 1.0), ("1:8", 3.0)]
    with pytest.raises(SpecError, match=r"metadata_bits_per_value\.4 = '2:4'"):
        load_arch("systolic_32x32", ["sparsity.metadata_bits_per_value={4: 2:4, 8: 3}"])


def test_a_number_written_in_full_width_digits_is_not_a_number():
    with pytest.raises(SpecError, match="clock_hz"):
        load_arch("a100_2to4", ["clock_hz=１.４e9"])


def test_typed_overrides_set_a_list_of_nm_patterns_on_an_accelerator():
    model = load_arch("systolic_32x32", [parse_override("sparsity.patterns=[2:4,1:8]")])
    assert [(p.n, p.m) for p in model.spec.patterns] == [(2, 4), (1, 8)]


def test_a_recipe_override_of_1_8_is_refused_not_read_as_68():
    with pytest.raises(SpecError, match=r"alpha = '1:8'"):
        load_recipe(method="rigl", overrides=("alpha=1:8",))


def test_overrides_leave_the_original_data_untouched():
    data = {"sparsity": {"patterns": ["2:4"]}}
    out = apply_overrides(data, [Override(("sparsity", "patterns"), ["1:8"])], source="s")
    assert out["sparsity"]["patterns"] == ["1:8"] and data["sparsity"]["patterns"] == ["2:4"]


def test_evaluate_accepts_a_set_of_nm_patterns(capsys):
    assert main(["evaluate", "--gemm", "64,256,256", "--pattern", "1:8", "--arch", "systolic_32x32",
                 "--set", "sparsity.patterns=[2:4,1:8]", "--format", "json"]) == 0
    assert '"format": "1:8"' in capsys.readouterr().out


@pytest.mark.parametrize("maker, argv", [
    (lambda d: hc.make_deep_yaml(d, "arch.yaml", head="version: 1\nkind: nm_systolic\n"),
     lambda p: ["evaluate", "--gemm", "8,8,8", "--arch", str(p)]),
    (lambda d: hc.make_deep_yaml(d, "recipe.yaml", key="extra"),
     lambda p: ["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.5",
                "--steps", "1", "--recipe", str(p), "--out", str(p.parent / "x.pt")]),
    (hc.make_sweep_laughs, lambda p: ["sweep", str(p), "--out", str(p.parent / "r.csv")]),
    (hc.make_latin1_sweep, lambda p: ["sweep", str(p), "--out", str(p.parent / "r.csv")]),
])
def test_hostile_yaml_in_every_command_is_one_line_and_exit_2(tmp_path, capsys, maker, argv):
    path = maker(tmp_path)
    assert main(argv(path)) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "x.pt").exists()
