"""Frozen records passed between steps. Units are in the names; no logic beyond derived
properties and `__add__`. Masks are numpy bool arrays (picklable, fast to analyse).

Orientation convention for GEMM work: the sparse operand is the weight seen as an
`[n, k]` matrix — n output features/channels, k the reduction, with Cin innermost for convs
(`weight.permute(0, 2, 3, 1).reshape(Cout, -1)`), which is how N:M hardware groups it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Generic, Mapping, TypeVar

import numpy as np

P = TypeVar("P")  # the payload record of an ExecutionPlan (one class per arch kind)

# ----------------------------------------------------------------------------- masks


@dataclass(frozen=True, eq=False)
class LayerMask:
    """One weight tensor's mask, keyed by the fully-qualified parameter name."""

    fqn: str
    weight_shape: tuple[int, ...]
    mask: np.ndarray  # bool, shape == weight_shape

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.mask))

    @property
    def density(self) -> float:
        return self.nnz / max(1, self.mask.size)


@dataclass(frozen=True, eq=False)
class MaskSet:
    """Per-layer masks plus optional geometry (a `Workload`) and provenance (plain data)."""

    layers: Mapping[str, LayerMask]
    geometry: "Workload | None" = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    weights: Mapping[str, np.ndarray] | None = None

    @property
    def nnz(self) -> int:
        return sum(l.nnz for l in self.layers.values())

    @property
    def size(self) -> int:
        return sum(int(l.mask.size) for l in self.layers.values())

    @property
    def density(self) -> float:
        return self.nnz / max(1, self.size)


# ----------------------------------------------------------------------------- patterns


@dataclass(frozen=True)
class FanIn:
    min: int
    max: int
    constant: bool  # every active (non-removed) row holds the same number of nonzeros


@dataclass(frozen=True)
class Pattern:
    """What a mask really is, measured from it (see masks.patterns.analyze)."""

    shape: tuple[int, ...]
    rows: int                      # n: output rows of the [n, k] matrix
    cols: int                      # k: reduction length (Cin*kh*kw)
    nnz: int
    density: float
    nm_envelope: Mapping[int, int]          # M -> smallest N: every group of M along k has <= N nonzeros
    nm_envelope_out: Mapping[int, int]      # same along the output axis
    fan_in: FanIn
    rows_removed: int              # all-zero output rows (channels)
    cols_removed: int              # all-zero input channels (Cin, across all kh*kw)
    removed_rows: tuple[int, ...] = ()
    removed_cols: tuple[int, ...] = ()
    row_nnz_histogram: Mapping[int, int] = field(default_factory=dict)  # nnz -> number of rows
    block: Mapping[int, float] = field(default_factory=dict)  # b -> density of occupied bxb blocks
    reduction_per_channel: int = 1  # kh*kw: reduction columns per input channel
    zero_cols: int = 0              # all-zero columns of the [n, k] matrix (any column, not whole channels)
    # M -> {nonzeros in a group of M along k: number of such groups} (the last group zero-padded)
    nm_group_histogram: Mapping[int, Mapping[int, int]] = field(default_factory=dict)
    # M -> {largest group count of a row: number of such rows}
    row_group_max_histogram: Mapping[int, Mapping[int, int]] = field(default_factory=dict)
    # "measured" from a mask, or "closed-form" for a synthetic pattern (masks.closed_form: some
    # fields are then expected values, rounded)
    source: str = "measured"

    def is_nm(self, n: int, m: int) -> bool:
        """Every group of m along the reduction holds at most n nonzeros."""
        env = self.nm_envelope.get(m)
        return env is not None and env <= n

    def nm_violation_share(self, n: int, m: int) -> float:
        """Fraction of the groups of m along the reduction that hold more than n nonzeros."""
        hist = self.nm_group_histogram[m]
        return sum(c for v, c in hist.items() if v > n) / max(1, sum(hist.values()))


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Op:
    """One operation of a network, per sample (batch excluded), dtype-independent.

    kind: conv | linear | matmul | softmax | norm | elementwise | pool | embedding.
    For conv/linear `name` is the weight's fully-qualified parameter name; `weight_shape`
    is the torch weight shape. For matmul (attention), `gemm_mnk` is the per-sample GEMM
    and `count` how many of them (heads). Non-GEMM ops carry element counts.
    """

    name: str
    kind: str
    input_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()
    weight_shape: tuple[int, ...] | None = None
    stride: tuple[int, ...] = (1, 1)
    padding: tuple[int, ...] = (0, 0)
    dilation: tuple[int, ...] = (1, 1)
    groups: int = 1
    gemm_mnk: tuple[int, int, int] | None = None
    count: int = 1
    tokens: int = 1                 # rows per sample for linear (tokens); 1 for MLP/classifier
    elements_in: int = 0            # non-GEMM: elements read per sample (all inputs)
    elements_out: int = 0           # non-GEMM: elements written per sample
    sparsifiable: bool = True       # conv/linear that a DST recipe may mask
    inputs: tuple[str, ...] = ()    # names of the ops whose outputs this op reads ("input" = network input)


