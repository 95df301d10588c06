"""Design-space sweeps: a YAML grid of archs × spec overrides × inputs × batches -> one CSV row per point.

```yaml
version: 1
name: nm-support
archs: [systolic_32x32, vegeta_like]          # names or paths
grid:                                         # optional: dotted spec fields -> values (cartesian product)
  memory.dram_bytes_per_clk: [8, 16, 32]
inputs:                                       # workloads with synthetic patterns, and/or checkpoints
  - {workload: resnet50, patterns: ["2:4", "fanin=0.1", "channels=0.6"]}
  - {mask: runs/srigl.pt}
batches: [1, 64]
engine: analytic                              # or cycle
dtype: null                                   # the arch's default
```
Points run locally (a progress bar on stderr), or on a dask cluster (`--executor dask://HOST:PORT`,
needs the [dask] extra). `--resume` keeps the rows already in the output file and runs the rest;
the output is rewritten atomically after every point, so an interrupted sweep loses nothing.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm import tqdm

from simsparse.errors import SimSparseError, SpecError
from simsparse.fileio import write_atomic
from simsparse.records import Report
from simsparse.specs import Field, ListOf, MapOf, check_version, load_yaml, validate

INPUT_SCHEMA = {"workload": Field(str, required=False), "patterns": ListOf(Field(str), required=False, default=["dense"]),
                "mask": Field(str, required=False)}
SWEEP_SCHEMA = {
    "version": Field(int), "name": Field(str),
    "archs": ListOf(Field(str), min_len=1),
    "grid": MapOf(ListOf(Field((int, float, str, bool)), min_len=1), required=False, default={}),
    "inputs": ListOf(INPUT_SCHEMA, min_len=1),
    "batches": ListOf(Field(int, min=1), required=False, default=[1]),
    "engine": Field(str, required=False, default="analytic", choices=("analytic", "cycle")),
    "dtype": Field((str, type(None)), required=False, default=None),
}
COLUMNS = ("point", "arch", "overrides", "input", "pattern", "batch", "engine", "dtype", "density",
           "latency_s", "dense_latency_s", "speedup_vs_dense", "flops_dense", "flops_executed", "energy_j", "error")


@dataclass(frozen=True)
class Point:
    """One evaluation of the sweep."""

    arch: str
    overrides: tuple[str, ...]
    workload: str | None
    mask: str | None
    pattern: str | None
    batch: int
    engine: str
    dtype: str | None

    @property
    def key(self) -> str:
        return json.dumps([self.arch, list(self.overrides), self.workload, self.mask, self.pattern, self.batch,
                           self.engine, self.dtype])


def load_sweep(path: str | Path) -> list[Point]:
    """Read and validate a sweep YAML; expand it into points."""
    data = load_yaml(path)
    check_version(data, source=str(path))
    spec = validate(data, SWEEP_SCHEMA, source=str(path))
    grid_keys = sorted(spec["grid"])
    combos = list(itertools.product(*(spec["grid"][k] for k in grid_keys))) or [()]
    points = []
    for i, inp in enumerate(spec["inputs"]):
        if (inp["workload"] is None) == (inp["mask"] is None):
            raise SpecError(f"{path}: field inputs.{i} needs exactly one of workload or mask")
    for arch, combo, inp, batch in itertools.product(spec["archs"], combos, spec["inputs"], spec["batches"]):
        overrides = tuple(f"{k}={v}" for k, v in zip(grid_keys, combo))
        patterns = inp["patterns"] if inp["workload"] else [None]
        for pattern in patterns:
            points.append(Point(arch=arch, overrides=overrides, workload=inp["workload"], mask=inp["mask"],
                                pattern=pattern, batch=batch, engine=spec["engine"], dtype=spec["dtype"]))
    return points


def run_point(point: Point, *, evaluate: Callable[..., Report]) -> dict[str, Any]:
    """Evaluate one point with `evaluate` (api.evaluate, passed in by the api: dse sits below it);
    bad input for this point becomes an `error` cell, not a crashed sweep."""
    row: dict[str, Any] = {"point": point.key, "arch": point.arch, "overrides": ";".join(point.overrides),
                           "input": point.workload or point.mask, "pattern": point.pattern or "",
                           "batch": point.batch, "engine": point.engine, "dtype": point.dtype or ""}
    try:
        r = evaluate(arch=point.arch, mask=point.mask, workload=point.workload, pattern=point.pattern,
                         batch=point.batch, dtype=point.dtype, engine=point.engine, overrides=point.overrides)
    except SimSparseError as exc:
        row["error"] = str(exc)
        return row
    row.update(dtype=r.dtype, density=r.total.density, latency_s=r.total.latency_s,
               dense_latency_s=r.dense_total.latency_s, speedup_vs_dense=r.speedup_vs_dense,
               flops_dense=r.total.flops_dense, flops_executed=r.total.flops_executed, energy_j=r.total.energy_j,
               error="")
    return row


def _csv(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in COLUMNS})
    return buf.getvalue()


def _existing(out: Path) -> list[dict]:
    if not out.is_file():
        return []
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and set(rows[0]) != set(COLUMNS):
        raise SimSparseError(f"{out}: not a simsparse sweep result (columns differ); choose another --out")
    return rows


def run(*, sweep: str | Path, out: str | Path, evaluate: Callable[..., Report], executor: str = "local",
        resume: bool = False, progress: bool = False) -> list[dict]:
    """Run every point not yet in `out` (with --resume) through `evaluate` and write the CSV after each one."""
    points = load_sweep(sweep)
    out = Path(out)
    if out.exists() and not resume:
        raise SimSparseError(f"{out} exists; pass --resume to continue it or choose another --out")
    rows = _existing(out) if resume else []
    done = {r["point"] for r in rows if not r.get("error")}
    rows = [r for r in rows if r["point"] in done]
    todo = [p for p in points if p.key not in done]
    one = functools.partial(run_point, evaluate=evaluate)
    if executor == "local":
        results = map(one, todo)
    elif executor.startswith("dask://"):
        results = _dask_map(one, todo, executor)
    else:
        raise SimSparseError(f"--executor {executor!r}: use local or dask://HOST:PORT")
    for row in tqdm(results, total=len(todo), desc="sweep", disable=not progress):
        rows.append(row)
        write_atomic(out, _csv(rows))
    if not todo:
        write_atomic(out, _csv(rows))
    return rows


def _dask_map(one: Callable[[Point], dict], points: list[Point], address: str):
    try:
        from dask.distributed import Client, as_completed  # optional extra [dask]
    except ImportError:
        raise SimSparseError("--executor dask:// needs the dask extra: pip install 'simsparse[dask]'") from None
    client = Client(address.removeprefix("dask://"))
    futures = client.map(one, points, pure=False)
    for fut in as_completed(futures):
        yield fut.result()
