"""Versioned JSON cache files under `${XDG_CACHE_HOME:-~/.cache}/simsparse/` (the host bandwidth
probe of simsparse.hostinfo, the CPU calibration of archs/cpu_host.py).

A cache that is missing, unreadable, malformed or from another version is rebuilt, never an error:
`read_cache` discards such a file with a one-line note on stderr, and a cache that cannot be
written is a note too (the result is still used). Writes are atomic (simsparse.fileio).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Callable

from simsparse.errors import SimSparseError
from simsparse.fileio import write_atomic


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "simsparse"


def note(text: str) -> None:
    """One line on stderr about a cache (never data: stdout stays clean)."""
    sys.stderr.write(f"simsparse: note: {text}\n")


def read_json(path: Path) -> dict | None:
    """A JSON object from `path`, or None when it is missing or unreadable (never raises)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_cache(path: Path, *, version: int, valid: Callable[[dict], bool], what: str,
               version_key: str = "cache_version", unversioned: int | None = None) -> dict | None:
    """A versioned cache file: None when missing; an unreadable, invalid or other-version file is
    discarded (removed) with a note, so the next use rebuilds it instead of failing every time.
    `unversioned`: the version a file without `version_key` is taken to have (older writers)."""
    if not path.exists():
        return None
    data = read_json(path)
    why = ("unreadable" if data is None else
           "from another simsparse version" if data.get(version_key, unversioned) != version else
           "" if _safe_valid(valid, data) else "malformed")
    if not why:
        return data
    try:
        path.unlink()
        note(f"discarded the {why} {what} {path}; it is rebuilt when next needed")
    except OSError as exc:
        note(f"ignoring the {why} {what} {path} (cannot remove it: {exc.strerror}); delete it by hand")
    return None


def _safe_valid(valid: Callable[[dict], bool], data: dict) -> bool:
    try:
        return bool(valid(data))
    except (KeyError, TypeError, ValueError, AttributeError, SimSparseError):
        return False


def write_json(path: Path, data: dict) -> None:
    """Write a cache file atomically (fresh temp name, never through a link; fileio)."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True), what="cache file")


def write_cache(path: Path, data: dict, *, version: int, what: str, version_key: str = "cache_version") -> bool:
    """Write a versioned cache; a cache that cannot be written is a note (the result is still used)."""
    try:
        write_json(path, {**data, version_key: version})
        return True
    except SimSparseError as exc:
        note(f"could not save the {what} ({exc}); it is measured again next time")
        return False


def positive_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0
