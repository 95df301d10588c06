"""The durable store of a sweep: an append-only journal beside the result CSV (`<out>.journal`).

Each line is one whole record: `<checksum>\t<json>\n`, the checksum being the first 16 hex digits
of the SHA-256 of the JSON text. The first record names the sweep (`identity`: a hash of its
validated spec); every other record is one finished row. Records are appended with one write and
an fsync, so a kill leaves at most a torn last line, which `open_journal` discards. The journal is
held under an exclusive `flock` while a sweep runs: a second sweep on the same `--out` is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simsparse.errors import SimSparseError
from simsparse.fileio import LockedFile, open_locked

JOURNAL_FORMAT = "simsparse-sweep-journal"
JOURNAL_VERSION = 1


def journal_path(out: Path) -> Path:
    return out.with_name(out.name + ".journal")


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def encode_record(record: dict[str, Any]) -> bytes:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return f"{_checksum(text)}\t{text}\n".encode("utf-8")


def _decode_line(line: bytes) -> dict[str, Any] | None:
    """The record of one complete line, or None when it is torn or damaged."""
    try:
        check, _, text = line.decode("utf-8").partition("\t")
        if _checksum(text) != check:
            return None
        record = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


@dataclass
class Journal:
    """An open, locked journal and the rows it already holds (latest record per point key)."""

    file: LockedFile
    header: dict[str, Any]
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    discarded_bytes: int = 0

    def append_row(self, row: dict[str, Any]) -> None:
        self.file.append(encode_record({"kind": "row", "row": row}))
        self.rows[row["point"]] = row

    def close(self) -> None:
        self.file.close()


def _read_records(locked: LockedFile, *, out: Path) -> tuple[list[dict[str, Any]], int]:
    """Whole records in order and the byte length they span; a torn or damaged *last* line is
    dropped (a kill mid-append), any other damage is refused."""
    data = locked.read_all()
    records, good_end, offset = [], 0, 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        end = offset + len(line) + 1
        complete = i < len(lines) - 1
        record = _decode_line(line) if complete else None
        if record is None:
            if end < len(data):
                raise SimSparseError(f"{locked.path} is damaged at record {i + 1} (not written by simsparse, "
                                     f"or edited); move it and {out} away and run the sweep again")
            break
        records.append(record)
        good_end, offset = end, end
    return records, good_end


def open_journal(out: Path, *, identity: str, name: str, resume: bool) -> Journal:
    """Lock and read (or start) the journal of `out`; refuse another sweep's store or a busy one."""
    path = journal_path(out)
    if not resume and out.exists():
        raise SimSparseError(f"{out} exists; pass --resume to continue it or choose another --out")
    if resume and out.exists() and not path.exists():
        raise SimSparseError(f"{out} was not written by a simsparse sweep (no journal {path.name} beside it); "
                             "choose another --out")
    locked = open_locked(path, what="sweep journal",
                         busy=f"another sweep is writing {out} (its journal {path.name} is locked); "
                              "wait for it to finish or choose another --out")
    try:
        records, good_end = _read_records(locked, out=out)
        data = locked.read_all()
        size = len(data)
        if not records:
            if size and not _torn_header(data):
                raise SimSparseError(f"{path} is not a simsparse sweep journal; move it away or choose another --out")
            return _start(locked, identity=identity, name=name, torn=size)
        if not resume:
            raise SimSparseError(f"{path} holds an earlier sweep; pass --resume to continue it or choose another --out")
        header = records[0]
        if header.get("format") != JOURNAL_FORMAT or header.get("kind") != "sweep":
            raise SimSparseError(f"{path} is not a simsparse sweep journal; choose another --out")
        if header.get("identity") != identity:
            raise SimSparseError(f"{out} holds another sweep ({header.get('name')!r}, identity "
                                 f"{str(header.get('identity'))[:12]}), not this one ({name!r}, {identity[:12]}); "
                                 "choose another --out")
        if good_end < size:
            locked.truncate(good_end)
        rows = {r["row"]["point"]: r["row"] for r in records[1:]
                if r.get("kind") == "row" and isinstance(r.get("row"), dict) and "point" in r["row"]}
        return Journal(file=locked, header=header, rows=rows, discarded_bytes=size - good_end)
    except BaseException:
        locked.close()
        raise


_HEADER_START = b'{"format":"' + JOURNAL_FORMAT.encode() + b'"'


def _torn_header(data: bytes) -> bool:
    """Whether `data` is the beginning of a header record cut short by a kill."""
    check, tab, rest = data.partition(b"\t")
    hexdigits = all(c in b"0123456789abcdef" for c in check) and len(check) <= 16
    if not tab:
        return hexdigits
    return len(check) == 16 and hexdigits and (rest.startswith(_HEADER_START) or _HEADER_START.startswith(rest))


def _start(locked: LockedFile, *, identity: str, name: str, torn: int) -> Journal:
    if torn:
        locked.truncate(0)
    header = {"kind": "sweep", "format": JOURNAL_FORMAT, "version": JOURNAL_VERSION, "identity": identity,
              "name": name}
    locked.append(encode_record(header))
    return Journal(file=locked, header=header, discarded_bytes=torn)