@dataclass(frozen=True)
class Workload:
    """Layer geometry of a network (a catalog entry, a traced model, or a checkpoint's)."""

    name: str
    input_shape: tuple[int, ...]
    ops: tuple[Op, ...]
    source: str = ""
    phase: str = ""                 # language models: "prefill" or "decode" ("" for other workloads)
    tokens: int = 0                 # tokens a forward pass processes per sample (prefill: seq, decode: 1)
    context: int = 0                # decode: KV-cache length the step attends to (plus itself)

    def op(self, name: str) -> Op:
        for o in self.ops:
            if o.name == name:
                return o
        raise KeyError(name)

    @property
    def gemm_ops(self) -> tuple[Op, ...]:
        return tuple(o for o in self.ops if o.kind in ("conv", "linear", "matmul"))


@dataclass(frozen=True)
class Gemm:
    """C[m, n] = A[m, k] · W[n, k]^T, `count` times (batched). dtype: fp16|bf16|tf32|fp32|int8."""

    m: int
    n: int
    k: int
    dtype: str = "fp16"
    count: int = 1

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.count

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True)
class MaskRecipe:
    """How to draw a synthetic mask when one must exist: a pattern string and its seed."""

    pattern: str
    seed: int


@dataclass(frozen=True, eq=False)
class LayerShrink:
    """How a layer of a shrunk network relates to the layer it came from (`graph.shrink_works`)."""

    original: "LayerWork"            # the layer before shrinking, without its mask: its dense baseline
    shape_before: tuple[int, ...]    # weight shape of a conv/linear, else the per-sample output shape
    shape_after: tuple[int, ...]
    groups: tuple[str, ...] = ()     # coupling groups / attention blocks whose removal changed it
    notes: tuple[str, ...] = ()      # what was removed, and what was kept and why

    @property
    def changed(self) -> bool:
        return self.shape_before != self.shape_after


@dataclass(frozen=True, eq=False)
class LayerWork:
    """What an architecture model is asked to run for one layer.

    kind "gemm": `gemm` with an optional `mask` ([rows, k] bool, GEMM orientation) and its
    `pattern`, measured from it (both None = dense). A synthetic layer may carry only its
    closed-form `pattern` (mask None) and the `recipe` to draw the mask where something needs the
    values (`graph.synthetic.materialise`). Arch models decide from `pattern` alone; the mask is
    there for what needs the values themselves (kernels, DST). kind "memory": a non-GEMM op moving
    `bytes_moved` and writing `elements`. Build GEMM works with `graph.lower.gemm_work`. A layer
    of a shrunk network (`graph.shrink_works`) carries `shrink`: its original layer (whose dense
    cost is the report's baseline), shapes before and after, and notes; arch models ignore it.
    """

    name: str
    kind: str
    op_kind: str
    gemm: Gemm | None = None
    mask: np.ndarray | None = None
    pattern: Pattern | None = None
    bytes_moved: int = 0
    elements: int = 0
    dtype: str = "fp16"
    recipe: MaskRecipe | None = None
    shrink: LayerShrink | None = None

    def __post_init__(self) -> None:
        if self.mask is not None and self.pattern is None:
            raise ValueError(f"layer {self.name}: a mask needs its Pattern (masks.patterns.analyze); "
                             "build the work with graph.lower.gemm_work")

    @property
    def nnz(self) -> int:
        """Nonzeros of the layer's mask (a dense layer: of one GEMM); see `nnz_per_gemm`."""
        if self.gemm is None:
            return 0
        if self.pattern is None:
            return self.gemm.n * self.gemm.k
        return int(self.pattern.nnz)

    @property
    def nnz_per_gemm(self) -> float:
        """Nonzeros of one of the `gemm.count` GEMMs: a grouped conv's mask stacks its groups' rows
        (pattern.rows = count·n), so its nonzeros are shared among the groups; a batched matmul's
        mask (rows = n) is the same for every GEMM."""
        if self.gemm is None:
            return 0.0
        g = self.gemm
        if self.pattern is None:
            return float(g.n * g.k)
        stacked = g.count > 1 and self.pattern.rows == g.n * g.count
        return self.pattern.nnz / g.count if stacked else float(self.pattern.nnz)


# ----------------------------------------------------------------------------- plans and estimates


@dataclass(frozen=True)
class ExecutionPlan(Generic[P]):
    """What the hardware does for one layer, with no timing.

    The fields every kind shares (the work: MACs, bytes per memory level, the format it runs in)
    plus `payload`, the kind's own frozen plan record (`archs.gpu.GpuPlan`,
    `archs.nm_systolic.SystolicPlan`, `archs.cpu_cost.CpuPlan`), the typed data its engines read.
    format: "2:4" | "N:M" strings | "dense" | "shrunk" | "condensed" | "csr" | "memory" ...
    """

    layer: str
    arch: str
    kind: str                              # arch kind: picks the engine implementation
    format: str
    gemm: Gemm | None
    padded: Gemm | None
    macs_dense: int
    macs_effective: int
    macs_issued: int
    bytes_by_level: Mapping[str, float]
    metadata_bytes: float
    payload: P
    notes: tuple[str, ...] = ()
    # where the kind ranked several formats: {format: closed-form latency_s} of each candidate
    alternatives: Mapping[str, float] = field(default_factory=dict)

    @property
    def density(self) -> float:
        """Share of the layer's weights the mask keeps (1.0 for a dense layer or a non-GEMM op)."""
        return self.macs_effective / self.macs_dense if self.macs_dense else 1.0


