"""Fitting a GPU spec's few global parameters on development rows, and the leave-one-shape-set-
out refits (scipy least squares on log dense and sparse times).

What is fitted is declared by the spec itself: its `fitted:` block maps each fitted field (a
dotted path, as `--set` takes it) to the rows it is fitted on, `CORPUS` or `CORPUS GPU NAME`
(e.g. `gpu_kernel_dev A100 80GB PCIe`). Every other field of the spec is a datasheet value or a
prior and is never touched here. Only dev corpora (`published.CORPORA` role "dev") may be named.

`fit(arch, rows)` returns the fitted values (the dev fit: paste them into the YAML, as
`benchmarks/bench_gpu_validation.py --fit` prints them); `loo_fits(arch)` refits once per shape
set without its rows (`corpus.shape_set_folds`). Both time a row with the closed form directly
(`gpu_call.library_call` + `closed_form_latency_s`: what the analytic engine answers for a 2:4
weight without removed channels), which keeps a fit to seconds. The fold fits are stored in
`accelerators/measurements/gpu_fits.json` (`write_fold_fits`), so the leave-one-shape-set-out
figures and the error bands are reproduced without refitting (`loo_points`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from simsparse.archs import arch_data, load_arch
from simsparse.archs.gpu_call import closed_form_latency_s, library_call
from simsparse.archs.gpu_spec import GPU_SCHEMA
from simsparse.errors import SimSparseError
from simsparse.fileio import write_atomic
from simsparse.records import Gemm
from simsparse.resources import data_dir
from simsparse.specs import Field, MapOf
from simsparse.validate import published
from simsparse.validate.corpus import MODEL_DTYPES, PublishedRow, shape_set_folds
from simsparse.validate.gpu_predict import GpuPredictor, arch_for_gpu
from simsparse.validate.records import MeasuredPoint

LOG_BOUND_MARGIN = 1e-9
FITS_FILE = "gpu_fits.json"


@dataclass(frozen=True)
class FitResult:
    arch: str
    values: Mapping[str, float]      # fitted field -> value
    rows: int                        # rows fitted on
    rms_log_error: float             # root mean square of log(predicted / measured) over dense and sparse times
    held_out: str = ""               # the shape set left out ("" = every dev row)

    def overrides(self) -> tuple[str, ...]:
        return tuple(f"{k}={v:.6g}" for k, v in self.values.items())


def fitted_block(arch: str) -> dict[str, str]:
    """The spec's `fitted:` block: field -> `CORPUS [GPU NAME]`."""
    data, _ = arch_data(arch)
    return {str(k): str(v) for k, v in (data.get("fitted") or {}).items()}


def borrowed_block(arch: str) -> dict[str, str]:
    """The spec's `borrowed:` block: field -> SPEC or SPEC:FIELD it repeats as a prior."""
    data, _ = arch_data(arch)
    return {str(k): str(v) for k, v in (data.get("borrowed") or {}).items()}


def borrowed_values(arch: str) -> dict[str, float]:
    """What the spec's borrowed fields must hold: the current value of each source field."""
    out = {}
    for field_path, source in borrowed_block(arch).items():
        spec_name, _, source_field = source.partition(":")
        out[field_path] = current_value(spec_name, source_field or field_path)
    return out


def _field_schema(path: str) -> Field:
    node = GPU_SCHEMA
    for key in path.split("."):
        node = getattr(node, "schema", node)          # Optional(...) wraps a section
        node = node.value if isinstance(node, MapOf) else node[key]
    node = node.value if isinstance(node, MapOf) else node
    if not isinstance(node, Field) or node.type not in (float, int):
        raise SimSparseError(f"fitted field {path} is not a number of the GPU schema")
    return node


def dev_rows(arch: str) -> tuple[PublishedRow, ...]:
    """Every dev row the spec's `fitted:` block names (rows whose GPU maps to this arch)."""
    wanted = set(fitted_block(arch).values())
    rows = []
    for lc in published.load([name for name, (_, role) in published.CORPORA.items() if role == "dev"]):
        for row in lc.rows:
            mapped, _ = arch_for_gpu(row.gpu)
            if mapped == arch and (lc.corpus.name in wanted or f"{lc.corpus.name} {row.gpu}" in wanted):
                rows.append(row)
    for source in wanted:
        if source.split()[0] not in published.CORPORA or published.CORPORA[source.split()[0]][1] != "dev":
            raise SimSparseError(f"{arch}: fitted on {source!r}, which is not a dev corpus; fit on dev rows only")
    return tuple(r for r in rows if r.dense_s and r.sparse_s)


def row_times(model, rows: Sequence[PublishedRow]) -> np.ndarray:
    """[dense_s, sparse_s] per row, closed form, each row on its own sparse back end under the
    software stack it was measured with."""
    specs: dict[tuple[str, str], object] = {}
    out = np.empty((len(rows), 2))
    for i, r in enumerate(rows):
        if (r.software, r.backend) not in specs:
            if r.backend not in model.spec.backends:
                raise SimSparseError(f"{model.name} has no sparse back end {r.backend!r}")
            specs[(r.software, r.backend)] = replace(model.spec.with_software(r.software), backend=r.backend)
        spec = specs[(r.software, r.backend)]
        g = Gemm(m=r.m, n=r.n, k=r.k, dtype=MODEL_DTYPES[r.dtype])
        out[i, 0] = closed_form_latency_s(spec, library_call(spec, spec.dense, g, sparse=False))
        out[i, 1] = closed_form_latency_s(spec, library_call(spec, spec.sparse_library, g, sparse=True))
    return out


