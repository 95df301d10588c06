"""The records of validation: one measured point, its statistics, one report.

Every source (published CSV rows, CPU kernels measured here, CUDA kernels measured on a GPU)
produces `MeasuredPoint`s; `stats` turns them into `Summary`s; the source returns one
`ValidationReport`. Times are seconds (the published CSVs' microseconds are converted on
reading); every MAPE is a fraction (0.12 = 12 %), rendered as % only in tables.
"""

from __future__ import annotations

from dataclasses import dataclass

# the software stack a measurement timed (the GPU specs' profiles of the same names): eager PyTorch
# calls, or the library alone (device time). CSV `harness` values map to them (HARNESS_SOFTWARE).
SOFTWARE_STACKS = ("pytorch-eager", "kernel")
HARNESS_SOFTWARE = {"pytorch": "pytorch-eager", "pytorch-eager": "pytorch-eager", "kernel": "kernel"}


@dataclass(frozen=True)
class MeasuredPoint:
    """One measured case beside the model's prediction.

    `measured_s` / `predicted_s` time the case's kernel (`kernel`: a CPU kernel, or the sparse
    library back end of a GPU row). Sources that time a sparse kernel beside its dense baseline
    (published rows, CUDA) also fill the `*_dense_s` pair and the speedups (dense / sparse).
    `measured_s` is None where a source publishes only a speedup. `median_s`, `min_s`, `iqr_s`
    and `pass_mins_s` (each timing pass's fastest sample) describe the measurement's own noise
    where it was measured here; so do the load-aware fields of the harness (kernels/harness.py
    `Measurement`), over the passes: `p10_s`/`p90_s` and `noise` (IQR/median) the median pass's,
    `cpu_share` the least CPU time a pass got, `steal_fraction` the most stolen, and `noisy` why
    the point is less precise than asked ("" when at least one pass was clean)."""

    id: str
    source: str                      # corpus name, "cpu" or "cuda"
    device: str                      # the GPU as the row names it, or this machine's key
    arch: str                        # the arch spec that predicted it
    dtype: str
    kernel: str
    m: int
    n: int
    k: int
    pattern: str = "2:4"
    threads: int = 1
    software: str = "kernel"         # one of SOFTWARE_STACKS
    format: str = ""                 # execution format the model chose (GPU)
    shape_set: str = ""              # which published shape set the row belongs to (leave-one-out splits)
    reference: str = ""              # where the measurement was published
    measured_s: float | None = None
    predicted_s: float | None = None
    measured_dense_s: float | None = None
    predicted_dense_s: float | None = None
    measured_speedup: float | None = None
    predicted_speedup: float | None = None
    median_s: float | None = None
    min_s: float | None = None
    iqr_s: float | None = None
    pass_mins_s: tuple[float, ...] = ()
    p10_s: float | None = None
    p90_s: float | None = None
    noise: float | None = None
    cpu_share: float | None = None
    steal_fraction: float | None = None
    noisy: str = ""


@dataclass(frozen=True)
class Noise:
    """How repeatable the measurement itself was: the pass-to-pass spread of each point's fastest
    sample (slowest pass minimum / fastest - 1; median and 90th percentile over points), and the
    mean |error| a perfect model would show against one single pass. Where the harness recorded
    the load (CPU kernels timed here): the median IQR/median of the samples, the least CPU share
    and the most steal any pass saw, and how many points were noisy in every pass."""

    passes: int
    spread_median: float
    spread_p90: float
    single_pass_ape: float
    sample_noise_median: float | None = None
    cpu_share_min: float | None = None
    steal_fraction_max: float | None = None
    noisy_points: int = 0


@dataclass(frozen=True)
class Summary:
    """Statistics of a set of points. `mape` is the headline MAPE of `metric` ("speedup": the
    published sources; "time": kernels timed here); the other MAPEs are None where the points
    carry no such pair. `worst` are the ids of the points with the largest error of `metric`."""

    n: int
    metric: str
    mape: float
    spearman: float
    median_ape: float
    mape_speedup: float | None = None
    mape_time: float | None = None           # every measured time, dense and sparse pooled
    mape_dense_time: float | None = None
    mape_sparse_time: float | None = None
    sign_agreement: float | None = None      # share of points whose sign of (speedup - 1) is right
    sign_errors: int | None = None
    worst: tuple[str, ...] = ()
    noise: Noise | None = None


@dataclass(frozen=True)
class Group:
    """A summary of the points that share the values `key` of the MeasuredPoint fields `by`."""

    by: tuple[str, ...]
    key: tuple[str, ...]
    summary: Summary


@dataclass(frozen=True)
class NotEvaluated:
    """A row that was read but not predicted, and why (never dropped silently)."""

    id: str
    source: str
    device: str
    dtype: str
    reason: str


@dataclass(frozen=True)
class Corpus:
    """One published CSV: its name, file, role (dev: may be fitted on; held-out: never; user:
    a file passed with --csv), schema ("torch" or "kernel") and number of rows read."""

    name: str
    path: str
    role: str
    schema: str
    rows: int


@dataclass(frozen=True)
class Crossover:
    """Where the CPU `condensed` kernel stops beating `dense` (90 % fan-in), measured and predicted
    on the same batches: `first` = the first batch where it is no faster, `final` = the batch from
    which it is no faster at every larger batch (log-interpolated between batches; inf = never)."""

    n: int
    k: int
    threads: int
    predicted_first: float
    measured_first: float
    predicted_final: float
    measured_final: float
    within_2x: bool              # both crossovers within a factor of 2


@dataclass(frozen=True)
class ValidationReport:
    """What `simsparse validate` returns, for every device."""

    device: str                                  # published | cpu | cuda
    engine: str
    points: tuple[MeasuredPoint, ...]
    summary: Summary
    groups: tuple[Group, ...] = ()
    not_evaluated: tuple[NotEvaluated, ...] = ()
    corpora: tuple[Corpus, ...] = ()
    crossovers: tuple[Crossover, ...] = ()
    machine: str = ""
    calibration: str = ""                        # cpu: where the kernel parameters came from
    calibration_points: tuple[MeasuredPoint, ...] = ()
    elapsed_s: float = 0.0
    notes: tuple[str, ...] = ()
