"""Predicted vs published 2:4-sparse and dense GEMM timings (`simsparse validate --device published`).

Each CSV row (id, gpu, dtype, m, n, k, sparse_backend, dense_us, sparse_us, speedup, ...) is run
on the arch model with the row's back end (`software.backend=<row>`); the sparse side uses a
2:4 mask on the [n, k] weight, the dense side the dense baseline of the same layer. Rows measured
outside PyTorch (a `harness` column saying `kernel`: CUTLASS profiler, cuSPARSELt samples) are
predicted without the eager host overhead. Empty measured times are skipped in the time MAPE.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from simsparse.archs import ArchModel, load_arch
from simsparse.engines import estimate
from simsparse.errors import SimSparseError
from simsparse.masks.synthetic import two_four_checkerboard
from simsparse.records import Gemm, LayerWork
from simsparse.resources import data_dir

DEV_CSV = "a100_2to4_dev.csv"
REQUIRED_COLUMNS = ("id", "dtype", "m", "n", "k", "sparse_backend", "dense_us", "sparse_us", "speedup")


@dataclass(frozen=True)
class ValidationPoint:
    id: str
    gpu: str
    dtype: str
    m: int
    n: int
    k: int
    backend: str
    measured_dense_us: float | None
    measured_sparse_us: float | None
    measured_speedup: float
    predicted_dense_us: float
    predicted_sparse_us: float
    predicted_speedup: float
    format: str
    source: str = ""


@dataclass(frozen=True)
class ValidationResult:
    arch: str
    engine: str
    csv_path: str
    points: tuple[ValidationPoint, ...]
    summary: Mapping[str, Any] = field(default_factory=dict)


def default_csv() -> Path:
    return data_dir("accelerators") / "measurements" / DEV_CSV


def _num(text: str | None) -> float | None:
    text = (text or "").strip()
    return float(text) if text else None


def read_rows(csv_path: Path) -> list[dict]:
    try:
        with open(csv_path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("id") and not r["id"].startswith("#")]
    except OSError as exc:
        raise SimSparseError(f"{csv_path}: cannot read measurements ({exc.strerror or exc}); check the path") from None
    missing = [c for c in REQUIRED_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise SimSparseError(f"{csv_path}: missing column(s) {', '.join(missing)}; "
                             f"required: {', '.join(REQUIRED_COLUMNS)}")
    return rows


def _row_models(arch: str, backend: str, harness: str, overrides: tuple[str, ...],
                cache: dict) -> ArchModel:
    key = (arch, backend, harness, overrides)
    if key not in cache:
        sets = list(overrides) + [f"software.backend={backend}"]
        if harness == "kernel":
            sets.append("software.include_host_overhead=false")
        cache[key] = load_arch(arch, overrides=sets)
    return cache[key]


def predict_row(model: ArchModel, row: Mapping[str, str], *, engine: str, pattern_cache: dict) -> tuple[float, float, str]:
    """(dense latency s, sparse latency s, sparse-side format) for one CSV row."""
    from simsparse.masks.patterns import analyze

    m, n, k = int(row["m"]), int(row["n"]), int(row["k"])
    gemm = Gemm(m=m, n=n, k=k, dtype=row["dtype"])
    if (n, k) not in pattern_cache:
        mask = two_four_checkerboard(n, k)
        pattern_cache[(n, k)] = (mask, analyze(mask))
    mask, pattern = pattern_cache[(n, k)]
    work = LayerWork(name=row["id"], kind="gemm", op_kind="linear", gemm=gemm, mask=mask, pattern=pattern,
                     dtype=row["dtype"])
    dense = estimate(model.plan(work, dense=True), model, engine)
    sparse = estimate(model.plan(work), model, engine)
    return dense.latency_s, sparse.latency_s, sparse.format


def _mape(pred: list[float], meas: list[float]) -> float:
    pairs = [(p, q) for p, q in zip(pred, meas) if q]
    return 100.0 * sum(abs(p - q) / q for p, q in pairs) / len(pairs) if pairs else math.nan


def _spearman(a: list[float], b: list[float]) -> float:
    if len(a) < 2:
        return math.nan
    from scipy.stats import spearmanr

    rho = spearmanr(a, b).statistic
    return float(rho) if rho == rho else math.nan


def summarize(points: tuple[ValidationPoint, ...] | list[ValidationPoint]) -> dict:
    """{mape_speedup, mape_time, mape (= mape_speedup), sign_correct, n, spearman} in percent."""
    sp_pred = [p.predicted_speedup for p in points]
    sp_meas = [p.measured_speedup for p in points]
    t_pred, t_meas = [], []
    for p in points:
        for pred, meas in ((p.predicted_dense_us, p.measured_dense_us), (p.predicted_sparse_us, p.measured_sparse_us)):
            if meas is not None:
                t_pred.append(pred)
                t_meas.append(meas)
    sign = sum((a > 1.0) == (b > 1.0) for a, b in zip(sp_pred, sp_meas))
    mape_sp = _mape(sp_pred, sp_meas)
    return {"mape_speedup": mape_sp, "mape_time": _mape(t_pred, t_meas), "mape": mape_sp,
            "sign_correct": sign, "n": len(points), "spearman": _spearman(sp_pred, sp_meas)}


def run(csv_path: Path | None = None, *, arch: str = "a100_2to4", engine: str = "analytic",
        overrides: tuple[str, ...] = ()) -> ValidationResult:
    """Run the model on every row of `csv_path` (default: the shipped A100 dev rows)."""
    path = Path(csv_path) if csv_path is not None else default_csv()
    models: dict = {}
    patterns: dict = {}
    points = []
    for row in read_rows(path):
        harness = (row.get("harness") or "pytorch").strip() or "pytorch"
        model = _row_models(arch, row["sparse_backend"].strip(), harness, tuple(overrides), models)
        dense_s, sparse_s, fmt = predict_row(model, row, engine=engine, pattern_cache=patterns)
        points.append(ValidationPoint(
            id=row["id"], gpu=row.get("gpu", ""), dtype=row["dtype"], m=int(row["m"]), n=int(row["n"]),
            k=int(row["k"]), backend=row["sparse_backend"], measured_dense_us=_num(row["dense_us"]),
            measured_sparse_us=_num(row["sparse_us"]), measured_speedup=float(row["speedup"]),
            predicted_dense_us=dense_s * 1e6, predicted_sparse_us=sparse_s * 1e6,
            predicted_speedup=dense_s / sparse_s, format=fmt, source=row.get("source", "")))
    return ValidationResult(arch=arch, engine=engine, csv_path=str(path), points=tuple(points),
                            summary=summarize(points))


def result_to_dict(result: ValidationResult) -> dict:
    """JSON-ready view: `points` (predicted and measured per case) and `summary`."""
    from dataclasses import asdict

    return {"arch": result.arch, "engine": result.engine, "csv": result.csv_path,
            "points": [asdict(p) for p in result.points], "summary": dict(result.summary)}
