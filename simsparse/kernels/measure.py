"""`simsparse measure`: time real kernels on synthetic masks, single GEMMs or named suites.

    run(device="cpu", gemm=(1, 3072, 768), pattern="fanin=77", suite=None, kernel=None,
        threads=None, cache="warm") -> MeasureResult

Every kernel's output is checked against the dense reference before it is timed.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

import numpy as np
import torch

from simsparse.errors import MeasurementError, PatternError, SimSparseError
from simsparse.kernels import KERNELS
from simsparse.kernels.harness import (CACHE_MODES, Clock, Machine, Measurement, flush_bytes_for,
                                       library_versions, load_average, machine_info, make_flusher,
                                       thread_count, time_callable)
from simsparse.kernels.suites import Case, suite_cases
from simsparse.masks.synthetic import make_matrix
from simsparse.parse import check_pattern_fits, parse_gemm, parse_pattern

DEVICES = ("cpu", "cuda")
DEFAULT_MIN_TIME_S = 0.2


@dataclass(frozen=True)
class MeasureResult:
    device: str
    results: tuple[Measurement, ...]
    machine: Machine
    versions: Mapping[str, str]
    skipped: tuple[str, ...] = ()     # "kernel on pattern: why" for kernels that do not suit a pattern

    def to_dict(self) -> dict:
        return to_dict(self)

    def to_csv(self) -> str:
        return to_csv(self)


def run(*, device: str, gemm: tuple[int, int, int] | None, pattern: str | None, suite: str | None,
        kernel: str | None, threads: int | None, cache: str = "warm",
        min_time_s: float = DEFAULT_MIN_TIME_S, progress: bool = False) -> MeasureResult:
    """Measure one GEMM (`gemm`=(m, n, k) + `pattern`) or a named `suite` on `device`."""
    if device not in DEVICES:
        raise MeasurementError(f"unknown device {device!r}; use one of: {', '.join(DEVICES)}")
    if cache not in CACHE_MODES:
        raise MeasurementError(f"unknown cache mode {cache!r}; use one of: {', '.join(CACHE_MODES)}")
    cases = _cases(gemm=gemm, pattern=pattern, suite=suite, kernel=kernel)
    if device == "cuda":
        from simsparse.kernels.cuda import measure_cuda_cases

        results = measure_cuda_cases(cases, min_time_s=min_time_s, progress=progress)
        return MeasureResult(device="cuda", results=tuple(results), machine=machine_info(),
                             versions=library_versions())
    results, skipped = measure_cases(cases, threads=threads, cache=cache, min_time_s=min_time_s,
                                     progress=progress, skip_unsuited=kernel is None)
    return MeasureResult(device="cpu", results=tuple(results), machine=machine_info(),
                         versions=library_versions(), skipped=tuple(skipped))


def _cases(*, gemm, pattern, suite, kernel) -> tuple[Case, ...]:
    if kernel is not None:
        KERNELS.get(kernel)          # UnknownNameError listing the kernels
    if suite is not None:
        if gemm is not None or pattern is not None:
            raise SimSparseError("give either --suite or --gemm with --pattern, not both")
        cases = suite_cases(suite)
        if kernel is not None:
            cases = tuple(Case(m=c.m, n=c.n, k=c.k, pattern=c.pattern, kernels=(kernel,)) for c in cases)
        return cases
    if gemm is None or pattern is None:
        raise SimSparseError("measure needs --gemm M,N,K with --pattern P, or --suite NAME")
    m, n, k = parse_gemm(gemm)
    check_pattern_fits(parse_pattern(pattern), reduction=k, what="--pattern")
    kernels = (kernel,) if kernel is not None else tuple(KERNELS.names())
    return (Case(m=m, n=n, k=k, pattern=pattern, kernels=kernels),)


def measure_cases(cases: Iterable[Case], *, threads: int | None, cache: str = "warm",
                  min_time_s: float = DEFAULT_MIN_TIME_S, progress: bool = False,
                  skip_unsuited: bool = False, seed: int = 0,
                  clock: Clock = time.perf_counter,
                  store: dict | None = None) -> tuple[list[Measurement], list[str]]:
    """Time every (case, kernel) on the CPU. Masks, weights and kernel storage are built once per
    (n, k, pattern) (and kept in `store` across calls when one is given). Kernels that reject a
    pattern raise, or are listed in the second return value when `skip_unsuited`."""
    cases = tuple(cases)
    machine, versions = machine_info(), library_versions()
    flush = make_flusher(flush_bytes_for(machine)) if cache == "cold" else None
    store = {} if store is None else store
    prepared: dict[tuple, object] = store.setdefault("prepared", {})
    operands: dict[tuple, tuple[torch.Tensor, np.ndarray]] = store.setdefault("operands", {})
    results: list[Measurement] = []
    skipped: list[str] = []
    bar = _progress_bar(sum(len(c.kernels) for c in cases), enabled=progress)
    with thread_count(threads) as used_threads:
        for case in cases:
            for name in case.kernels:
                bar.update(1)
                weight, mask = _operands(operands, case, seed=seed)
                key = (case.n, case.k, case.pattern, name)
                try:
                    if key not in prepared:
                        prepared[key] = KERNELS.get(name).prepare(weight, mask)
                except PatternError as err:
                    if not skip_unsuited:
                        raise
                    skipped.append(f"{name} on {case.pattern} ({case.n}x{case.k}): {err}")
                    continue
                results.append(_measure_one(case, name, prepared[key], weight, mask, threads=used_threads,
                                            cache=cache, flush=flush, min_time_s=min_time_s, clock=clock,
                                            machine=machine, versions=versions, seed=seed))
    bar.close()
    return results, skipped


def _operands(store: dict, case: Case, *, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    key = (case.n, case.k, case.pattern)
    if key not in store:
        mask = make_matrix(case.n, case.k, case.pattern, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        store[key] = (torch.randn(case.n, case.k, generator=gen), mask)
    return store[key]


def _measure_one(case: Case, name: str, prep, weight: torch.Tensor, mask: np.ndarray, *, threads: int,
                 cache: str, flush, min_time_s: float, clock: Clock, machine: Machine,
                 versions: Mapping[str, str], seed: int) -> Measurement:
    kern = KERNELS.get(name)
    x = torch.randn(case.m, case.k, generator=torch.Generator().manual_seed(seed + case.m))
    reference = torch.nn.functional.linear(x, weight * torch.from_numpy(mask))
    if not kern.matches(kern.run(prep, x), reference):
        raise MeasurementError(f"kernel {name} gives wrong results on {case}; this is a bug, please report it")
    stats = time_callable(lambda: kern.run(prep, x), min_time_s=min_time_s, before_each=flush, clock=clock)
    return Measurement(kernel=name, m=case.m, n=case.n, k=case.k, pattern=case.pattern,
                       median_s=stats.median_s, iqr_s=stats.iqr_s, threads=threads, repeats=stats.repeats,
                       cache=cache, machine=machine, versions=dict(versions), dtype=kern.value_dtype,
                       min_s=stats.min_s, inner=stats.inner, density=float(mask.mean()) if mask.size else 0.0,
                       storage_bytes=kern.storage_bytes(prep), load_avg_1min=load_average())


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, *, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit="kernel", leave=False)


def to_dict(result: MeasureResult) -> dict:
    """JSON-ready form (DESIGN.md §4: `results` with kernel, m, n, k, pattern, median_s, iqr_s, threads)."""
    rows = []
    for r in result.results:
        row = asdict(r)
        row.pop("machine")
        row.pop("versions")
        rows.append(row)
    return {"device": result.device, "machine": asdict(result.machine), "versions": dict(result.versions),
            "results": rows, "skipped": list(result.skipped)}


CSV_COLUMNS = ("kernel", "m", "n", "k", "pattern", "density", "median_s", "iqr_s", "min_s", "threads",
               "repeats", "inner", "cache", "dtype", "load_avg_1min")


def to_csv(result: MeasureResult) -> str:
    """One line per measurement (CSV_COLUMNS), with a header."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in result.results:
        writer.writerow([getattr(r, c) for c in CSV_COLUMNS])
    return buf.getvalue()
