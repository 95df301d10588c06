"""`simsparse inspect` reports the right pattern for a checkpoint of every supported format."""

import json

import pytest

import ckpt_factory as cf
from simsparse.cli import main


def inspect_json(capsys, path):
    code = main(["inspect", str(path), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("fmt", sorted(cf.ALL_FORMATS))
def test_inspect_reads_every_format_and_sees_its_masks(tmp_path, capsys, fmt):
    path = tmp_path / ("ckpt.safetensors" if fmt == "safetensors" else "ckpt.pt")
    expected = cf.ALL_FORMATS[fmt](path)
    data = inspect_json(capsys, path)
    layers = {l["name"]: l for l in data["layers"]}
    for fqn, mask in expected.items():
        assert layers[fqn]["shape"] == list(mask.shape)
        assert layers[fqn]["density"] == pytest.approx(mask.mean())


def test_a_2to4_layer_has_envelope_2_and_a_fan_in_layer_is_constant(tmp_path, capsys):
    cf.make_native(tmp_path / "n.pt")
    layers = {l["name"]: l for l in inspect_json(capsys, tmp_path / "n.pt")["layers"]}
    assert layers["fc1.weight"]["nm_envelope"]["4"] == 2
    assert layers["fc2.weight"]["fan_in"]["constant"] is True


def test_a_chase_checkpoint_shows_removed_channels(tmp_path, capsys):
    cf.make_chase(tmp_path / "c.pt")
    data = inspect_json(capsys, tmp_path / "c.pt")
    layers = {l["name"]: l for l in data["layers"]}
    assert layers["conv1.weight"]["rows_removed"] == 2
    assert data["summary"]["rows_removed"] >= 2


def test_inspect_table_has_a_summary_line(tmp_path, capsys):
    cf.make_native(tmp_path / "n.pt")
    assert main(["inspect", str(tmp_path / "n.pt")]) == 0
    out = capsys.readouterr().out
    assert "2:4-compliant layers" in out and "fc1.weight" in out


def test_a_malicious_checkpoint_is_refused_or_read_inertly(tmp_path, capsys):
    marker = tmp_path / "pwned"
    cf.make_malicious(tmp_path / "evil.pt", marker=marker)
    code = main(["inspect", str(tmp_path / "evil.pt")])
    capsys.readouterr()
    assert code in (0, 2)
    assert not marker.exists()


def test_random_bytes_are_one_line_exit_2(tmp_path, capsys):
    p = tmp_path / "junk.pt"
    p.write_bytes(bytes(range(256)) * 4)
    assert main(["inspect", str(p)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "junk.pt" in err
