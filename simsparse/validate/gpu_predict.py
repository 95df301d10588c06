"""Predicting measured GPU rows: which spec models which GPU, under which software stack, and
the dense / 2:4 pair of one GEMM.

`GPU_ARCHS` is the one table from a GPU's name (as published rows and
`torch.cuda.get_device_name()` spell it, without the "NVIDIA " prefix) to the arch spec that
models it. A name whose spec is not shipped yet is still listed: its rows are reported as not
evaluated, with the reason, until the spec exists (or the caller maps the GPU to another spec
explicitly with `gpu_archs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from simsparse.archs import ArchModel, load_arch, shipped_arch_names
from simsparse.engines import estimate
from simsparse.masks.closed_form import nm_pattern
from simsparse.masks.patterns import analyze
from simsparse.masks.synthetic import two_four_checkerboard
from simsparse.records import Gemm, LayerWork, Pattern

GPU_ARCHS = {
    "A100": "a100_2to4",                     # the torch-level rows: A100 SXM4 (PyTorch's benchmark tables)
    "A100-80GB": "a100_2to4",
    "A100 (assumed)": "a100_2to4",           # a thread that does not name its GPU; the row says so
    "A100-SXM4-80GB": "a100_2to4",
    "A100 80GB PCIe": "a100_pcie_2to4",
    "H100": "h100_2to4",
    "H100 80GB HBM3": "h100_2to4",           # the SXM5 part as torch names it
    "H100 PCIe": "h100_pcie_2to4",
    "H200": "h200_2to4",
    "B200": "b200_2to4",
    "GeForce RTX 4090": "rtx4090_2to4",
    "GeForce RTX 3090": "rtx3090_2to4",
    "GeForce RTX 2080 Ti": "rtx2080ti",
}


def gpu_key(name: str) -> str:
    """A GPU name without the vendor prefix torch adds ("NVIDIA A100 80GB PCIe" -> "A100 80GB PCIe")."""
    name = name.strip()
    return name[len("NVIDIA "):] if name.startswith("NVIDIA ") else name


def arch_for_gpu(name: str, gpu_archs: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """(arch spec name, "") for a GPU whose spec ships, or (None, the reason it cannot be evaluated).
    `gpu_archs` maps GPU names to specs explicitly, ahead of the table."""
    explicit = {gpu_key(k): v for k, v in (gpu_archs or {}).items()}
    key = gpu_key(name)
    arch = explicit.get(key) or GPU_ARCHS.get(key)
    if arch is None:
        return None, (f"no arch spec is mapped to GPU {name!r} (known: {', '.join(GPU_ARCHS)}; "
                      "map it with --gpu-arch 'GPU=ARCH')")
    if key not in explicit and arch not in shipped_arch_names():
        return None, f"arch spec {arch} for {key} is not shipped yet"
    return arch, ""


@dataclass(frozen=True)
class PairPrediction:
    dense_s: float
    sparse_s: float
    format: str                      # the sparse side's execution format


class GpuPredictor:
    """Predicts the dense and 2:4 times of GEMMs, caching one model per (arch, back end,
    software stack) and one 2:4 pattern per weight shape. `overrides` apply to every spec."""

    def __init__(self, *, engine: str, overrides: tuple[str, ...] = ()) -> None:
        self.engine = engine
        self.overrides = tuple(overrides)
        self._loaded: dict[tuple[str, str], ArchModel] = {}
        self._models: dict[tuple[str, str, str], ArchModel] = {}
        self._patterns: dict[tuple[int, int], tuple[np.ndarray | None, Pattern]] = {}

    def base_model(self, arch: str) -> ArchModel:
        """The spec with the common overrides only (errors here are the caller's, not a row's)."""
        return self._load(arch, "")

    def _load(self, arch: str, backend: str) -> ArchModel:
        if (arch, backend) not in self._loaded:
            backend_set = (f"software.backend={backend}",) if backend else ()
            self._loaded[(arch, backend)] = load_arch(arch, self.overrides + backend_set)
        return self._loaded[(arch, backend)]

    def model(self, *, arch: str, backend: str, software: str) -> ArchModel:
        """The spec for one back end ("" = the spec's own) under one software stack."""
        key = (arch, backend, software)
        if key not in self._models:
            self._models[key] = self._load(arch, backend).with_software(software)
        return self._models[key]

    def _two_four(self, n: int, k: int) -> tuple[np.ndarray | None, Pattern]:
        """The reference 2:4 weight (no all-zero channel, so no shrunk GEMM): its closed-form
        Pattern, or the drawn checkerboard where no closed form exists."""
        if (n, k) not in self._patterns:
            closed = nm_pattern((n, k), n, k, 2, 4)
            if closed is not None:
                self._patterns[(n, k)] = (None, closed)
            else:
                mask = two_four_checkerboard(n, k)
                self._patterns[(n, k)] = (mask, analyze(mask))
        return self._patterns[(n, k)]

    def predict(self, model: ArchModel, *, name: str, m: int, n: int, k: int, dtype: str) -> PairPrediction:
        mask, pattern = self._two_four(n, k)
        work = LayerWork(name=name, kind="gemm", op_kind="linear", gemm=Gemm(m=m, n=n, k=k, dtype=dtype),
                         mask=mask, pattern=pattern, dtype=dtype)
        dense = estimate(model.plan(work, dense=True), model, self.engine)
        sparse = estimate(model.plan(work), model, self.engine)
        return PairPrediction(dense_s=dense.latency_s, sparse_s=sparse.latency_s, format=sparse.format)
