"""The records of a report (what report.md shows), frozen and picklable: the networks (trained
checkpoints or synthetic what-ifs), one `Row` per (network, arch, batch), the focus network's
layers, a GPU roofline, kernels measured beside the CPU model, and how each arch's numbers were
obtained. `report_data` builds them from api results; `report_md` renders them; `plots` draws
them. A figure a record does not carry is None (rendered "n/a", energy "not modelled").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from simsparse.records import ErrorBand


@dataclass(frozen=True)
class Structure:
    """What training produced, measured from the masks (masks.patterns.analyze)."""

    layers: int
    sparse_layers: int
    nm_layers: Mapping[str, int]       # "N:M" (the tightest along the reduction, M in 4/8/16) -> layers
    nm_2to4_layers: int                # sparse layers that fit 2:4
    constant_fan_in_layers: int        # sparse layers whose active rows hold the same count
    rows_removed: int                  # all-zero output channels / neurons
    cols_removed: int                  # all-zero input channels

    def text(self) -> str:
        if not self.sparse_layers:
            return "dense"
        parts = []
        if self.nm_2to4_layers:   # what 2:4 hardware can use; the tightest N:M per layer is in nm_layers
            parts.append(f"2:4 on {self.nm_2to4_layers}/{self.sparse_layers}")
        if self.constant_fan_in_layers:
            parts.append(f"const fan-in {self.constant_fan_in_layers}/{self.sparse_layers}")
        if self.rows_removed or self.cols_removed:
            parts.append(f"{self.rows_removed} ch out / {self.cols_removed} in removed")
        return "; ".join(parts) or "unstructured"


@dataclass(frozen=True)
class Network:
    """One mask source: a trained checkpoint, or a shipped workload with a synthetic pattern."""

    label: str
    workload: str
    synthetic: bool
    source: str                       # the checkpoint path, or "synthetic PATTERN on WORKLOAD"
    pattern: str | None = None        # synthetic: the pattern string
    method: str | None = None
    accuracy: float | None = None     # test accuracy from the checkpoint's meta
    steps: int | None = None
    density: float | None = None
    structure: Structure | None = None
    dense_layers: int = 0             # layers the recipe kept dense


@dataclass(frozen=True)
class Row:
    """One network on one arch at one batch, beside the dense baseline on the same arch."""

    label: str
    workload: str
    synthetic: bool
    arch: str
    kind: str
    batch: int
    engine: str
    dtype: str
    software: str | None
    accuracy: float | None
    density: float
    structure: str
    flops_dense: float
    flops_executed: float
    offchip_bytes: float | None
    latency_s: float
    dense_latency_s: float
    speedup: float
    energy_j: float | None            # None: the arch has no energy model
    dense_energy_j: float | None
    formats: str
    overhead_share: float             # share of the latency spent in overhead-bound layers (launch, host)
    error_band: ErrorBand | None      # the total's expected error (GPU archs), from validation residuals


@dataclass(frozen=True)
class LayerRow:
    """One GEMM layer of the focus network on one arch (per-layer bars and table)."""

    arch: str
    layer: str
    gemm: str
    format: str
    density: float
    latency_s: float
    dense_latency_s: float
    bound: str
    alternatives: Mapping[str, float] | None  # format -> seconds of the formats the arch ranked, or None
    shrunk: str | None                       # "256x64 -> 171x64" where the network was shrunk, else None
    notes: tuple[str, ...] = ()              # what the arch model says about this layer (its choice, padding...)


@dataclass(frozen=True)
class RooflinePoint:
    layer: str
    format: str
    dense: bool                       # the dense baseline's layer (True) or the masked one
    intensity_flop_per_byte: float
    achieved_flops_per_s: float


@dataclass(frozen=True)
class Roofline:
    """The focus network's layers on a GPU's roofline: peaks and bandwidth from the spec."""

    arch: str
    label: str
    batch: int
    dtype: str
    peak_flops_per_s: float
    sparse_peak_flops_per_s: float | None
    bandwidth_bytes_per_s: float
    spec_source: str
    points: tuple[RooflinePoint, ...]
    memory_level: str = "HBM"         # the level whose bytes and bandwidth the roof uses (L2 under a warm-L2 stack)


@dataclass(frozen=True)
class MeasuredRow:
    """A kernel timed on this CPU beside the CPU model's estimate of the same GEMM and kernel."""

    network: str
    layer: str
    kernel: str
    m: int
    n: int
    k: int
    pattern: str
    measured_s: float
    iqr_s: float
    modelled_s: float
    threads: int
    load_avg_1min: float
    noise: float = 0.0               # IQR / median of the timing's samples
    noisy: str = ""                  # why the timing is less precise than asked ("" when it is not; --allow-noisy)

    @property
    def error(self) -> float:
        """Signed relative error of the model (modelled / measured - 1)."""
        return self.modelled_s / self.measured_s - 1.0


@dataclass(frozen=True)
class ArchInfo:
    """How an arch's numbers were obtained: its spec file, engine, software, calibration."""

    name: str
    kind: str
    source: str
    description: str
    engine: str
    software: str | None
    calibration: str | None           # CPU: the calibration file, "" = documented defaults; None: n/a
    residual_policy: str | None


@dataclass(frozen=True)
class ReportData:
    title: str
    batches: tuple[int, ...]
    networks: tuple[Network, ...]
    rows: tuple[Row, ...]
    archs: tuple[ArchInfo, ...]
    focus: str | None = None
    focus_batch: int | None = None
    layers: tuple[LayerRow, ...] = ()
    roofline: Roofline | None = None
    measured: tuple[MeasuredRow, ...] = ()
    measure_note: str = ""
    validation: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def trained_rows(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if not r.synthetic)

    def what_if_rows(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.synthetic)
