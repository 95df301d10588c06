"""Host detection reads /proc/cpuinfo and the sysfs cache tree (injected here), and caches the probe."""

from pathlib import Path

import pytest

from simsparse import hostinfo
from simsparse.archs.cpu_host import host_spec_data
from simsparse.archs.cpu_spec import parse_cpu_spec

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
cpu MHz\t\t: 2000.000
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512bw avx512_bf16 amx_tile

processor\t: 1
model name\t: something else
"""
CLIENT = "model name\t: Intel(R) Core(TM) i7-1185G7 @ 3.00GHz\nflags\t\t: sse avx avx2 fma avx512f\n"
OLD = "model name\t: AMD Opteron\nflags\t\t: sse sse2\n"


def fake_sysfs(root: Path) -> Path:
    entries = [("index0", 1, "Data", "48K", "0"), ("index1", 1, "Instruction", "32K", "0"),
               ("index2", 2, "Unified", "2048K", "0"), ("index3", 3, "Unified", "105M", "0-55")]
    for name, level, ctype, size, shared in entries:
        d = root / name
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{ctype}\n")
        (d / "size").write_text(f"{size}\n")
        (d / "shared_cpu_list").write_text(f"{shared}\n")
    return root


def test_cpuinfo_first_block_gives_model_flags_and_mhz():
    info = hostinfo.parse_cpuinfo(XEON)
    assert info.model_name == "Intel(R) Xeon(R) Platinum 8480+"
    assert "avx512f" in info.flags and info.mhz == 2000.0


def test_avx512_server_part_has_16_lanes_and_2_fma_ports():
    info = hostinfo.parse_cpuinfo(XEON)
    simd = hostinfo.simd_from_flags(info.flags, info.model_name)
    assert (simd["fp32_lanes"], simd["fma_ports"], simd["amx"]) == (16, 2, True)


def test_avx512_client_part_has_one_fma_port_and_clock_from_model_name():
    info = hostinfo.parse_cpuinfo(CLIENT)
    assert hostinfo.simd_from_flags(info.flags, info.model_name)["fma_ports"] == 1
    assert hostinfo.clock_hz(info) == pytest.approx(3.0e9)


def test_sse_only_part_has_4_lanes():
    info = hostinfo.parse_cpuinfo(OLD)
    assert hostinfo.simd_from_flags(info.flags, info.model_name)["fp32_lanes"] == 4


def test_sysfs_caches_skip_instruction_caches_and_count_sharing(tmp_path):
    caches = hostinfo.read_caches(fake_sysfs(tmp_path))
    assert [(c.level, c.size_bytes, c.shared_cpus) for c in caches] == [
        (1, 48 * 1024, 1), (2, 2048 * 1024, 1), (3, 105 * 1024 ** 2, 56)]


def test_missing_sysfs_tree_gives_no_caches(tmp_path):
    assert hostinfo.read_caches(tmp_path / "absent") == []


def test_probe_working_sets_fit_inside_each_level(tmp_path):
    caches = hostinfo.read_caches(fake_sysfs(tmp_path))
    ws = hostinfo.probe_working_sets(caches, cores=4)
    assert ws["l1"] < 48 * 1024 and ws["l2"] < 2048 * 1024 and ws["llc"] < 105 * 1024 ** 2 < ws["dram"]


def _fake_host(tmp_path) -> hostinfo.Host:
    (tmp_path / "cpuinfo").write_text(XEON)
    return hostinfo.detect(cpuinfo_path=tmp_path / "cpuinfo", sysfs_cache=fake_sysfs(tmp_path / "sys"), cores=4)


def test_detected_host_without_probe_is_a_valid_cpu_simd_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = host_spec_data(host=_fake_host(tmp_path), probe=False)
    spec = parse_cpu_spec(data, source="<detected>")
    assert spec.cores == 4 and spec.threads == 4 and spec.clock_hz == 2.0e9
    assert [lvl.name for lvl in spec.levels] == ["l1", "l2", "llc", "dram"]
    assert spec.level("llc").shared and not spec.level("l2").shared


def test_bandwidth_probe_runs_once_then_comes_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    host = _fake_host(tmp_path)
    calls = []
    fake = {"dram": {"per_core_bytes_per_s": 1e10, "all_cores_bytes_per_s": 3e10, "working_set_bytes": 1}}
    monkeypatch.setattr(hostinfo, "probe_bandwidth", lambda caches, cores: calls.append(1) or fake)
    assert hostinfo.host_bandwidth(host, probe=True) == fake
    assert hostinfo.host_bandwidth(host, probe=True) == fake
    assert len(calls) == 1
    assert (tmp_path / "cache" / "simsparse" / f"host_{host.key}.json").is_file()


def test_skip_probe_env_uses_defaults_without_timing(tmp_path, monkeypatch):
    monkeypatch.setenv(hostinfo.SKIP_PROBE_ENV, "1")
    monkeypatch.setattr(hostinfo, "probe_bandwidth", lambda *a, **k: pytest.fail("probe ran"))
    bw = hostinfo.host_bandwidth(_fake_host(tmp_path))
    assert bw["l1"]["per_core_bytes_per_s"] > bw["l2"]["per_core_bytes_per_s"] > bw["dram"]["per_core_bytes_per_s"]


def test_machine_key_changes_with_the_cpu(tmp_path):
    a = _fake_host(tmp_path)
    b = hostinfo.detect(cpuinfo_path=tmp_path / "cpuinfo", sysfs_cache=tmp_path / "sys", cores=2)
    assert a.key != b.key