def _residuals(arch: str, fields: Sequence[str], x: np.ndarray, rows: Sequence[PublishedRow],
               base: Sequence[str]) -> np.ndarray:
    sets = tuple(base) + tuple(f"{f}={v:.9g}" for f, v in zip(fields, x))
    times = row_times(load_arch(arch, sets), rows)
    measured = np.array([[r.dense_s, r.sparse_s] for r in rows])
    return np.log(times / measured).ravel()


def fit_multistart(arch: str, rows: Sequence[PublishedRow]) -> FitResult:
    """A fit from the spec's values; if that leaves a fitted power coefficient where it started
    (a power limit that never binds has no gradient, so a fit started below it stays there), the
    better of it and a second fit started with the power coefficients doubled."""
    first = fit(arch, rows)
    power = {f: current_value(arch, f) for f in fitted_block(arch) if f.startswith("power.tensor")}
    stuck = any(abs(first.values[f] - v) <= 1e-6 * max(1.0, abs(v)) for f, v in power.items())
    if not stuck:
        return first
    second = fit(arch, rows, base=tuple(f"{k}={2.0 * v:.9g}" for k, v in power.items()))
    return min(first, second, key=lambda r: r.rms_log_error)


def fit(arch: str, rows: Sequence[PublishedRow], *, base: Sequence[str] = (), held_out: str = "") -> FitResult:
    """Least squares on log times of `rows` over the spec's fitted fields (bounds: the schema's),
    starting from the spec's values or, for a fitted field that `base` sets, from that."""
    from scipy.optimize import least_squares  # scipy: only fitting pays its import

    fields = tuple(fitted_block(arch))
    if not fields or not rows:
        raise SimSparseError(f"{arch}: nothing to fit (fields {len(fields)}, rows {len(rows)})")
    start = {k: float(v) for k, _, v in (o.partition("=") for o in base) if k in fields}
    x0 = np.array([start.get(f, current_value(arch, f)) for f in fields], dtype=float)
    schemas = [_field_schema(f) for f in fields]
    lo = np.array([s.min if s.min is not None else -np.inf for s in schemas], dtype=float) + LOG_BOUND_MARGIN
    hi = np.array([s.max if s.max is not None else np.inf for s in schemas], dtype=float) - LOG_BOUND_MARGIN
    x0 = np.clip(x0, lo, hi)
    span = np.where(np.isfinite(hi - lo), (hi - lo) * 0.01, 1.0)
    scale = np.maximum(np.abs(x0), span)
    sol = least_squares(lambda x: _residuals(arch, fields, x, rows, base), x0, bounds=(lo, hi), x_scale=scale,
                        diff_step=1e-3, xtol=1e-6, ftol=1e-6)
    rms = float(math.sqrt(np.mean(sol.fun ** 2)))
    return FitResult(arch=arch, values={f: float(v) for f, v in zip(fields, sol.x)}, rows=len(rows),
                     rms_log_error=rms, held_out=held_out)


def current_value(arch: str, path: str) -> float:
    """The number a spec file holds at a dotted field path."""
    data, _ = arch_data(arch)
    node = data
    for key in path.split("."):
        node = node[key]
    return float(node)


def loo_fits(arch: str, *, base: Sequence[str] = ()) -> tuple[FitResult, ...]:
    """One refit per shape set of the arch's dev rows, without that set's rows."""
    rows = dev_rows(arch)
    shaped = [r for r in rows if r.shape_set]
    return tuple(fit(arch, fold.train, base=base, held_out=fold.held_out)
                 for fold in shape_set_folds(shaped) if fold.train)


def fits_path() -> Path:
    return data_dir("accelerators") / "measurements" / FITS_FILE


def write_fold_fits(folds: Sequence[FitResult], path: Path | None = None) -> Path:
    """Store the leave-one-shape-set-out fits: {arch: {held-out shape set: {field: value}}}."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for f in folds:
        out.setdefault(f.arch, {})[f.held_out] = {k: float(f"{v:.6g}") for k, v in f.values.items()}
    data = {"generated_by": "python benchmarks/bench_gpu_validation.py --fit",
            "what": "per arch and held-out shape set: the spec's fitted fields refit on the other shape sets' dev rows",
            "loo": out}
    target = path or fits_path()
    write_atomic(target, json.dumps(data, indent=1, sort_keys=True) + "\n")
    return target


def read_fold_fits(path: Path | None = None) -> dict[str, dict[str, dict[str, float]]]:
    """The stored fold fits ({} when none are stored)."""
    target = path or fits_path()
    if not target.is_file():
        return {}
    return json.loads(target.read_text(encoding="utf-8")).get("loo", {})


def loo_points(arch: str, folds: Mapping[str, Mapping[str, float]], *, engine: str = "analytic"
               ) -> tuple[MeasuredPoint, ...]:
    """Every dev row of `arch` with a shape set, predicted by the fit that left its shape set out."""
    ids = {r.id for r in dev_rows(arch)}
    points: list[MeasuredPoint] = []
    for lc in published.load([name for name, (_, role) in published.CORPORA.items() if role == "dev"]):
        for held_out, values in folds.items():
            test = tuple(r for r in lc.rows if r.id in ids and r.shape_set == held_out)
            if not test:
                continue
            sets = tuple(f"{k}={v:.9g}" for k, v in values.items())
            predictor = GpuPredictor(engine=engine, overrides=sets)
            loaded = published.LoadedCorpus(corpus=lc.corpus, rows=test)
            points += published.evaluate(loaded, predictor=predictor)[0]
    return tuple(points)
