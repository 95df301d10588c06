"""Every file simsparse writes goes through here: reports, checkpoints, training state, caches, sweeps.

Guarantees:
  * atomic: the data goes to a fresh temp file in the target's folder (random name, O_EXCL), is
    flushed and fsynced, then renamed over the target, so a reader (or a crash) sees the old file
    or the new one, never half of one;
  * never through a symlink: the temp file cannot be a planted link (O_EXCL), and the rename
    replaces a link found at the target instead of writing to what it points at;
  * the user's umask: files are created 0666 & ~umask (mkstemp alone would leave them 0600);
  * one-line errors: a target that is a folder or a device/pipe (the rename would replace the
    node, e.g. /dev/null), a parent that is a file, a read-only folder raise `SimSparseError`
    naming the path and the fix.

`open_locked(path)` opens (or creates) a file for appending without following a symlink and
takes an exclusive, non-blocking `flock` on it: one writer per file (the sweep journal).

Reading small untrusted files (a model's config.json, a shard index): `read_json(path, max_bytes=,
what=)` reads at most `max_bytes` (a larger file is refused before it is read whole) and turns
every decoding problem, deep nesting included, into one line.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from simsparse.errors import SimSparseError


def umask() -> int:
    """This process's umask (read without changing it where /proc says it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)  # no /proc: the classic read-by-setting (briefly), then restore
    os.umask(old)
    return old


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def prepare_target(path: str | os.PathLike, *, what: str = "output", make_parents: bool = False) -> Path:
    """`path` as a writable file target: not a folder, its folder existing (or made), else SimSparseError."""
    target = Path(path)
    if target.is_dir() and not target.is_symlink():
        raise SimSparseError(f"{what} {target} is a folder; give a file path (e.g. {target / 'out'})")
    if target.exists() and not target.is_symlink() and not target.is_file():  # renaming over it would replace it
        raise SimSparseError(f"{what} {target} is a device, pipe or socket, not a file; give a file path")
    parent = target.parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise SimSparseError(f"{what} {target}: {p} is a file, not a folder; choose another path")
            break
    if not parent.is_dir():
        if not make_parents:
            raise SimSparseError(f"{what} {target}: folder {parent} does not exist; create it first")
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SimSparseError(f"{what} {target}: cannot create folder {parent} ({_why(exc)}); "
                                 "choose a writable path") from None
    return target


@contextmanager
def atomic_writer(path: str | os.PathLike, *, binary: bool = True, what: str = "output",
                  make_parents: bool = False) -> Iterator[IO]:
    """`with atomic_writer(p) as fh: ...` writes `p` atomically (see the module doc)."""
    target = prepare_target(path, what=what, make_parents=make_parents)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise SimSparseError(f"cannot write {what} {target} ({_why(exc)}); choose a writable folder") from None
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise SimSparseError(f"cannot write {what} {target} ({_why(exc)}); check the folder "
                             "(free space, permissions)") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes, *, what: str = "output",
                 make_parents: bool = True) -> Path:
    """Write `data` (text as UTF-8, or bytes) to `path` atomically; its folder is created if missing.
    Returns the path written."""
    with atomic_writer(path, binary=isinstance(data, bytes), what=what, make_parents=make_parents) as fh:
        fh.write(data)
    return Path(path)


def check_writable_folder(folder: str | os.PathLike, *, what: str) -> Path:
    """Make `folder` if needed and prove it writable now (before long work whose result goes there)."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise SimSparseError(f"{what} folder {path} is not writable ({_why(exc)}); fix its permissions "
                             "or point XDG_CACHE_HOME elsewhere") from None
    return path


class LockedFile:
    """A file opened for reading and appending, exclusively flock-ed by this process."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    def read_all(self) -> bytes:
        chunks = []
        os.lseek(self.fd, 0, os.SEEK_SET)
        while chunk := os.read(self.fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)

    def append(self, data: bytes) -> None:
        """Append `data` in one write and fsync it (a crash leaves at most a torn last record)."""
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        os.fsync(self.fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # releases the flock
            self.fd = -1

    def __enter__(self) -> "LockedFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_locked(path: str | os.PathLike, *, what: str, busy: str) -> LockedFile:
    """Open or create `path` (never through a symlink) and lock it; `busy` is the message when
    another process holds the lock."""
    target = prepare_target(path, what=what)
    flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SimSparseError(f"{what} {target} is a symlink; refusing to write through it "
                                 "(remove it or choose another path)") from None
        raise SimSparseError(f"cannot open {what} {target} ({_why(exc)}); choose a writable path") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SimSparseError(busy) from None
    return LockedFile(target, fd)


def read_bounded(path: str | os.PathLike, *, max_bytes: int, what: str,
                 error: type[SimSparseError] = SimSparseError) -> bytes:
    """The bytes of a small file, never more than `max_bytes` read (a larger file, a folder or an
    unreadable path is `error` with one line)."""
    target = Path(path)
    if target.is_dir():
        raise error(f"{what} {target} is a folder; pass the file")
    try:
        with target.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except OSError as exc:
        raise error(f"{what} {target}: cannot read it ({_why(exc)}); check the path") from None
    if len(raw) > max_bytes:
        raise error(f"{what} {target} is larger than {max_bytes // 2**20 or max_bytes} "
                    f"{'MiB' if max_bytes >= 2**20 else 'bytes'}; that is not a {what} simsparse reads")
    return raw


def read_json(path: str | os.PathLike, *, max_bytes: int, what: str,
              error: type[SimSparseError] = SimSparseError) -> Any:
    """The JSON value in `path` (at most `max_bytes`; UTF-8), or `error` with one line."""
    target = Path(path)
    raw = read_bounded(target, max_bytes=max_bytes, what=what, error=error)
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else type(exc).__name__
        raise error(f"{what} {target} is not readable JSON ({why}); re-download or re-create it") from None
