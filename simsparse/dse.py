"""Design-space sweeps: a YAML grid of archs × spec overrides × inputs × batches -> one CSV row per point.

```yaml
version: 1
name: nm-support
archs: [systolic_32x32, vegeta_like]          # names or paths
grid:                                         # optional: dotted spec fields -> values (cartesian product)
  memory.dram_bytes_per_clk: [8, 16, 32]
  sparsity.patterns: [["2:4"], ["1:4", "2:4"]]  # values are typed once; 2:4 is never a number
inputs:                                       # workloads with synthetic patterns, and/or checkpoints
  - {workload: resnet50, patterns: ["2:4", "fanin=0.1", "channels=0.6"]}
  - {mask: runs/srigl.pt}
batches: [1, 64]
engine: analytic                              # or cycle
dtype: null                                   # the arch's default
```
Before any point runs, the whole sweep is checked: archs, workloads and patterns exist, every grid
key and value is applied to every arch and validated by its schema, and the number of points is
at most MAX_POINTS (points are then generated lazily).

Durability (dse_store): every finished row is appended as a whole, checksummed record to
`<out>.journal`, which is locked while the sweep runs (a second sweep on the same `--out` is
refused) and names the sweep's identity (`--resume` refuses another sweep's store). The CSV at
`--out` is rewritten atomically from the journal, sorted by point key, so a killed-and-resumed or a
multi-worker run gives the same bytes as an uninterrupted one. Points run locally (a progress bar
on stderr) or on a Dask cluster (`--executor dask://HOST:PORT`, the [dask] extra).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import json
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm

from simsparse.archs import load_arch
from simsparse.dse_dask import dask_executor
from simsparse.dse_store import Journal, open_journal
from simsparse.errors import SimSparseError, SpecError
from simsparse.fileio import prepare_target, write_atomic
from simsparse.graph.catalog import load_workload
from simsparse.parse import MAX_DIM, parse_pattern
from simsparse.records import Report
from simsparse.overrides import Override
from simsparse.specs import Field, ListOf, MapOf, check_version, load_yaml, validate

MAX_POINTS = 200_000
CSV_EVERY_S = 2.0              # the CSV is refreshed at most this often while a sweep runs (and at its end)
INPUT_SCHEMA = {"workload": Field(str, required=False), "patterns": ListOf(Field(str), required=False, default=["dense"]),
                "mask": Field(str, required=False)}
SWEEP_SCHEMA = {
    "version": Field(int), "name": Field(str),
    "archs": ListOf(Field(str), min_len=1),
    "grid": MapOf(ListOf(Field((int, float, str, bool, list)), min_len=1), required=False, default={}),
    "inputs": ListOf(INPUT_SCHEMA, min_len=1),
    "batches": ListOf(Field(int, min=1, max=MAX_DIM), required=False, default=[1]),
    "engine": Field(str, required=False, default="analytic", choices=("analytic", "cycle")),
    "dtype": Field((str, type(None)), required=False, default=None),
}
COLUMNS = ("point", "arch", "overrides", "input", "pattern", "batch", "engine", "dtype", "density",
           "latency_s", "dense_latency_s", "speedup_vs_dense", "flops_dense", "flops_executed", "energy_j", "error")


@dataclass(frozen=True)
class Point:
    """One evaluation of the sweep."""

    arch: str
    overrides: tuple[Override, ...]
    workload: str | None
    mask: str | None
    pattern: str | None
    batch: int
    engine: str
    dtype: str | None

    @property
    def key(self) -> str:
        return json.dumps([self.arch, [str(o) for o in self.overrides], self.workload, self.mask, self.pattern,
                           self.batch, self.engine, self.dtype])


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: its spec, its identity (hash of the spec) and its size; points come lazily."""

    source: str
    spec: dict
    identity: str
    size: int

    @property
    def name(self) -> str:
        return self.spec["name"]

    def points(self) -> Iterator[Point]:
        spec = self.spec
        keys = sorted(spec["grid"])
        combos = itertools.product(*(spec["grid"][k] for k in keys))
        for combo, arch, inp, batch in itertools.product(combos, spec["archs"], spec["inputs"], spec["batches"]):
            overrides = tuple(Override(path=tuple(k.split(".")), value=v) for k, v in zip(keys, combo))
            for pattern in (inp["patterns"] if inp["workload"] else [None]):
                yield Point(arch=arch, overrides=overrides, workload=inp["workload"], mask=inp["mask"],
                            pattern=pattern, batch=batch, engine=spec["engine"], dtype=spec["dtype"])


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep YAML: fields, size, archs, workloads, patterns and every grid entry."""
    source = str(path)
    data = load_yaml(path)
    check_version(data, source=source)
    spec = validate(data, SWEEP_SCHEMA, source=source)
    per_input = 0
    for i, inp in enumerate(spec["inputs"]):
        if (inp["workload"] is None) == (inp["mask"] is None):
            raise SpecError(f"{source}: field inputs.{i} needs exactly one of workload or mask")
        per_input += len(inp["patterns"]) if inp["workload"] else 1
    size = len(spec["archs"]) * per_input * len(spec["batches"]) * math.prod(len(v) for v in spec["grid"].values())
    if size > MAX_POINTS:
        raise SpecError(f"{source}: the grid has {size} points, more than the {MAX_POINTS} one sweep may hold; "
                        "split it into several sweeps")
    _check_inputs(spec, source=source)
    _check_grid(spec, source=source)
    identity = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return Sweep(source=source, spec=spec, identity=identity, size=size)


def _check_inputs(spec: dict, *, source: str) -> None:
    for i, inp in enumerate(spec["inputs"]):
        try:
            if inp["workload"] is not None:
                load_workload(inp["workload"])
            for pattern in inp["patterns"]:
                parse_pattern(pattern)
        except SimSparseError as exc:
            raise SpecError(f"{source}: inputs.{i}: {exc}") from None


def _check_grid(spec: dict, *, source: str) -> None:
    """Apply every grid value alone to every arch and validate it, before any point runs."""
    for arch in spec["archs"]:
        try:
            load_arch(arch)
        except SimSparseError as exc:
            raise SpecError(f"{source}: archs: {exc}") from None
        for key, values in spec["grid"].items():
            for value in values:
                try:
                    load_arch(arch, (Override(path=tuple(key.split(".")), value=value),))
                except SimSparseError as exc:
                    raise SpecError(f"{source}: grid {key}: {exc}") from None


# ----------------------------------------------------------------------------- one point


def _plain(value: Any) -> Any:
    """Python scalars (numpy ones converted), so fresh and journalled rows render identically."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def run_point(point: Point, *, evaluate: Callable[..., Report]) -> dict[str, Any]:
    """Evaluate one point with `evaluate` (api.evaluate, passed in by the api: dse sits below it);
    bad input for this point becomes an `error` cell, not a crashed sweep."""
    row: dict[str, Any] = {"point": point.key, "arch": point.arch, "overrides": ";".join(map(str, point.overrides)),
                           "input": point.workload or point.mask, "pattern": point.pattern or "",
                           "batch": point.batch, "engine": point.engine, "dtype": point.dtype or ""}
    try:
        r = evaluate(arch=point.arch, mask=point.mask, workload=point.workload, pattern=point.pattern,
                     batch=point.batch, dtype=point.dtype, engine=point.engine, overrides=point.overrides)
    except SimSparseError as exc:
        row["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return row
    row.update(dtype=r.dtype, density=r.total.density, latency_s=r.total.latency_s,
               dense_latency_s=r.dense_total.latency_s, speedup_vs_dense=r.speedup_vs_dense,
               flops_dense=r.total.flops_dense, flops_executed=r.total.flops_executed, energy_j=r.total.energy_j,
               error="")
    return {k: _plain(v) for k, v in row.items()}


# ----------------------------------------------------------------------------- the run


def render_csv(rows: Iterable[dict]) -> str:
    """The result CSV: a header, then one line per row sorted by point key."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in sorted(rows, key=lambda r: r["point"]):
        w.writerow({k: r.get(k, "") for k in COLUMNS})
    return buf.getvalue()


@contextmanager
def _executor(executor: str, one: Callable[[Point], dict]) -> Iterator[Callable[[Iterable[Point]], Iterator[dict]]]:
    """A map of `one` over points; a Dask address is checked and connected here, before any file is touched."""
    if executor == "local":
        yield lambda points: map(one, points)
    elif executor.startswith("dask://"):
        with dask_executor(executor) as dask_map:
            yield lambda points: dask_map(points, one)
    else:
        raise SimSparseError(f"--executor {executor!r}: use local or dask://HOST:PORT")


def run(*, sweep: str | Path, out: str | Path, evaluate: Callable[..., Report], executor: str = "local",
        resume: bool = False, progress: bool = False) -> list[dict]:
    """Run every point not yet in `out`'s journal through `evaluate` (api.evaluate, passed in by the
    api) and write the sorted CSV (see the module doc)."""
    spec = load_sweep(sweep)
    out = prepare_target(out, what="--out", make_parents=True)
    with _executor(executor, functools.partial(run_point, evaluate=evaluate)) as mapper:
        journal = open_journal(out, identity=spec.identity, name=spec.name, resume=resume)
        try:
            _run_points(spec, journal, mapper, out=out, progress=progress)
        finally:  # also when stopped (a lost scheduler, Ctrl-C): the CSV shows every finished row
            if journal.rows or not out.exists():
                write_atomic(out, render_csv(journal.rows.values()), what="--out")
            journal.close()
    return sorted(journal.rows.values(), key=lambda r: r["point"])


def _run_points(spec: Sweep, journal: Journal, mapper, *, out: Path, progress: bool) -> None:
    done = {k for k, r in journal.rows.items() if not r.get("error")}
    todo = (p for p in spec.points() if p.key not in done)
    last = time.monotonic()
    with tqdm(total=max(0, spec.size - len(done)), desc="sweep", disable=not progress) as bar:
        for row in mapper(todo):
            journal.append_row(row)
            bar.update(1)
            if time.monotonic() - last >= CSV_EVERY_S:
                write_atomic(out, render_csv(journal.rows.values()), what="--out")
                last = time.monotonic()
