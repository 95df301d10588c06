"""Every loader under a memory cap: each hostile file of issue 18 (generated here, never committed)
is refused by every command that reads it with one line and exit 2, within 1 GB of RSS and 10 s,
and leaves no output file (tests/fuzz_runner.py forks one capped child per command)."""

import pytest

import hostile_corpus as hc
from fuzz_runner import Runner

CHECKPOINTS = {
    "zip bomb": lambda d: hc.make_zip_bomb(d, inflated_bytes=256 << 20),
    "stride-0 view": hc.make_stride0_view,
    "aliased storage": lambda d: hc.make_aliased_storage(d, side=512, aliases=600),
    "safetensors offsets": hc.make_safetensors_offsets,
    "SRigL laughs": hc.make_srigl_laughs,
    "Chase laughs": hc.make_chase_laughs,
    "deep Chase meta": hc.make_deep_meta,
    "deep native meta": lambda d: hc.make_deep_meta(d, layout="native"),
    "legacy huge storage": hc.make_legacy_huge_storage,
    "negative geometry": lambda d: hc.make_bad_geometry(d, op={"weight_shape": [-8, 16]}),
    "tokens -3": lambda d: hc.make_bad_geometry(d, op={"tokens": -3}),
    "unknown op kind": lambda d: hc.make_bad_geometry(d, op={"kind": "frobnicate"}),
}
YAMLS = {
    "sweep laughs": (hc.make_sweep_laughs, "sweep"),
    "sweep NUL": (hc.make_control_bytes_sweep, "sweep"),
    "sweep Latin-1": (hc.make_latin1_sweep, "sweep"),
    "sweep recursive alias": (hc.make_recursive_alias_sweep, "sweep"),
    "sweep 10^8 points": (hc.make_huge_grid_sweep, "sweep"),
    "deep sweep": (lambda d: hc.make_deep_yaml(d, "deep_sweep.yaml", head="version: 1\n", key="grid"), "sweep"),
    "deep arch": (lambda d: hc.make_deep_yaml(d, "deep_arch.yaml", head="version: 1\nkind: nm_systolic\n"), "arch"),
    "arch laughs": (lambda d: _write(d, "laughs_arch.yaml", "version: 1\n" + hc.yaml_laughs()), "arch"),
    "deep recipe": (lambda d: hc.make_deep_yaml(d, "deep_recipe.yaml", key="extra"), "recipe"),
    "recipe Latin-1": (lambda d: _write(d, "l1.yaml", "# caf\u00e9\nversion: 1\n", "latin-1"), "recipe"),
}


def _write(folder, name, text, encoding="utf-8"):
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


COMMANDS = {
    "sweep": lambda p: ["sweep", str(p), "--out", "r.csv"],
    "arch": lambda p: ["evaluate", "--gemm", "8,8,8", "--arch", str(p), "--out", "report"],
    "recipe": lambda p: ["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.5",
                         "--steps", "1", "--recipe", str(p), "--out", "out.pt"],
}


@pytest.fixture(scope="module")
def runner():
    with Runner() as r:
        yield r


def refused(res):
    return (res.code == 2 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
            and "MemoryError" not in res.stderr and res.maxrss_mb < 1024 and res.wall_s < 10)


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_a_hostile_checkpoint_is_refused_by_every_reader_within_bounds(runner, tmp_path, name):
    path = CHECKPOINTS[name](tmp_path)
    for argv in (["inspect", str(path)], ["evaluate", "--mask", str(path), "--arch", "a100_2to4", "--out", "report"],
                 ["compare", str(path), "--arch", "systolic_32x32", "--plot", "plots"]):
        res = runner.run(argv, cwd=tmp_path, extra_mb=1024, timeout_s=30)
        assert refused(res), (name, argv[0], res)
    assert not (tmp_path / "report").exists() and not (tmp_path / "plots").exists()


@pytest.mark.parametrize("name", list(YAMLS))
def test_a_hostile_yaml_file_is_refused_within_bounds(runner, tmp_path, name):
    maker, kind = YAMLS[name]
    res = runner.run(COMMANDS[kind](maker(tmp_path)), cwd=tmp_path, extra_mb=1024, timeout_s=30)
    assert refused(res), (name, res)
    assert not any(p.name in ("r.csv", "r.csv.journal", "report", "out.pt") for p in tmp_path.iterdir())
