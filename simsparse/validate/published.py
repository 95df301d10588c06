"""`simsparse validate --device published`: the GPU 2:4 model against every shipped corpus of
published timings (or one user CSV), reported per corpus and per GPU x dtype.

Each row runs on the arch spec of its GPU (`gpu_predict.GPU_ARCHS`) with its sparse back end
(`software.backend`) under the software stack it was measured with (the spec's profile of that
name): torch-level rows under `pytorch-eager` (eager calls, host time included), kernel rows
under `kernel` (the library alone, device time). `software` restricts a run to the rows measured
under one stack. The sparse side is a 2:4 mask on the [n, k] weight, the dense side the dense
baseline of the same layer. A row whose GPU has no shipped spec, whose back end the spec lacks or
whose dtype the model does not support is reported as not evaluated, with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from simsparse.archs import load_arch
from simsparse.errors import SpecError, UnknownNameError
from simsparse.resources import data_dir
from simsparse.validate import stats
from simsparse.validate.corpus import MODEL_DTYPES, PublishedRow, read_corpus
from simsparse.validate.gpu_predict import GPU_ARCHS, GpuPredictor, arch_for_gpu, gpu_key
from simsparse.validate.records import SOFTWARE_STACKS, Corpus, MeasuredPoint, NotEvaluated, ValidationReport

# the shipped corpora (accelerators/measurements/), in report order: name -> (file, role)
CORPORA = {
    "a100_2to4_dev": ("a100_2to4_dev.csv", "dev"),          # torch-level A100 rows (issue 4)
    "gpu_2to4_heldout": ("gpu_2to4_heldout.csv", "held-out"),  # torch-level and kernel rows, never fitted
    "gpu_kernel_dev": ("gpu_kernel_dev.csv", "dev"),        # 480 kernel rows, A100 / H100 PCIe (issue 12)
}
GROUP_BY = ("source", "device", "dtype", "arch")          # one summary per corpus x GPU x dtype


@dataclass(frozen=True)
class LoadedCorpus:
    corpus: Corpus
    rows: tuple[PublishedRow, ...]


def corpus_path(name: str) -> Path:
    if name not in CORPORA:
        raise UnknownNameError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    return data_dir("accelerators") / "measurements" / CORPORA[name][0]


def load(names: Sequence[str] | None = None) -> tuple[LoadedCorpus, ...]:
    """The shipped corpora `names` (default: all), read and checked."""
    out = []
    for name in names or tuple(CORPORA):
        corpus, rows = read_corpus(corpus_path(name), name=name, role=CORPORA[name][1])
        out.append(LoadedCorpus(corpus=corpus, rows=rows))
    return tuple(out)


def load_csv(path: str | Path) -> LoadedCorpus:
    """One user CSV of either schema (`--csv PATH`)."""
    corpus, rows = read_corpus(path, role="user")
    return LoadedCorpus(corpus=corpus, rows=rows)


def _not_evaluated(row: PublishedRow, corpus: Corpus, reason: str) -> NotEvaluated:
    return NotEvaluated(id=row.id, source=corpus.name, device=row.gpu, dtype=row.dtype, reason=reason)


def evaluate_row(row: PublishedRow, corpus: Corpus, *, predictor: GpuPredictor,
                 gpu_archs: Mapping[str, str] | None = None) -> MeasuredPoint | NotEvaluated:
    """The model's prediction beside one row, or why the row cannot be evaluated."""
    arch, reason = arch_for_gpu(row.gpu, gpu_archs)
    if arch is None:
        return _not_evaluated(row, corpus, reason)
    predictor.base_model(arch)                      # a broken spec or override is an error, not a skip
    try:
        model = predictor.model(arch=arch, backend=row.backend, software=row.software)
    except SpecError:
        return _not_evaluated(row, corpus, f"{arch} has no sparse back end {row.backend!r}")
    dtype = MODEL_DTYPES[row.dtype]
    if dtype not in model.supported_dtypes():
        return _not_evaluated(row, corpus, f"{arch} does not model dtype {dtype} "
                                           f"(it models {', '.join(model.supported_dtypes())})")
    pred = predictor.predict(model, name=row.id, m=row.m, n=row.n, k=row.k, dtype=dtype)
    return MeasuredPoint(
        id=row.id, source=corpus.name, device=row.gpu, arch=arch, dtype=row.dtype, kernel=row.backend,
        m=row.m, n=row.n, k=row.k, software=row.software, format=pred.format, shape_set=row.shape_set,
        reference=row.reference, measured_s=row.sparse_s, predicted_s=pred.sparse_s,
        measured_dense_s=row.dense_s, predicted_dense_s=pred.dense_s, measured_speedup=row.speedup,
        predicted_speedup=pred.dense_s / pred.sparse_s)


