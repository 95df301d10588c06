"""`measure --device cuda`: dense vs 2:4 semi-structured GEMMs on an NVIDIA GPU (fp16).

Kernels: `dense` = F.linear on the masked weight; `nm` = torch's `to_sparse_semi_structured`
(cuSPARSELt / CUTLASS 2:4 sparse tensor cores; the mask must be 2:4 along k). Timed with
torch.utils.benchmark (which synchronises the device); raises MeasurementError where CUDA is
absent. `validate --device cuda` (simsparse/validate/cuda.py) compares these timings with the model.
"""

from __future__ import annotations

from typing import Iterable

import torch

from simsparse.errors import MeasurementError, PatternError
from simsparse.kernels.harness import Measurement, library_versions, machine_info
from simsparse.kernels.suites import Case
from simsparse.masks.patterns import nm_envelope
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
