"""`measure --device cuda`: dense vs 2:4 semi-structured GEMMs on an NVIDIA GPU (fp16).

Kernels: `dense` = F.linear on the masked weight; `nm` = torch's `to_sparse_semi_structured`
(cuSPARSELt / CUTLASS 2:4 sparse tensor cores; the mask must be 2:4 along k). Timed with
torch.utils.benchmark (which synchronises the device). `validate()` compares these timings with
the analytic model of the matching arch spec. Both raise MeasurementError where CUDA is absent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable, Mapping

import numpy as np
import torch

from simsparse.archs import load_arch
from simsparse.engines import estimate
from simsparse.errors import MeasurementError, PatternError
from simsparse.graph.synthetic import synthetic_gemm_work
from simsparse.kernels.harness import Measurement, library_versions, machine_info
from simsparse.masks.patterns import nm_envelope
from simsparse.kernels.suites import Case
from simsparse.masks.synthetic import make_matrix

CUDA_KERNELS = ("dense", "nm")


def require_cuda() -> torch.device:
    if not torch.cuda.is_available():
        raise MeasurementError("CUDA is not available here; use --device cpu, or run on a machine with an "
                               "NVIDIA GPU and a CUDA build of torch")
    return torch.device("cuda")


def _prepare(name: str, weight: torch.Tensor, mask) -> torch.Tensor:
    if name == "dense":
        return weight
    if name != "nm":
        raise MeasurementError(f"kernel {name!r} has no CUDA version; use one of: {', '.join(CUDA_KERNELS)}")
    if nm_envelope(mask, 4) > 2:
        raise PatternError("the CUDA nm kernel needs a 2:4 mask along k; use --pattern 2:4")
    from torch.sparse import to_sparse_semi_structured

    return to_sparse_semi_structured(weight)


def measure_cuda_cases(cases: Iterable[Case], *, min_time_s: float, progress: bool = False,
                       seed: int = 0) -> list[Measurement]:
    """fp16 timings of each (case, kernel) on the current CUDA device."""
    from torch.utils import benchmark

    device = require_cuda()
    machine = machine_info()
    versions = dict(library_versions(), cuda=str(torch.version.cuda),
                    gpu=torch.cuda.get_device_name(device))
    out = []
    for case in cases:
        mask = make_matrix(case.n, case.k, case.pattern, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        dense = (torch.randn(case.n, case.k, generator=gen) * torch.from_numpy(mask)).half().to(device)
        x = torch.randn(case.m, case.k, generator=gen).half().to(device)
        for name in case.kernels:
            w = _prepare(name, dense, mask)
            timer = benchmark.Timer(stmt="torch.nn.functional.linear(x, w)", globals={"x": x, "w": w, "torch": torch})
            stats = timer.blocked_autorange(min_run_time=min_time_s)
            out.append(Measurement(kernel=name, m=case.m, n=case.n, k=case.k, pattern=case.pattern,
                                   median_s=float(stats.median), iqr_s=float(stats.iqr), threads=1,
                                   repeats=len(stats.times), cache="warm", machine=machine,
                                   versions=versions, dtype="fp16", min_s=float(min(stats.times)),
                                   inner=int(stats.number_per_run), density=float(mask.mean())))
    return out


# ----------------------------------------------------------------------------- validate --device cuda

VALIDATION_GEMMS = ((16, 4096, 4096), (512, 4096, 4096), (2048, 4096, 4096), (8192, 4096, 4096),
                    (2048, 8192, 8192), (8192, 8192, 8192))


@dataclass(frozen=True)
class CudaPoint:
    m: int
    n: int
    k: int
    kernel: str
    predicted_s: float
    measured_s: float


@dataclass(frozen=True)
class CudaValidation:
    arch: str
    gpu: str
    points: tuple[CudaPoint, ...]
    summary: Mapping[str, float]

    def to_dict(self) -> dict:
        return {"arch": self.arch, "gpu": self.gpu, "points": [asdict(p) for p in self.points],
                "summary": dict(self.summary)}


def arch_for_gpu(name: str) -> str:
    """The shipped arch spec that models this GPU (A100 -> a100_2to4, H100/H200 -> h100_2to4)."""
    low = name.lower()
    if "a100" in low:
        return "a100_2to4"
    if "h100" in low or "h200" in low or "gh200" in low:
        return "h100_2to4"
    raise MeasurementError(f"no shipped arch spec models GPU {name!r}; validate on an A100 or H100/H200")


def validate(*, progress: bool = False, min_time_s: float = 0.2) -> CudaValidation:
    """Measured fp16 dense and 2:4 GEMMs on this GPU against the analytic model of its arch."""
    from scipy.stats import spearmanr

    device = require_cuda()
    gpu = torch.cuda.get_device_name(device)
    arch = arch_for_gpu(gpu)
    model = load_arch(arch)
    cases = [Case(m=m, n=n, k=k, pattern="2:4", kernels=CUDA_KERNELS) for (m, n, k) in VALIDATION_GEMMS]
    measured = measure_cuda_cases(cases, min_time_s=min_time_s, progress=progress)
    points = []
    for meas in measured:
        work = synthetic_gemm_work(m=meas.m, n=meas.n, k=meas.k, pattern="2:4", dtype="fp16")
        predicted = estimate(model.plan(work, dense=meas.kernel == "dense"), model, "analytic").latency_s
        points.append(CudaPoint(m=meas.m, n=meas.n, k=meas.k, kernel=meas.kernel,
                                predicted_s=float(predicted), measured_s=meas.median_s))
    pred = np.array([p.predicted_s for p in points])
    meas_s = np.array([p.measured_s for p in points])
    summary = {"mape": float(np.mean(np.abs(pred - meas_s) / meas_s)), "n": len(points),
               "spearman": float(spearmanr(pred, meas_s).statistic) if len(points) > 1 else float("nan")}
    return CudaValidation(arch=arch, gpu=gpu, points=tuple(points), summary=summary)
