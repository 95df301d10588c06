"""Durable, deterministic sweeps: whole records, one writer per store, identity checked on resume,
the grid checked before any point runs, output sorted by point key."""

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import hostile_corpus as hc
from simsparse import api, dse
from simsparse.cli import main
from simsparse.dse_store import journal_path, open_journal
from simsparse.errors import SimSparseError, SpecError

ROOT = Path(__file__).resolve().parents[1]
GRID = "  memory.dram_bytes_per_clk: [4, 64]\n  sparsity.patterns: [['2:4'], [2:4, 1:8]]\n"


def sweep_file(tmp_path, **kw):
    return hc.make_sweep(tmp_path, grid=kw.pop("grid", GRID), patterns=kw.pop("patterns", "[dense, 2:4, fanin=16]"),
                         batches=kw.pop("batches", "[1, 8]"), **kw)


def reference_csv(tmp_path, sweep):
    ref = tmp_path / "ref" / "r.csv"
    api.sweep(sweep_file=sweep, out=ref)
    return ref.read_bytes()


def test_a_sweep_grid_over_nm_pattern_lists_runs(tmp_path):
    rows = api.sweep(sweep_file=sweep_file(tmp_path), out=tmp_path / "r.csv")
    assert len(rows) == 2 * 2 * 3 * 2 and not any(r["error"] for r in rows)
    assert {r["overrides"].split(";")[1] for r in rows} == {"sparsity.patterns=[2:4]", "sparsity.patterns=[2:4,1:8]"}


def test_a_torn_last_record_is_discarded_and_the_resumed_csv_is_byte_identical(tmp_path):
    sweep = sweep_file(tmp_path)
    expected = reference_csv(tmp_path, sweep)
    out = tmp_path / "r.csv"
    api.sweep(sweep_file=sweep, out=out)
    journal = journal_path(out)
    lines = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(lines[:5]) + lines[5][:17])  # four rows kept, the fifth torn mid-record
    out.unlink()
    api.sweep(sweep_file=sweep, out=out, resume=True)
    assert out.read_bytes() == expected
    assert journal.read_bytes().count(b"\n") == len(lines)


def test_a_sweep_killed_at_a_random_moment_resumes_to_the_same_bytes(tmp_path):
    sweep = sweep_file(tmp_path, batches="[1, 2, 4, 8]")
    expected = reference_csv(tmp_path, sweep)
    out = tmp_path / "r.csv"
    argv = [sys.executable, "-m", "simsparse", "sweep", str(sweep), "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not journal_path(out).exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(random.Random(7).uniform(0.0, 0.5))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert subprocess.run(argv + ["--resume"], cwd=ROOT, capture_output=True).returncode == 0
    assert out.read_bytes() == expected


def test_a_second_sweep_on_a_locked_store_is_refused(tmp_path):
    out = tmp_path / "r.csv"
    held = open_journal(out, identity="a" * 64, name="first", resume=False)
    try:
        with pytest.raises(SimSparseError, match="another sweep is writing"):
            api.sweep(sweep_file=sweep_file(tmp_path), out=out)
    finally:
        held.close()


def test_resume_refuses_another_sweeps_store_and_keeps_its_rows(tmp_path):
    out = tmp_path / "r.csv"
    api.sweep(sweep_file=sweep_file(tmp_path, name="first"), out=out)
    before = out.read_bytes(), journal_path(out).read_bytes()
    other = sweep_file(tmp_path, name="second", file="other.yaml")
    with pytest.raises(SimSparseError, match="exists; pass --resume"):
        api.sweep(sweep_file=other, out=out)
    with pytest.raises(SimSparseError, match="holds another sweep"):
        api.sweep(sweep_file=other, out=out, resume=True)
    assert (out.read_bytes(), journal_path(out).read_bytes()) == before


@pytest.mark.parametrize("content", [b"my notes about the run\n", b"notes without newline", bytes(range(256)) * 4])
def test_resume_onto_a_file_that_is_not_a_sweep_store_leaves_it_untouched(tmp_path, content):
    out = tmp_path / "notes.csv"
    out.write_bytes(content)
    with pytest.raises(SimSparseError, match="not written by a simsparse sweep"):
        api.sweep(sweep_file=sweep_file(tmp_path), out=out, resume=True)
    journal_path(out).write_bytes(content)
    with pytest.raises(SimSparseError, match="not a simsparse sweep journal|damaged"):
        api.sweep(sweep_file=sweep_file(tmp_path), out=out, resume=True)
    assert out.read_bytes() == content and journal_path(out).read_bytes() == content


def test_out_naming_a_folder_is_refused(tmp_path):
    with pytest.raises(SimSparseError, match="is a folder"):
        api.sweep(sweep_file=sweep_file(tmp_path), out=tmp_path)


def test_a_huge_grid_is_refused_before_it_is_expanded(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(SpecError, match="100000000 points"):
        dse.load_sweep(hc.make_huge_grid_sweep(tmp_path))
    assert time.perf_counter() - t0 < 2.0


@pytest.mark.parametrize("grid, patterns, fragment", [
    ("  memory.dram_bytes_per_clkk: [8]\n", "[dense]", "no field memory.dram_bytes_per_clkk"),
    ("  memory.dram_bytes_per_clk: [-8]\n", "[dense]", "memory.dram_bytes_per_clk"),
    ("  memory.dram_bytes_per_clk: [8]\n", "[dense, 9:4]", "N:M"),
    ("  memory.dram_bytes_per_clk: [8]\n", "['']", "empty pattern"),
])
def test_grid_keys_values_and_patterns_are_checked_before_any_point_runs(tmp_path, monkeypatch, grid, patterns,
                                                                         fragment):
    monkeypatch.setattr(dse, "run_point", lambda p: pytest.fail("a point ran"))
    with pytest.raises(SpecError, match=fragment):
        api.sweep(sweep_file=sweep_file(tmp_path, grid=grid, patterns=patterns), out=tmp_path / "r.csv")
    assert not (tmp_path / "r.csv").exists() and not journal_path(tmp_path / "r.csv").exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dask_addresses_that_are_empty_closed_or_silent_are_one_line_within_seconds(tmp_path, capsys):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    threading.Thread(target=lambda: silent.accept(), daemon=True).start()
    sweep = sweep_file(tmp_path)
    for address in ("dask://", "dask://:8786", "dask://host:port", f"dask://127.0.0.1:{_closed_port()}",
                    f"dask://127.0.0.1:{silent.getsockname()[1]}"):
        t0 = time.perf_counter()
        assert main(["sweep", str(sweep), "--out", str(tmp_path / "r.csv"), "--executor", address]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert time.perf_counter() - t0 < 8.0
    silent.close()
    assert not (tmp_path / "r.csv").exists()
