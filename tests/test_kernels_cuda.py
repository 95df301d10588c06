"""`measure --device cuda` kernels: the condensed layout and every CPU-side step are checked here;
the GPU kernels themselves are checked against dense where CUDA (and triton) exist."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from simsparse.errors import MeasurementError, PatternError
from simsparse.kernels.cuda import CUDA_KERNELS, check_against_dense, cuda_kernels_for, prepare_runner
from simsparse.kernels.cuda_condensed import condensed_layout, condensed_reference
from simsparse.masks.synthetic import make_matrix, two_four_checkerboard


def masked(pattern: str, n: int = 96, k: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    mask = make_matrix(n, k, pattern, seed=seed)
    weight = np.random.default_rng(seed).standard_normal((n, k)).astype(np.float32)
    return weight * mask, mask


@pytest.mark.parametrize("pattern", ["fanin=13", "density=0.1", "2:4", "channels=0.5"])
def test_the_condensed_layout_reproduces_the_masked_dense_product(pattern):
    weight, mask = masked(pattern)
    x = np.random.default_rng(1).standard_normal((7, mask.shape[1])).astype(np.float32)
    y = condensed_reference(condensed_layout(weight, mask), x)
    np.testing.assert_allclose(y, x @ weight.T, rtol=1e-5, atol=1e-5)


def test_condensed_rows_are_padded_with_zero_weights_to_the_largest_fan_in_and_vector_width():
    weight, mask = masked("density=0.1")
    layout = condensed_layout(weight, mask, vector_width=4)
    widest = int(mask.sum(axis=1).max())
    assert layout.fan_in == -(-widest // 4) * 4
    assert (layout.values != 0).sum() == mask.sum()          # the padding holds zero weights only


def test_ablated_rows_are_left_out_of_the_layout_and_zero_in_the_output():
    weight, mask = masked("fanin=9")
    mask[::4], weight[::4] = False, 0.0
    layout = condensed_layout(weight, mask)
    assert layout.row_ids.tolist() == [r for r in range(96) if r % 4]
    y = condensed_reference(layout, np.ones((3, 200), dtype=np.float32))
    assert not y[:, ::4].any()


def test_indices_are_int16_while_k_fits_and_int32_beyond():
    assert condensed_layout(*masked("fanin=3", n=4, k=32767)).indices.dtype == np.int16
    assert condensed_layout(*masked("fanin=3", n=4, k=32768)).indices.dtype == np.int32


def test_an_all_zero_mask_has_no_condensed_layout():
    with pytest.raises(PatternError, match="all-zero"):
        condensed_layout(np.zeros((4, 8), np.float32), np.zeros((4, 8), bool))


def test_the_cuda_kernel_list_offers_nm_only_for_a_2to4_mask():
    assert cuda_kernels_for(two_four_checkerboard(16, 32)) == CUDA_KERNELS
    assert "nm" not in cuda_kernels_for(make_matrix(16, 32, "density=0.5", seed=0))


def test_a_kernel_output_that_differs_from_dense_is_refused_before_timing():
    reference = torch.ones(4, 8)
    check_against_dense("csr", reference + 1e-6, reference, "fp32")
    with pytest.raises(MeasurementError, match="does not match"):
        check_against_dense("csr", reference * 1.1, reference, "fp32")


def test_csr_and_dense_runners_compute_the_masked_product_on_the_cpu_too():
    weight, mask = masked("density=0.2")
    w, x = torch.from_numpy(weight), torch.randn(5, 200)
    for name in ("dense", "csr"):
        runner = prepare_runner(name, w, mask)
        check_against_dense(name, runner.fn(x), x @ w.T, "fp32")


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
@pytest.mark.parametrize("kernel", CUDA_KERNELS)
def test_every_cuda_kernel_is_allclose_to_dense(kernel, dtype):
    if kernel == "condensed":
        pytest.importorskip("triton")
    torch_dtype = {"fp16": torch.float16, "fp32": torch.float32}[dtype]
    pattern = "2:4" if kernel == "nm" else "fanin=31"
    mask = make_matrix(256, 512, pattern, seed=0)
    weight = (torch.randn(256, 512) * torch.from_numpy(mask)).to("cuda", torch_dtype)
    x = torch.randn(100, 512).to("cuda", torch_dtype)
    runner = prepare_runner(kernel, weight, mask)
    y = runner.fn(x.t().contiguous() if runner.transposed_input else x)
    check_against_dense(kernel, y, torch.nn.functional.linear(x.float(), weight.float()), dtype)
