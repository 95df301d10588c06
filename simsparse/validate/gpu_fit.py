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
weight without removed channels), which keeps a fit to seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from simsparse.archs import arch_data, load_arch
from simsparse.archs.gpu_call import closed_form_latency_s, library_call
from simsparse.archs.gpu_spec import GPU_SCHEMA
from simsparse.errors import SimSparseError
from simsparse.records import Gemm
from simsparse.specs import Field, MapOf
from simsparse.validate import published
from simsparse.validate.corpus import MODEL_DTYPES, PublishedRow, shape_set_folds
from simsparse.validate.gpu_predict import arch_for_gpu

LOG_BOUND_MARGIN = 1e-9


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


def fit(arch: str, rows: Sequence[PublishedRow], *, base: Sequence[str] = (), held_out: str = "") -> FitResult:
    """Least squares on log times of `rows` over the spec's fitted fields (bounds: the schema's)."""
    from scipy.optimize import least_squares  # scipy: only fitting pays its import

    fields = tuple(fitted_block(arch))
    if not fields or not rows:
        raise SimSparseError(f"{arch}: nothing to fit (fields {len(fields)}, rows {len(rows)})")
    x0 = np.array([_current(arch, f) for f in fields], dtype=float)
    schemas = [_field_schema(f) for f in fields]
    lo = np.array([s.min if s.min is not None else -np.inf for s in schemas], dtype=float) + LOG_BOUND_MARGIN
    hi = np.array([s.max if s.max is not None else np.inf for s in schemas], dtype=float) - LOG_BOUND_MARGIN
    x0 = np.clip(x0, lo, hi)
    scale = np.where(np.abs(x0) > 0, np.abs(x0), 1.0)
    sol = least_squares(lambda x: _residuals(arch, fields, x, rows, base), x0, bounds=(lo, hi), x_scale=scale,
                        diff_step=1e-3, xtol=1e-6, ftol=1e-6)
    rms = float(math.sqrt(np.mean(sol.fun ** 2)))
    return FitResult(arch=arch, values={f: float(v) for f, v in zip(fields, sol.x)}, rows=len(rows),
                     rms_log_error=rms, held_out=held_out)


def _current(arch: str, path: str) -> float:
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
