"""Every file simsparse writes is atomic, never written through a symlink, and honours the umask."""

import os
import stat

import pytest

from simsparse import hostcache
from simsparse.cli import main
from simsparse.errors import SimSparseError
from simsparse.fileio import atomic_writer, open_locked, write_atomic


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_get_the_users_umask_not_0600(tmp_path, umask_027):
    write_atomic(tmp_path / "a.txt", "x")
    assert mode(tmp_path / "a.txt") == 0o640


def test_a_planted_symlink_is_replaced_and_its_target_never_written(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    write_atomic(link, "new")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "new"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "r.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_writer(target, binary=False) as fh:
            fh.write("half")
            raise RuntimeError("stop")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.csv"]


@pytest.mark.parametrize("setup, fragment", [
    (lambda d: (d / "dir").mkdir() or d / "dir", "is a folder"),
    (lambda d: (d / "file").write_text("x") and d / "file" / "sub" / "out.csv", "is a file, not a folder"),
])
def test_a_folder_target_or_a_file_parent_is_one_line(tmp_path, setup, fragment):
    with pytest.raises(SimSparseError, match=fragment):
        write_atomic(setup(tmp_path), "x")


def test_a_locked_file_refuses_a_second_writer_and_symlinks(tmp_path):
    with open_locked(tmp_path / "j", what="journal", busy="busy!"):
        with pytest.raises(SimSparseError, match="busy!"):
            open_locked(tmp_path / "j", what="journal", busy="busy!")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SimSparseError, match="symlink"):
        open_locked(tmp_path / "link", what="journal", busy="busy!")
    assert not (tmp_path / "elsewhere").exists()


def test_the_host_cache_never_writes_through_a_fixed_tmp_name(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "host_x.tmp").symlink_to(victim)
    hostcache.write_json(tmp_path / "host_x.json", {"a": 1})
    assert victim.read_text() == "precious"


def test_evaluate_out_naming_a_file_and_plot_naming_a_file_are_one_line(tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep")
    assert main(["evaluate", "--gemm", "8,8,8", "--arch", "a100_2to4", "--out", str(existing)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not a folder" in err
    assert existing.read_text() == "keep"


def test_a_pipe_or_device_as_target_is_refused_not_replaced(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SimSparseError, match="device, pipe or socket"):
        write_atomic(fifo, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_trace_out_naming_a_folder_is_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "config.json").write_text('{"model_type": "gpt2", "n_embd": 64, "n_head": 4, '
                                                  '"n_layer": 1, "vocab_size": 100}')
    assert main(["trace", f"hf:{tmp_path / 'cfg'}", "--seq", "8", "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg"]
