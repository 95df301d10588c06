"""Published measurement CSVs: the two schemas, strict reading, and shape-set folds.

Two schemas, told apart by the header:
- `torch`: 2:4 GEMMs timed through PyTorch (`to_sparse_semi_structured`): id, gpu, dtype, m, n,
  k, sparse_backend (cusparselt | cutlass), dense_us, sparse_us, speedup; optional harness
  (pytorch or pytorch-eager: eager calls timed in a loop, the default; kernel: device time only),
  source, note. The harness names the software stack the row is predicted with.
  A row may leave dense_us and sparse_us empty when only a speedup was published.
- `kernel`: library kernels timed alone (device time, no host): id, gpu, dtype, m, n, k,
  dense_library, sparse_library, dense_us, sparse_us, speedup; optional shapes_from, source.

m = activation rows, n = output features, k = reduction (the sparse operand is the n x k
weight); times in microseconds. Every field is checked (ASCII numbers only, positive, finite,
in range; known dtypes; unique ids); a bad file is refused with one line naming the file, line,
row, column and value, never read halfway. Lines whose id starts with '#' are comments.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from simsparse.errors import SimSparseError
from simsparse.units import DTYPES
from simsparse.validate.records import HARNESS_SOFTWARE, Corpus

COMMON = ("id", "gpu", "dtype", "m", "n", "k")
TIMES = ("dense_us", "sparse_us", "speedup")
SCHEMAS = {
    "torch": COMMON + ("sparse_backend",) + TIMES,
    "kernel": COMMON + ("dense_library", "sparse_library") + TIMES,
}
# dtype names the corpora use -> the model's dtype name (fp8 formats run at one fp8 rate)
MODEL_DTYPES = {**{d: d for d in DTYPES}, "fp8": "fp8", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8"}
MAX_FILE_BYTES = 32 * 1024 * 1024
MAX_DIM = 2**31 - 1
MAX_US = 1e9                       # 1000 s for one GEMM: anything above is a unit mistake
MAX_SPEEDUP = 100.0
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INT = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class PublishedRow:
    """One checked CSV row (times in seconds)."""

    id: str
    line: int
    gpu: str
    dtype: str                      # as the row names it (e.g. fp8_e4m3); MODEL_DTYPES maps it
    m: int
    n: int
    k: int
    backend: str                    # sparse back end: sparse_backend, or sparse_library's first word, lower case
    software: str                   # one of records.SOFTWARE_STACKS
    dense_s: float | None
    sparse_s: float | None
    speedup: float
    shape_set: str = ""
    reference: str = ""


@dataclass(frozen=True)
class Fold:
    """Leave-one-shape-set-out: fit on `train`, judge on `test` (the rows of `held_out`)."""

    held_out: str
    train: tuple[PublishedRow, ...]
    test: tuple[PublishedRow, ...]


def _refuse(where: str, what: str) -> SimSparseError:
    return SimSparseError(f"{where}: {what}")


def detect_schema(header: Sequence[str], *, where: str) -> str:
    """`torch` or `kernel` from the header; a SimSparseError naming the missing columns otherwise."""
    schema = "torch" if "sparse_backend" in header else "kernel" if "sparse_library" in header else None
    if schema is None:
        raise _refuse(where, "not a measurement CSV: the header has neither sparse_backend (torch-level "
                      f"rows: {', '.join(SCHEMAS['torch'])}) nor sparse_library (kernel rows: "
                      f"{', '.join(SCHEMAS['kernel'])})")
    missing = [c for c in SCHEMAS[schema] if c not in header]
    if missing:
        raise _refuse(where, f"missing column(s) {', '.join(missing)}; a {schema} CSV needs "
                      f"{', '.join(SCHEMAS[schema])}")
    return schema


def _number(text: str, *, where: str, column: str, low: float, high: float, unit: str) -> float:
    value = float(text) if _NUMBER.fullmatch(text) else math.nan
    if not (low < value <= high):
        raise _refuse(where, f"{column} = {text!r} is invalid; expected a number in ({low:g}, {high:g}]{unit}")
    return value


def _dim(text: str, *, where: str, column: str) -> int:
    value = int(text) if _INT.fullmatch(text) else 0
    if not 0 < value <= MAX_DIM:
        raise _refuse(where, f"{column} = {text!r} is invalid; expected a positive integer (ASCII digits)")
    return value


def _time_s(text: str, *, where: str, column: str, optional: bool) -> float | None:
    if not text and optional:
        return None
    return _number(text, where=where, column=column, low=0.0, high=MAX_US, unit=" microseconds") / 1e6


def parse_row(raw: dict[str, str], *, schema: str, where: str, line: int) -> PublishedRow:
    """One CSV row of `schema` -> PublishedRow (SimSparseError naming the bad field)."""
    where = f"{where} line {line} (id {raw['id']})"
    if raw["dtype"] not in MODEL_DTYPES:
        raise _refuse(where, f"dtype = {raw['dtype']!r} is unknown; use one of {', '.join(MODEL_DTYPES)}")
    if not raw["gpu"]:
        raise _refuse(where, "gpu is empty; name the GPU the row was measured on (e.g. A100)")
    if schema == "torch":
        backend, software = raw["sparse_backend"].lower(), raw.get("harness") or "pytorch"
        if software not in HARNESS_SOFTWARE:
            raise _refuse(where, f"harness = {software!r} is invalid; use one of {', '.join(HARNESS_SOFTWARE)}")
        software = HARNESS_SOFTWARE[software]
    else:
        backend, software = (raw["sparse_library"].split() or [""])[0].lower(), "kernel"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", backend):
        raise _refuse(where, f"sparse back end {backend!r} is invalid; name a library such as cusparselt or cutlass")
    return PublishedRow(
        id=raw["id"], line=line, gpu=raw["gpu"], dtype=raw["dtype"],
        m=_dim(raw["m"], where=where, column="m"), n=_dim(raw["n"], where=where, column="n"),
        k=_dim(raw["k"], where=where, column="k"), backend=backend, software=software,
        dense_s=_time_s(raw["dense_us"], where=where, column="dense_us", optional=schema == "torch"),
        sparse_s=_time_s(raw["sparse_us"], where=where, column="sparse_us", optional=schema == "torch"),
        speedup=_number(raw["speedup"], where=where, column="speedup", low=0.0, high=MAX_SPEEDUP, unit=""),
        shape_set=raw.get("shapes_from") or "", reference=raw.get("source") or "")


def _text(path: Path) -> str:
    try:
        if not path.is_file():
            raise _refuse(str(path), "no such file; give the path of a measurement CSV")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise _refuse(str(path), f"larger than {MAX_FILE_BYTES // 2**20} MiB; split it")
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _refuse(str(path), f"not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None
    except OSError as exc:
        raise _refuse(str(path), f"cannot read ({exc.strerror or exc}); check the path") from None
    if "\x00" in text:
        raise _refuse(str(path), "holds NUL bytes; not a CSV text file")
    return text


def read_corpus(path: str | Path, *, name: str | None = None, role: str = "user") -> tuple[Corpus, tuple[PublishedRow, ...]]:
    """Read and check one measurement CSV of either schema."""
    path = Path(path)
    reader = csv.reader(io.StringIO(_text(path), newline=""))
    try:
        table = [(reader.line_num, [c.strip() for c in r]) for r in reader]
    except csv.Error as exc:
        raise _refuse(f"{path} line {reader.line_num}", f"not a valid CSV ({exc})") from None
    table = [(line, r) for line, r in table if any(r)]
    if not table:
        raise _refuse(str(path), "is empty; expected a header line and measured rows")
    header = table[0][1]
    if len(set(header)) != len(header):
        raise _refuse(str(path), "the header repeats a column name")
    schema = detect_schema(header, where=str(path))
    rows, seen = [], set()
    for line, cells in table[1:]:
        if cells[0].startswith("#"):
            continue
        if len(cells) != len(header):
            raise _refuse(f"{path} line {line}", f"{len(cells)} fields where the header has {len(header)}")
        row = parse_row(dict(zip(header, cells)), schema=schema, where=str(path), line=line)
        if row.id in seen or not row.id:
            raise _refuse(f"{path} line {line}", f"id {row.id!r} is empty or repeated; ids must be unique")
        seen.add(row.id)
        rows.append(row)
    if not rows:
        raise _refuse(str(path), "holds a header but no measured rows")
    return Corpus(name=name or path.stem, path=str(path), role=role, schema=schema, rows=len(rows)), tuple(rows)


def shape_set_folds(rows: Sequence[PublishedRow]) -> tuple[Fold, ...]:
    """One fold per shape set (`shapes_from`): its rows are the test set, all others the train set."""
    sets = list(dict.fromkeys(r.shape_set for r in rows))
    if "" in sets:
        raise ValueError("every row needs a shape set (the kernel CSV's shapes_from) to split by shape set")
    return tuple(Fold(held_out=s, train=tuple(r for r in rows if r.shape_set != s),
                      test=tuple(r for r in rows if r.shape_set == s)) for s in sets)
