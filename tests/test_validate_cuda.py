"""`validate --device cuda` pairs each GEMM's dense and 2:4 timings into one point (no GPU needed:
the timing is faked; kernels/cuda.py measures for real where CUDA exists)."""

from types import SimpleNamespace

import pytest
import torch

from simsparse.errors import MeasurementError
from simsparse.validate import cuda


def fake_gpu(monkeypatch, name: str):
    monkeypatch.setattr(cuda, "require_cuda", lambda: "cuda")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    monkeypatch.setattr(cuda, "VALIDATION_GEMMS", ((64, 256, 256), (128, 512, 256)))

    def measure(cases, **_):
        return [SimpleNamespace(m=c.m, n=c.n, k=c.k, kernel=kern, median_s=(2e-5 if kern == "dense" else 1e-5),
                                min_s=1e-5, iqr_s=1e-7) for c in cases for kern in c.kernels]

    monkeypatch.setattr(cuda, "measure_cuda_cases", measure)


def test_each_gemm_is_one_point_with_its_dense_pair_and_speedups(monkeypatch):
    fake_gpu(monkeypatch, "NVIDIA A100-SXM4-80GB")
    report = cuda.run()
    assert [p.id for p in report.points] == ["64x256x256", "128x512x256"]
    p = report.points[0]
    assert p.arch == "a100_2to4" and p.measured_speedup == pytest.approx(2.0)
    assert p.measured_dense_s == 2e-5 and p.predicted_dense_s > 0 and p.predicted_speedup > 0
    assert report.summary.metric == "time" and report.summary.n == 2 and report.groups[0].key[0] == p.device


def test_a_gpu_without_a_spec_is_refused_unless_mapped_explicitly(monkeypatch):
    fake_gpu(monkeypatch, "NVIDIA Z900")
    with pytest.raises(MeasurementError, match="no arch spec is mapped to GPU 'NVIDIA Z900'"):
        cuda.run()
    assert cuda.run(gpu_archs={"NVIDIA Z900": "h100_2to4"}).points[0].arch == "h100_2to4"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message where CUDA is absent")
def test_without_cuda_validation_says_so():
    with pytest.raises(MeasurementError, match="CUDA is not available"):
        cuda.run()
