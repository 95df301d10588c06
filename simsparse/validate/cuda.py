"""`simsparse validate --device cuda`: dense and 2:4 fp16 GEMMs timed on this GPU (the
measuring lives in kernels/cuda.py) beside the analytic model of the GPU's arch spec.

The kernels are `F.linear` on a dense weight and on `to_sparse_semi_structured` (PyTorch eager
calls, timed by torch.utils.benchmark), so the spec runs under its `pytorch-eager` software stack
with its default sparse back end. The GPU is mapped to its spec by gpu_predict.GPU_ARCHS (or
explicitly with `gpu_archs`); a GPU without a shipped spec is refused with the reason.
"""

from __future__ import annotations

import time
from typing import Mapping

import torch

from simsparse.errors import MeasurementError
from simsparse.kernels.cuda import CUDA_KERNELS, measure_cuda_cases, require_cuda
from simsparse.kernels.suites import Case
from simsparse.validate import stats
from simsparse.validate.gpu_predict import GpuPredictor, arch_for_gpu
from simsparse.validate.records import MeasuredPoint, ValidationReport

VALIDATION_GEMMS = ((16, 4096, 4096), (512, 4096, 4096), (2048, 4096, 4096), (8192, 4096, 4096),
                    (2048, 8192, 8192), (8192, 8192, 8192))
DTYPE = "fp16"                       # what measure_cuda_cases times


def run(*, progress: bool = False, min_time_s: float = 0.2, engine: str = "analytic",
        gpu_archs: Mapping[str, str] | None = None) -> ValidationReport:
    """Measured dense and 2:4 GEMMs on this GPU against the model of its arch."""
    t0 = time.perf_counter()
    gpu = torch.cuda.get_device_name(require_cuda())
    arch, reason = arch_for_gpu(gpu, gpu_archs)
    if arch is None:
        raise MeasurementError(f"cannot validate on {gpu}: {reason}")
    cases = [Case(m=m, n=n, k=k, pattern="2:4", kernels=CUDA_KERNELS) for (m, n, k) in VALIDATION_GEMMS]
    timed = {(r.m, r.n, r.k, r.kernel): r for r in measure_cuda_cases(cases, min_time_s=min_time_s,
                                                                       progress=progress)}
    predictor = GpuPredictor(engine=engine)
    model = predictor.model(arch=arch, backend="", software="pytorch-eager")
    points = []
    for m, n, k in VALIDATION_GEMMS:
        dense, sparse = timed[(m, n, k, "dense")], timed[(m, n, k, "nm")]
        pred = predictor.predict(model, name=f"{m}x{n}x{k}", m=m, n=n, k=k, dtype=DTYPE)
        points.append(MeasuredPoint(
            id=f"{m}x{n}x{k}", source="cuda", device=gpu, arch=arch, dtype=DTYPE, kernel="nm", m=m, n=n, k=k,
            software="pytorch-eager", format=pred.format, measured_s=sparse.median_s, predicted_s=pred.sparse_s,
            measured_dense_s=dense.median_s, predicted_dense_s=pred.dense_s,
            measured_speedup=dense.median_s / sparse.median_s, predicted_speedup=pred.dense_s / pred.sparse_s,
            median_s=sparse.median_s, min_s=sparse.min_s, iqr_s=sparse.iqr_s))
    return ValidationReport(device="cuda", engine=engine, points=tuple(points),
                            summary=stats.summarize(points, metric="time"),
                            groups=stats.grouped(points, ("device", "dtype", "arch"), metric="time"),
                            machine=gpu, elapsed_s=time.perf_counter() - t0,
                            notes=(f"{gpu} modelled by {arch} (pytorch-eager software stack: eager F.linear, "
                                   "timed with torch.utils.benchmark medians)",))
