"""`simsparse validate --device cuda`: GEMMs timed on this GPU (the measuring lives in
kernels/cuda.py) beside the analytic model of the GPU's arch spec.

Two groups of points, each a sparse kernel beside its dense baseline, all PyTorch eager calls
timed by torch.utils.benchmark, so the spec runs under its `pytorch-eager` software stack:
- 2:4 (fp16): `F.linear` on a dense weight and on `to_sparse_semi_structured`, with the spec's
  default sparse back end.
- unstructured (fp32, SRigL's setting): the condensed Triton kernel (pre-transposed input) and
  `F.linear` on a CSR weight, against IEEE-fp32 dense; the spec is run with
  `fp32_matmul_precision: highest` (PyTorch's default: no TF32) and the condensed block shape of
  the measured kernel (one warp per program), each sparse kernel forced (`plan(kernel=...)`).
The GPU is mapped to its spec by gpu_predict.GPU_ARCHS (or explicitly with `gpu_archs`); a GPU
without a shipped spec is refused with the reason.
"""

from __future__ import annotations

import time
from typing import Mapping

import torch

from simsparse.archs import load_arch
from simsparse.engines import estimate
from simsparse.errors import MeasurementError
from simsparse.graph.synthetic import synthetic_gemm_work
from simsparse.kernels.cuda import measure_cuda_cases, require_cuda
from simsparse.kernels.suites import Case
from simsparse.validate import stats
from simsparse.validate.gpu_predict import GpuPredictor, arch_for_gpu
from simsparse.validate.records import MeasuredPoint, ValidationReport

VALIDATION_GEMMS = ((16, 4096, 4096), (512, 4096, 4096), (2048, 4096, 4096), (8192, 4096, 4096),
                    (2048, 8192, 8192), (8192, 8192, 8192))
DTYPE = "fp16"                       # the 2:4 points
# SRigL's layer (in 3072 -> out 768) at their batches and densities, plus a RigL-like mask
UNSTRUCTURED_CASES = ((1, 768, 3072, "fanin=307"), (256, 768, 3072, "fanin=614"), (256, 768, 3072, "fanin=307"),
                      (256, 768, 3072, "fanin=154"), (2048, 768, 3072, "fanin=307"),
                      (256, 768, 3072, "density=0.1"))
UNSTRUCTURED_DTYPE = "fp32"
UNSTRUCTURED_KERNELS = ("dense", "condensed", "csr")
# the measured condensed kernel (kernels/cuda_triton.py): one warp per program
UNSTRUCTURED_OVERRIDES = ("cuda_cores.fp32_matmul_precision=highest", "cuda_cores.condensed.threads_per_block=32")


def _two_four_points(gpu: str, arch: str, engine: str, min_time_s: float, progress: bool) -> list[MeasuredPoint]:
    cases = [Case(m=m, n=n, k=k, pattern="2:4", kernels=("dense", "nm")) for (m, n, k) in VALIDATION_GEMMS]
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
    return points


def _unstructured_points(gpu: str, arch: str, engine: str, min_time_s: float,
                         progress: bool) -> list[MeasuredPoint]:
    if not UNSTRUCTURED_CASES:
        return []
    cases = [Case(m=m, n=n, k=k, pattern=p, kernels=UNSTRUCTURED_KERNELS) for (m, n, k, p) in UNSTRUCTURED_CASES]
    timed = {(r.m, r.n, r.k, r.pattern, r.kernel): r
             for r in measure_cuda_cases(cases, min_time_s=min_time_s, progress=progress, dtype=UNSTRUCTURED_DTYPE)}
    model = load_arch(arch, UNSTRUCTURED_OVERRIDES).with_software("pytorch-eager")
    points = []
    for m, n, k, pattern in UNSTRUCTURED_CASES:
        work = synthetic_gemm_work(m=m, n=n, k=k, pattern=pattern, dtype=UNSTRUCTURED_DTYPE)
        dense = timed[(m, n, k, pattern, "dense")]
        dense_s = estimate(model.plan(work, dense=True), model, engine).latency_s
        for kernel in UNSTRUCTURED_KERNELS[1:]:
            meas = timed[(m, n, k, pattern, kernel)]
            pred = estimate(model.plan(work, kernel=kernel), model, engine)
            points.append(MeasuredPoint(
                id=f"{m}x{n}x{k} {pattern} {kernel}", source="cuda", device=gpu, arch=arch, dtype=UNSTRUCTURED_DTYPE,
                kernel=kernel, m=m, n=n, k=k, pattern=pattern, software="pytorch-eager", format=pred.format,
                measured_s=meas.median_s, predicted_s=pred.latency_s, measured_dense_s=dense.median_s,
                predicted_dense_s=dense_s, measured_speedup=dense.median_s / meas.median_s,
                predicted_speedup=dense_s / pred.latency_s, median_s=meas.median_s, min_s=meas.min_s,
                iqr_s=meas.iqr_s))
    return points


def run(*, progress: bool = False, min_time_s: float = 0.2, engine: str = "analytic",
        gpu_archs: Mapping[str, str] | None = None) -> ValidationReport:
    """Measured 2:4 and unstructured GEMMs on this GPU against the model of its arch."""
    t0 = time.perf_counter()
    gpu = torch.cuda.get_device_name(require_cuda())
    arch, reason = arch_for_gpu(gpu, gpu_archs)
    if arch is None:
        raise MeasurementError(f"cannot validate on {gpu}: {reason}")
    points = (_two_four_points(gpu, arch, engine, min_time_s, progress)
              + _unstructured_points(gpu, arch, engine, min_time_s, progress))
    return ValidationReport(device="cuda", engine=engine, points=tuple(points),
                            summary=stats.summarize(points, metric="time"),
                            groups=stats.grouped(points, ("device", "dtype", "kernel"), metric="time"),
                            machine=gpu, elapsed_s=time.perf_counter() - t0,
                            notes=(f"{gpu} modelled by {arch} (pytorch-eager software stack: eager calls, timed with "
                                   "torch.utils.benchmark medians); 2:4 points fp16 with the spec as it is; "
                                   "condensed (Triton) and csr points fp32 with "
                                   + ", ".join(UNSTRUCTURED_OVERRIDES),))
