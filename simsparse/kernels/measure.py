"""`simsparse measure`: time real kernels on synthetic masks, single GEMMs or named suites.

    run(device="cpu", gemm=(1, 3072, 768), pattern="fanin=77", suite=None, kernel=None,
        threads=None, cache="warm") -> MeasureResult

Every kernel's output is checked against the dense reference before it is timed. The kernels of
a case are timed interleaved, with the CPU time the process got and the steal time recorded beside
the samples (kernels/contention.py); `run` waits for or refuses a machine too busy to time on.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable, Iterable, Mapping

import numpy as np
import torch
from tqdm import tqdm

from simsparse.errors import MeasurementError, PatternError, SimSparseError
from simsparse.kernels import KERNELS
from simsparse.kernels.cuda import cuda_kernels_for, measure_cuda_cases, require_cuda
from simsparse.kernels.contention import (DEFAULT_MAX_NOISE, DEFAULT_MAX_WAIT_S, SYSTEM, Probe, contention_between,
                                          problem, wait_note)
from simsparse.kernels.harness import (CACHE_MODES, Clock, Machine, Measurement, flush_bytes_for,
                                       library_versions, machine_info, make_flusher, thread_count,
                                       time_interleaved)
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
    notes: tuple[str, ...] = ()       # waits for a busy machine, timings reported despite noise

    def to_dict(self) -> dict:
        return to_dict(self)

    def to_csv(self) -> str:
        return to_csv(self)


def run(*, device: str, gemm: tuple[int, int, int] | None, pattern: str | None, suite: str | None,
        kernel: str | None, threads: int | None, cache: str = "warm",
        min_time_s: float = DEFAULT_MIN_TIME_S, progress: bool = False, max_noise: float | None = None,
        allow_noisy: bool = False, max_wait_s: float | None = None, probe: Probe = SYSTEM) -> MeasureResult:
    """Measure one GEMM (`gemm`=(m, n, k) + `pattern`) or a named `suite` on `device`.

    CPU timings are load-aware: on a busy machine `run` first waits (at most `max_wait_s`) for the
    CPUs it needs, and a timing whose process got too little CPU time, or whose samples spread more
    than `max_noise` (IQR/median), is refused with one line (MeasurementError) unless
    `allow_noisy`, when it is reported with its `noisy` reason and a note. None: the defaults
    (DEFAULT_MAX_NOISE, DEFAULT_MAX_WAIT_S)."""
    max_noise = DEFAULT_MAX_NOISE if max_noise is None else max_noise
    max_wait_s = DEFAULT_MAX_WAIT_S if max_wait_s is None else max_wait_s
    if device not in DEVICES:
        raise MeasurementError(f"unknown device {device!r}; use one of: {', '.join(DEVICES)}")
    if cache not in CACHE_MODES:
        raise MeasurementError(f"unknown cache mode {cache!r}; use one of: {', '.join(CACHE_MODES)}")
    cases = _cases(gemm=gemm, pattern=pattern, suite=suite, kernel=kernel)
    if device == "cuda":
        require_cuda()                 # before drawing masks: say so at once where CUDA is absent
        if kernel is None:             # every CUDA kernel the pattern suits (nm only on 2:4 masks)
            cases = tuple(replace(c, kernels=cuda_kernels_for(make_matrix(c.n, c.k, c.pattern))) for c in cases)
        results = measure_cuda_cases(cases, min_time_s=min_time_s, progress=progress)
        return MeasureResult(device="cuda", results=tuple(results), machine=machine_info(),
                             versions=library_versions())
    machine = machine_info()
    waits: list[str] = []

    def wait() -> None:  # once, right before the first timing (after every kernel accepted its pattern)
        waits.extend(wait_note(threads or machine.usable_cpus, machine.usable_cpus, max_wait_s=max_wait_s,
                               probe=probe, say=progress))

    results, skipped = measure_cases(cases, threads=threads, cache=cache, min_time_s=min_time_s,
                                     progress=progress, skip_unsuited=kernel is None, max_noise=max_noise,
                                     probe=probe, before_first_timing=wait)
    notes = tuple(waits)
    noisy = [r for r in results if r.noisy]
    if noisy and not allow_noisy:
        r = noisy[0]
        raise MeasurementError(f"the machine is too busy to time {r.kernel} on {r.m}x{r.n}x{r.k} precisely: {r.noisy} "
                               f"(load {r.load_avg_1min:.1f} on {machine.usable_cpus} CPUs); rerun when it is quieter, "
                               "with --threads 1, or pass --allow-noisy to report the noise band")
    if noisy:
        notes += (f"{len(noisy)} of {len(results)} timings are noisy (see `noisy`): trust min_s..p90_s, "
                  "not median_s alone",)
    return MeasureResult(device="cpu", results=tuple(results), machine=machine, versions=library_versions(),
                         skipped=tuple(skipped), notes=notes)


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
                  store: dict | None = None, max_noise: float = DEFAULT_MAX_NOISE,
                  probe: Probe = SYSTEM, before_first_timing: Callable[[], None] | None = None,
                  ) -> tuple[list[Measurement], list[str]]:
    """Time every (case, kernel) on the CPU, the kernels of a case interleaved. Masks, weights and
    kernel storage are built once per (n, k, pattern) (and kept in `store` across calls when one is
    given). Kernels that reject a pattern raise, or are listed in the second return value when
    `skip_unsuited`. Every measurement records the contention it ran under and, in `noisy`, why
    it is less precise than `max_noise` asks."""
    cases = tuple(cases)
    machine, versions = machine_info(), library_versions()
    flush = make_flusher(flush_bytes_for(machine)) if cache == "cold" else None
    store = {} if store is None else store
    results: list[Measurement] = []
    skipped: list[str] = []
    bar = _progress_bar(sum(len(c.kernels) for c in cases), enabled=progress)
    with thread_count(threads) as used_threads:
        for case in cases:
            weight, mask = _operands(store.setdefault("operands", {}), case, seed=seed)
            ready = _prepared(store.setdefault("prepared", {}), case, weight, mask, skipped=skipped,
                              skip_unsuited=skip_unsuited)
            bar.update(len(case.kernels))
            if ready and before_first_timing is not None:
                before_first_timing()
                before_first_timing = None
            if ready:
                results += _measure_case(case, ready, weight, mask, threads=used_threads, cache=cache, flush=flush,
                                         min_time_s=min_time_s, clock=clock, machine=machine, versions=versions,
                                         seed=seed, max_noise=max_noise, probe=probe)
    bar.close()
    return results, skipped


def _prepared(prepared: dict, case: Case, weight: torch.Tensor, mask: np.ndarray, *, skipped: list[str],
              skip_unsuited: bool) -> dict[str, object]:
    ready = {}
    for name in case.kernels:
        key = (case.n, case.k, case.pattern, name)
        try:
            if key not in prepared:
                prepared[key] = KERNELS.get(name).prepare(weight, mask)
        except PatternError as err:
            if not skip_unsuited:
                raise
            skipped.append(f"{name} on {case.pattern} ({case.n}x{case.k}): {err}")
            continue
        ready[name] = prepared[key]
    return ready


def _operands(store: dict, case: Case, *, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    key = (case.n, case.k, case.pattern)
    if key not in store:
        mask = make_matrix(case.n, case.k, case.pattern, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        store[key] = (torch.randn(case.n, case.k, generator=gen), mask)
    return store[key]


def _measure_case(case: Case, ready: Mapping[str, object], weight: torch.Tensor, mask: np.ndarray, *,
                  threads: int, cache: str, flush, min_time_s: float, clock: Clock, machine: Machine,
                  versions: Mapping[str, str], seed: int, max_noise: float, probe: Probe) -> list[Measurement]:
    x = torch.randn(case.m, case.k, generator=torch.Generator().manual_seed(seed + case.m))
    reference = torch.nn.functional.linear(x, weight * torch.from_numpy(mask))
    calls = {}
    for name, prep in ready.items():
        kern = KERNELS.get(name)
        if not kern.matches(kern.run(prep, x), reference):
            raise MeasurementError(f"kernel {name} gives wrong results on {case}; this is a bug, please report it")
        calls[name] = (lambda k, p: lambda: k.run(p, x))(kern, prep)
    start = probe.now()
    stats = time_interleaved(calls, min_time_s=min_time_s, before_each=flush, clock=clock)
    load = contention_between(start, probe.now(), threads=threads, probe=probe)
    density = float(mask.mean()) if mask.size else 0.0
    out = []
    for name, st in stats.items():
        kern = KERNELS.get(name)
        out.append(Measurement(kernel=name, m=case.m, n=case.n, k=case.k, pattern=case.pattern,
                               median_s=st.median_s, iqr_s=st.iqr_s, threads=threads, repeats=st.repeats,
                               cache=cache, machine=machine, versions=dict(versions), dtype=kern.value_dtype,
                               min_s=st.min_s, inner=st.inner, density=density,
                               storage_bytes=kern.storage_bytes(ready[name]), load_avg_1min=load.load_avg_1min,
                               p10_s=st.p10_s, p90_s=st.p90_s, noise=st.noise, cpu_share=load.cpu_share,
                               steal_fraction=load.steal_fraction,
                               noisy=problem(noise=st.noise, contention=load, max_noise=max_noise)))
    return out


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, *, enabled: bool):
    if not enabled:
        return _NoBar()
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
            "results": rows, "skipped": list(result.skipped), "notes": list(result.notes)}


CSV_COLUMNS = ("kernel", "m", "n", "k", "pattern", "density", "median_s", "iqr_s", "min_s", "threads",
               "repeats", "inner", "cache", "dtype", "load_avg_1min", "p10_s", "p90_s", "noise", "cpu_share",
               "steal_fraction", "noisy")


def to_csv(result: MeasureResult) -> str:
    """One line per measurement (CSV_COLUMNS), with a header."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in result.results:
        writer.writerow([getattr(r, c) for c in CSV_COLUMNS])
    return buf.getvalue()