@dataclass(frozen=True)
class ErrorBand:
    """The expected error of an estimate, from validation residuals (measured / predicted - 1) of
    the rows of its regime: `latency_*` for its time, `speedup_*` for a sparse layer's speedup
    over dense (None where it has none), each the 10th and 90th percentile. `basis` says which
    rows; `prior` marks a band borrowed from another GPU, dtype or regime (no rows of its own)."""

    latency_low: float
    latency_high: float
    speedup_low: float | None
    speedup_high: float | None
    basis: str
    prior: bool

    @staticmethod
    def combine(a: "ErrorBand | None", wa: float, b: "ErrorBand | None", wb: float) -> "ErrorBand | None":
        """The band of a sum of two estimates weighted by their latencies (errors taken as
        correlated: the bounds average, they do not shrink); None if either has none."""
        if a is None or b is None:
            return None
        w = wa + wb

        def mix(x: float | None, y: float | None) -> float | None:
            if x is None or y is None:
                return x if y is None else y
            return (x * wa + y * wb) / w if w > 0 else x

        return ErrorBand(latency_low=mix(a.latency_low, b.latency_low), latency_high=mix(a.latency_high, b.latency_high),
                         speedup_low=mix(a.speedup_low, b.speedup_low), speedup_high=mix(a.speedup_high, b.speedup_high),
                         basis=a.basis if a.basis == b.basis else "latency-weighted over layers of several regimes",
                         prior=a.prior or b.prior)


@dataclass(frozen=True)
class Estimate:
    """Timing of one layer (or a sum of layers). Energy is 0 where the arch has no energy model.
    `software` names the software stack the timing assumes ("" for kinds without named stacks);
    `error_band` is its expected error where the kind has validation residuals (GPU)."""

    layer: str
    arch: str
    engine: str
    format: str
    flops_dense: float
    flops_effective: float
    flops_executed: float
    bytes_by_level: Mapping[str, float]
    cycles: float
    latency_s: float
    bound: str                             # compute | memory | overhead | latency | mixed
    notes: tuple[str, ...] = ()
    energy_j: float = 0.0
    m: int = 0
    n: int = 0
    k: int = 0
    density: float = 1.0
    alternatives: Mapping[str, float] = field(default_factory=dict)   # {format: latency_s} the plan ranked
    software: str = ""
    error_band: ErrorBand | None = None

    def __add__(self, other: "Estimate") -> "Estimate":
        levels = dict(self.bytes_by_level)
        for lvl, b in other.bytes_by_level.items():
            levels[lvl] = levels.get(lvl, 0.0) + b
        macs_total = self.flops_dense + other.flops_dense
        dens = ((self.density * self.flops_dense + other.density * other.flops_dense) / macs_total
                if macs_total else 1.0)
        return Estimate(
            layer="total",
            arch=self.arch,
            engine=self.engine,
            format="mixed" if self.format != other.format else self.format,
            flops_dense=self.flops_dense + other.flops_dense,
            flops_effective=self.flops_effective + other.flops_effective,
            flops_executed=self.flops_executed + other.flops_executed,
            bytes_by_level=levels,
            cycles=self.cycles + other.cycles,
            latency_s=self.latency_s + other.latency_s,
            bound="mixed" if self.bound != other.bound else self.bound,
            notes=(),
            energy_j=self.energy_j + other.energy_j,
            density=dens,
            software=self.software if self.software == other.software else "mixed",
            error_band=ErrorBand.combine(self.error_band, self.latency_s, other.error_band, other.latency_s),
        )


def sum_estimates(estimates: list[Estimate] | tuple[Estimate, ...]) -> Estimate:
    """Sum of layer estimates (an empty list is an error upstream)."""
    total = estimates[0]
    for e in estimates[1:]:
        total = total + e
    return replace(total, layer="total", notes=())


@dataclass(frozen=True)
class Report:
    """Per-layer estimates and their total, beside the dense baseline on the same arch."""

    arch: str
    engine: str
    dtype: str
    estimates: tuple[Estimate, ...]
    total: Estimate
    dense_estimates: tuple[Estimate, ...]
    dense_total: Estimate
    provenance: Mapping[str, Any] = field(default_factory=dict)
    software: str = ""                     # the software stack of every estimate ("" without named stacks)

    @property
    def speedup_vs_dense(self) -> float:
        return self.dense_total.latency_s / self.total.latency_s if self.total.latency_s > 0 else float("inf")


def record_to_dict(obj: Any) -> dict:
    """Shallow plain-data view of a frozen record (for JSON rendering)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}
