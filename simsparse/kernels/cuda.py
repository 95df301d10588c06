"""`measure --device cuda`: dense, 2:4, condensed and CSR GEMMs on an NVIDIA GPU (fp16 or fp32).

Kernels (`CUDA_KERNELS`):
  dense      F.linear on the masked weight (cuBLAS);
  nm         torch's `to_sparse_semi_structured` (cuSPARSELt / CUTLASS 2:4 sparse tensor cores; the
             mask must be 2:4 along k);
  condensed  the Triton kernel of kernels/cuda_triton.py on SRigL's condensed layout
             (kernels/cuda_condensed.py) with x pre-transposed, as SRigL's "FFI TP (self)";
  csr        F.linear on `weight.to_sparse_csr()` (cuSPARSE SpMM), as SRigL's CSR rows.
Every kernel's output is checked against the dense product before it is timed (MeasurementError
otherwise). Timed with torch.utils.benchmark (which synchronises the device); raises
MeasurementError where CUDA (or, for condensed, triton) is absent. `validate --device cuda`
(simsparse/validate/cuda.py) compares these timings with the model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import torch

from simsparse.errors import MeasurementError, PatternError
from simsparse.kernels.cuda_condensed import condensed_layout
from simsparse.kernels.harness import Measurement, library_versions, machine_info
from simsparse.kernels.suites import Case
from simsparse.masks.patterns import nm_envelope
from simsparse.masks.synthetic import make_matrix

CUDA_KERNELS = ("dense", "nm", "condensed", "csr")
CUDA_DTYPES = {"fp16": torch.float16, "fp32": torch.float32}
TOLERANCE = {"fp16": (2e-2, 2e-2), "fp32": (1e-4, 1e-3)}     # (rtol, atol relative to max |y|)


@dataclass(frozen=True)
class CudaRunner:
    """One kernel ready to run: `fn(x_in)` with x_in = x, or x^T when `transposed_input`."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    transposed_input: bool = False


def require_cuda() -> torch.device:
    if not torch.cuda.is_available():
        raise MeasurementError("CUDA is not available here; use --device cpu, or run on a machine with an "
                               "NVIDIA GPU and a CUDA build of torch")
    return torch.device("cuda")


def cuda_kernels_for(mask: np.ndarray) -> tuple[str, ...]:
    """The CUDA kernels that can run `mask` (nm needs 2:4 along k; the others run any mask)."""
    return tuple(k for k in CUDA_KERNELS if k != "nm" or nm_envelope(mask, 4) <= 2)


def _condensed_runner(weight: torch.Tensor, mask: np.ndarray) -> CudaRunner:
    try:
        from simsparse.kernels import cuda_triton  # triton ships with CUDA builds of torch only
    except ImportError as err:
        raise MeasurementError(f"the condensed CUDA kernel needs triton ({err}); install a CUDA build of "
                               "torch, or measure --kernel dense/nm/csr") from err
    layout = condensed_layout(weight.float().cpu().numpy(), mask)
    device, dtype = weight.device, weight.dtype
    values = torch.from_numpy(layout.values).to(device=device, dtype=dtype)
    indices = torch.from_numpy(layout.indices).to(device)
    row_ids = torch.from_numpy(layout.row_ids).to(device)
    return CudaRunner(fn=lambda xt: cuda_triton.condensed_matmul(values, indices, row_ids, xt, layout.n),
                      transposed_input=True)


def prepare_runner(name: str, weight: torch.Tensor, mask: np.ndarray) -> CudaRunner:
    """The kernel `name` on `weight` (already masked, on the GPU)."""
    linear = torch.nn.functional.linear
    if name == "dense":
        return CudaRunner(fn=lambda x: linear(x, weight))
    if name == "nm":
        if nm_envelope(mask, 4) > 2:
            raise PatternError("the CUDA nm kernel needs a 2:4 mask along k; use --pattern 2:4")
        from torch.sparse import to_sparse_semi_structured  # CUDA-only torch path

        sparse = to_sparse_semi_structured(weight)
        return CudaRunner(fn=lambda x: linear(x, sparse))
    if name == "csr":
        with warnings.catch_warnings():          # "Sparse CSR tensor support is in beta": known, not news
            warnings.simplefilter("ignore", UserWarning)
            csr = weight.to_sparse_csr()
        return CudaRunner(fn=lambda x: linear(x, csr))
    if name == "condensed":
        return _condensed_runner(weight, mask)
    raise MeasurementError(f"kernel {name!r} has no CUDA version; use one of: {', '.join(CUDA_KERNELS)}")


def check_against_dense(name: str, y: torch.Tensor, reference: torch.Tensor, dtype: str) -> None:
    """MeasurementError unless the kernel's output matches the dense product at `dtype` precision."""
    rtol, atol = TOLERANCE[dtype]
    scale = float(reference.abs().max()) if reference.numel() else 0.0
    if y.shape != reference.shape or not torch.allclose(y.float(), reference.float(), rtol=rtol,
                                                        atol=atol * max(1.0, scale)):
        raise MeasurementError(f"CUDA kernel {name} does not match the dense product ({dtype}); not timed")


def measure_cuda_cases(cases: Iterable[Case], *, min_time_s: float, progress: bool = False, seed: int = 0,
                       dtype: str = "fp16") -> list[Measurement]:
    """Timings of each (case, kernel) on the current CUDA device, at `dtype` (fp16 or fp32)."""
    from torch.utils import benchmark

    device = require_cuda()
    machine = machine_info()
    versions = dict(library_versions(), cuda=str(torch.version.cuda), gpu=torch.cuda.get_device_name(device))
    out = []
    for case in cases:
        mask = make_matrix(case.n, case.k, case.pattern, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        weight = (torch.randn(case.n, case.k, generator=gen) * torch.from_numpy(mask)).to(device, CUDA_DTYPES[dtype])
        x = torch.randn(case.m, case.k, generator=gen).to(device, CUDA_DTYPES[dtype])
        reference = torch.nn.functional.linear(x.float(), weight.float())
        for name in case.kernels:
            runner = prepare_runner(name, weight, mask)
            x_in = x.t().contiguous() if runner.transposed_input else x
            check_against_dense(name, runner.fn(x_in), reference, dtype)
            timer = benchmark.Timer(stmt="fn(x)", globals={"x": x_in, "fn": runner.fn})
            stats = timer.blocked_autorange(min_run_time=min_time_s)
            out.append(Measurement(kernel=name, m=case.m, n=case.n, k=case.k, pattern=case.pattern,
                                   median_s=float(stats.median), iqr_s=float(stats.iqr), threads=1,
                                   repeats=len(stats.times), cache="warm", machine=machine,
                                   versions=versions, dtype=dtype, min_s=float(min(stats.times)),
                                   inner=int(stats.number_per_run), density=float(mask.mean())))
    return out
