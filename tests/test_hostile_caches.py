"""Caches are versioned and self-healing: a bad cache is discarded with a note and rebuilt."""

import json

import pytest

from simsparse import hostinfo
from simsparse.validate import calibrate
from simsparse.archs import load_arch
from simsparse.archs.cpu_host import calibration_path, load_calibration
from simsparse.cli import main
from simsparse.errors import SimSparseError

FAKE_BW = {"dram": {"per_core_bytes_per_s": 1e10, "all_cores_bytes_per_s": 3e10, "working_set_bytes": 1}}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "simsparse"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", json.dumps({"probe_version": 2, "machine": "?"}),
                                     json.dumps({"probe_version": 1, "bandwidth": {}}),
                                     json.dumps({"probe_version": 2, "machine": "KEY",
                                                 "bandwidth": {"dram": {"per_core_bytes_per_s": "fast"}}})])
def test_a_corrupted_host_probe_cache_is_discarded_with_a_note_and_rebuilt(cache, monkeypatch, capsys, content):
    host = hostinfo.detect()
    cache.mkdir(parents=True)
    path = cache / f"host_{host.key}.json"
    path.write_text(content.replace("KEY", host.key))
    monkeypatch.setattr(hostinfo, "probe_bandwidth", lambda caches, cores: FAKE_BW)
    assert hostinfo.host_bandwidth(host, probe=True) == FAKE_BW
    assert "discarded" in capsys.readouterr().err
    assert json.loads(path.read_text())["bandwidth"] == FAKE_BW
    assert hostinfo.host_bandwidth(host, probe=True) == FAKE_BW
    assert capsys.readouterr().err == ""


def test_a_corrupted_calibration_is_discarded_and_cpu_host_still_loads(cache, monkeypatch, capsys):
    monkeypatch.setenv("SIMSPARSE_SKIP_PROBE", "1")
    key = hostinfo.detect().key
    path = calibration_path(key)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"machine": key, "kernels": {"dense": {"overhead_s": "soon"}}}))
    assert load_arch("cpu_host").spec.calibration == ""
    assert "discarded the malformed calibration cache" in capsys.readouterr().err
    assert not path.exists() and load_calibration(key) is None


def test_a_cache_that_cannot_be_written_is_a_note_not_an_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    monkeypatch.setattr(hostinfo, "probe_bandwidth", lambda caches, cores: FAKE_BW)
    assert hostinfo.host_bandwidth(hostinfo.detect(), probe=True) == FAKE_BW
    assert "could not save the host-probe cache" in capsys.readouterr().err


def test_calibrate_refuses_an_unwritable_cache_before_measuring(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))
    monkeypatch.setattr(calibrate, "measure_points", lambda *a, **k: pytest.fail("measured"))
    with pytest.raises(SimSparseError, match="not writable"):
        calibrate.run(progress=False)
    assert main(["calibrate"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
