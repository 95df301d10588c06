"""Design-space sweeps expand a YAML grid into points, write one CSV row each, and resume."""

import csv

import pytest

from simsparse import api, dse
from simsparse.errors import SimSparseError, SpecError

SWEEP = """\
version: 1
name: t
archs: [systolic_32x32]
grid:
  memory.dram_bytes_per_clk: [4, 64]
inputs:
  - {workload: mlp, patterns: ["dense", "2:4"]}
batches: [1, 8]
"""


def write(tmp_path, text=SWEEP):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


def test_grid_expands_to_the_cartesian_product(tmp_path):
    sweep = dse.load_sweep(write(tmp_path))
    points = list(sweep.points())
    assert len(points) == sweep.size == 2 * 2 * 2
    assert {tuple(map(str, p.overrides)) for p in points} == {("memory.dram_bytes_per_clk=4",),
                                                               ("memory.dram_bytes_per_clk=64",)}


def test_sweep_writes_one_row_per_point_and_more_bandwidth_never_hurts(tmp_path):
    out = tmp_path / "r.csv"
    rows = api.sweep(sweep_file=write(tmp_path), out=out)
    assert len(rows) == 8 and not any(r["error"] for r in rows)
    with out.open() as fh:
        saved = list(csv.DictReader(fh))
    assert len(saved) == 8
    by = {(r["overrides"], r["pattern"], r["batch"]): float(r["latency_s"]) for r in saved}
    for pattern in ("dense", "2:4"):
        for batch in ("1", "8"):
            assert by[("memory.dram_bytes_per_clk=64", pattern, batch)] <= by[("memory.dram_bytes_per_clk=4", pattern, batch)]


def test_resume_runs_only_missing_points(tmp_path, monkeypatch):
    out = tmp_path / "r.csv"
    api.sweep(sweep_file=write(tmp_path), out=out)
    calls = []
    monkeypatch.setattr(dse, "run_point", lambda p, evaluate: calls.append(p) or {})
    api.sweep(sweep_file=write(tmp_path), out=out, resume=True)
    assert calls == []
    with pytest.raises(SimSparseError, match="--resume"):
        api.sweep(sweep_file=write(tmp_path), out=out)


def test_a_bad_point_is_an_error_cell_not_a_crash(tmp_path):
    rows = api.sweep(sweep_file=write(tmp_path, SWEEP.replace("2:4", "fanin=100")), out=tmp_path / "r.csv")
    assert sum(1 for r in rows if r["error"]) == 4  # mlp's first layer reduces over 64 < 100


def test_invalid_sweep_names_the_field(tmp_path):
    with pytest.raises(SpecError, match="batches.0"):
        dse.load_sweep(write(tmp_path, SWEEP.replace("[1, 8]", "[0, 8]")))


def test_the_module_docstring_example_is_a_valid_sweep(tmp_path):
    example = dse.__doc__.split("```yaml\n", 1)[1].split("```", 1)[0]
    sweep = dse.load_sweep(write(tmp_path, example))
    assert sweep.name == "nm-support" and sweep.size == 2 * 4 * 2 * 3 * 2   # archs x inputs x batches x grid