def evaluate(loaded: LoadedCorpus, *, predictor: GpuPredictor, gpu_archs: Mapping[str, str] | None = None
             ) -> tuple[tuple[MeasuredPoint, ...], tuple[NotEvaluated, ...]]:
    """Every row of one corpus: (evaluated points, rows not evaluated)."""
    results = [evaluate_row(r, loaded.corpus, predictor=predictor, gpu_archs=gpu_archs) for r in loaded.rows]
    return (tuple(r for r in results if isinstance(r, MeasuredPoint)),
            tuple(r for r in results if isinstance(r, NotEvaluated)))


def notes_for(points: Sequence[MeasuredPoint], gpu_archs: Mapping[str, str] | None) -> tuple[str, ...]:
    """What the reader must know about how the rows were predicted."""
    notes = []
    for software in SOFTWARE_STACKS:
        rows = sum(p.software == software for p in points)
        if rows:
            notes.append(f"{rows} rows predicted under the {software} software stack (the stack they were measured with)")
    used = {p.device for p in points}
    for gpu, arch in (gpu_archs or {}).items():
        if gpu not in used:
            continue
        table = GPU_ARCHS.get(gpu, "no spec")
        notes.append(f"GPU {gpu!r} predicted with {arch}, mapped explicitly (the table names {table})")
    return tuple(notes)


def build_report(*, loaded: Sequence[LoadedCorpus], points: Sequence[MeasuredPoint],
                 not_evaluated: Sequence[NotEvaluated], engine: str, notes: Sequence[str] = (),
                 elapsed_s: float = 0.0) -> ValidationReport:
    groups = stats.grouped(points, ("source",), metric="speedup") + stats.grouped(points, GROUP_BY, metric="speedup")
    return ValidationReport(device="published", engine=engine, points=tuple(points),
                            summary=stats.summarize(points, metric="speedup"), groups=groups,
                            not_evaluated=tuple(not_evaluated), corpora=tuple(c.corpus for c in loaded),
                            elapsed_s=elapsed_s, notes=tuple(notes))


def _check_gpu_archs(gpu_archs: Mapping[str, str] | None, loaded: Sequence[LoadedCorpus]) -> None:
    """Every explicit GPU=ARCH names a GPU of the rows and a spec that loads (never ignored silently)."""
    gpus = sorted({gpu_key(r.gpu) for lc in loaded for r in lc.rows})
    for gpu, arch in (gpu_archs or {}).items():
        if gpu_key(gpu) not in gpus:
            raise SpecError(f"--gpu-arch {gpu}={arch}: no row names GPU {gpu!r}; the rows name "
                            f"{', '.join(repr(g) for g in gpus) or 'none'}")
        load_arch(arch)   # UnknownNameError / SpecError naming the spec


def only_software(loaded: Sequence[LoadedCorpus], software: str | None) -> tuple[LoadedCorpus, ...]:
    """The corpora restricted to the rows measured under `software` (all rows for None); a
    corpus left without rows is dropped."""
    if software is None:
        return tuple(loaded)
    if software not in SOFTWARE_STACKS:
        raise SpecError(f"--software {software}: published rows are measured under {', '.join(SOFTWARE_STACKS)}")
    out = []
    for lc in loaded:
        rows = tuple(r for r in lc.rows if r.software == software)
        if rows:
            out.append(LoadedCorpus(corpus=lc.corpus, rows=rows))
    return tuple(out)


def run(*, corpora: Sequence[str] | None = None, csv_path: str | Path | None = None, engine: str = "analytic",
        gpu_archs: Mapping[str, str] | None = None, overrides: Sequence[str] = (),
        software: str | None = None) -> ValidationReport:
    """Every shipped corpus (or `corpora`, or the one CSV `csv_path`) beside the model.
    `gpu_archs` maps GPU names to specs ahead of GPU_ARCHS; `overrides` apply to every spec;
    `software` keeps only the rows measured under that stack."""
    t0 = time.perf_counter()
    loaded = only_software((load_csv(csv_path),) if csv_path is not None else load(corpora), software)
    _check_gpu_archs(gpu_archs, loaded)
    predictor = GpuPredictor(engine=engine, overrides=tuple(overrides))
    points: list[MeasuredPoint] = []
    skipped: list[NotEvaluated] = []
    for lc in loaded:
        pts, nev = evaluate(lc, predictor=predictor, gpu_archs=gpu_archs)
        points += pts
        skipped += nev
    return build_report(loaded=loaded, points=points, not_evaluated=skipped, engine=engine,
                        notes=notes_for(points, gpu_archs), elapsed_s=time.perf_counter() - t0)
