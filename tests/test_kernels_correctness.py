"""Every kernel computes y = x @ (W * mask).T, on every pattern it accepts and the edge cases."""

import numpy as np
import pytest
import torch

from simsparse.errors import GeometryError, PatternError, UnknownNameError
from simsparse.kernels import KERNELS
from simsparse.masks.formats import CONDENSED_SLICE_ROWS, FORMATS, kernel_storage_bytes
from simsparse.masks.patterns import analyze
from simsparse.masks.synthetic import make_matrix

N, K = 24, 37          # K not a multiple of the SIMD width (16) nor of M (4, 8)
SUITED = {
    "dense": ("dense", "fanin=5", "2:4", "density=0.2", "channels=0.5"),
    "csr": ("dense", "fanin=5", "2:4", "density=0.2", "channels=0.5"),
    "shrunk": ("dense", "fanin=5", "2:4", "density=0.2", "channels=0.5"),
    "condensed": ("dense", "fanin=5", "channels=0.5"),   # 2:4 on K=37 has a partial group
    "nm": ("2:4", "1:4", "2:8", "fanin=5"),
    "dense_bf16": ("dense", "fanin=5", "2:4"),
}


def reference(weight, mask, x):
    return x @ (weight * torch.from_numpy(mask)).T


@pytest.mark.parametrize("name,pattern", [(k, p) for k, ps in SUITED.items() for p in ps])
@pytest.mark.parametrize("batch", [1, 3, 4, 5, 8, 9, 70])   # every batch path and its edges
def test_kernel_matches_dense_reference(name, pattern, batch):
    kern = KERNELS.get(name)
    mask = make_matrix(N, K, pattern, seed=1)
    weight = torch.randn(N, K, generator=torch.Generator().manual_seed(2))
    x = torch.randn(batch, K, generator=torch.Generator().manual_seed(3))
    y = kern.run(kern.prepare(weight, mask), x)
    assert y.shape == (batch, N) and y.dtype == torch.float32
    if kern.value_dtype == "bf16":     # bf16 operands, fp32 accumulation: ~3 significant digits
        assert kern.matches(y, reference(weight, mask, x))
    else:
        assert torch.allclose(y, reference(weight, mask, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(SUITED))
@pytest.mark.parametrize("batch", [1, 5])
def test_all_zero_mask_gives_zeros(name, batch):
    kern = KERNELS.get(name)
    mask = np.zeros((N, K), dtype=bool)
    y = kern.run(kern.prepare(torch.randn(N, K), mask), torch.randn(batch, K))
    assert y.shape == (batch, N) and torch.count_nonzero(y) == 0


@pytest.mark.parametrize("batch", [1, 7, 64, 70])   # gemv, columns, blocked, blocked + padding
def test_condensed_scatters_ablated_rows_back_as_zeros(batch):
    kern = KERNELS.get("condensed")
    mask = make_matrix(N, K, "fanin=4", seed=0)
    mask[[0, 5, 23]] = False
    weight, x = torch.randn(N, K), torch.randn(batch, K)
    prep = kern.prepare(weight, mask)
    y = kern.run(prep, x)
    assert prep.rows()[0].shape == (N - 3, 4) and prep.rows_removed == 3
    assert torch.count_nonzero(y[:, [0, 5, 23]]) == 0
    assert torch.allclose(y, reference(weight, mask, x), atol=1e-5)


def test_condensed_stores_uint16_indices_and_no_zeros_beyond_slice_padding():
    kern = KERNELS.get("condensed")
    mask = make_matrix(130, K, "fanin=6", seed=0)          # 130 rows: 3 slices of 64, 62 padding rows
    weight = torch.randn(130, K)
    prep = kern.prepare(weight, mask)
    assert prep.indices.dtype == np.uint16
    assert prep.values.shape == (3, 6, CONDENSED_SLICE_ROWS)
    assert kern.storage_bytes(prep)["values"] == 3 * CONDENSED_SLICE_ROWS * 6 * 4
    assert kern.storage_bytes(prep)["indices"] == 3 * CONDENSED_SLICE_ROWS * 6 * 2
    values, indices = prep.rows()                            # the plain [rows, fan_in] view
    assert np.array_equal(values, (weight.numpy())[np.arange(130)[:, None], indices.astype(np.int64)])
    assert mask[np.arange(130)[:, None], indices.astype(np.int64)].all()
    assert np.all(np.diff(indices.astype(np.int64), axis=1) > 0)   # ascending within a row


@pytest.mark.parametrize("rows", [1, 63, 64, 65, 200])
@pytest.mark.parametrize("batch", [1, 2, 8, 9])
def test_condensed_handles_partial_slices(rows, batch):
    kern = KERNELS.get("condensed")
    mask = make_matrix(rows, K, "fanin=3", seed=4)
    weight, x = torch.randn(rows, K), torch.randn(batch, K)
    assert torch.allclose(kern.run(kern.prepare(weight, mask), x), reference(weight, mask, x), atol=1e-5)


def test_condensed_widens_indices_beyond_uint16_range():
    kern = KERNELS.get("condensed")
    k = 2**16 + 3
    mask = np.zeros((2, k), dtype=bool)
    mask[:, [0, 7, k - 1]] = True
    weight, x = torch.randn(2, k), torch.randn(1, k)
    prep = kern.prepare(weight, mask)
    assert prep.indices.dtype == np.uint32
    assert torch.allclose(kern.run(prep, x), reference(weight, mask, x), atol=1e-4)


def test_condensed_rejects_varying_fan_in_with_one_line():
    mask = make_matrix(N, K, "density=0.3", seed=0)
    with pytest.raises(PatternError, match="constant fan-in") as err:
        KERNELS.get("condensed").prepare(torch.randn(N, K), mask)
    assert "\n" not in str(err.value)


def test_nm_rejects_a_dense_mask():
    with pytest.raises(PatternError, match="N:M"):
        KERNELS.get("nm").prepare(torch.randn(N, K), np.ones((N, K), dtype=bool))


@pytest.mark.parametrize("pattern,expected", [("2:4", (2, 4)), ("1:4", (1, 4)), ("2:8", (2, 8))])
def test_nm_picks_the_tightest_group(pattern, expected):
    prep = KERNELS.get("nm").prepare(torch.randn(N, 64), make_matrix(N, 64, pattern, seed=0))
    assert (prep.n_keep, prep.group_m) == expected
    assert prep.offsets.dtype == np.uint8 and prep.values.shape == (N, 64 // expected[1] * expected[0])


def test_nm_forced_group_on_partial_last_group():
    kern = KERNELS.get("nm")
    mask = make_matrix(N, K, "3:8", seed=0)          # K = 37: last group holds 5 columns
    weight, x = torch.randn(N, K), torch.randn(2, K)
    prep = kern.prepare(weight, mask, group_m=8)
    assert (prep.n_keep, prep.group_m) == (3, 8)      # N not a power of two: division path
    assert torch.allclose(kern.run(prep, x), reference(weight, mask, x), atol=1e-5)


def test_kernels_accept_torch_masks():
    mask = torch.from_numpy(make_matrix(N, K, "fanin=3", seed=0))
    weight, x = torch.randn(N, K), torch.randn(1, K)
    for name in ("dense", "csr", "condensed", "shrunk"):
        kern = KERNELS.get(name)
        assert torch.allclose(kern.run(kern.prepare(weight, mask), x), reference(weight, mask.numpy(), x), atol=1e-5)


def test_shape_mismatches_are_geometry_errors():
    kern = KERNELS.get("csr")
    with pytest.raises(GeometryError, match="does not match"):
        kern.prepare(torch.randn(4, 5), np.ones((5, 4), dtype=bool))
    prep = kern.prepare(torch.randn(4, 5), np.ones((4, 5), dtype=bool))
    with pytest.raises(GeometryError, match=r"\[batch, 5\]"):
        kern.run(prep, torch.randn(2, 6))


def test_registry_lists_the_kernels_and_rejects_others():
    assert KERNELS.names() == ["condensed", "csr", "dense", "dense_bf16", "nm", "shrunk"]
    with pytest.raises(UnknownNameError, match="condensed, csr, dense, dense_bf16, nm, shrunk"):
        KERNELS.get("bsr")


def test_storage_bytes_report_values_and_indices_for_every_kernel():
    mask = make_matrix(N, 32, "2:4", seed=0)
    for name in KERNELS.names():
        kern = KERNELS.get(name)
        sizes = kern.storage_bytes(kern.prepare(torch.randn(N, 32), mask))
        assert {"values", "indices"} <= set(sizes)
    dense_bytes = KERNELS.get("dense").storage_bytes(KERNELS.get("dense").prepare(torch.randn(N, 32), mask))
    nm_prep = KERNELS.get("nm").prepare(torch.randn(N, 32), mask)
    assert KERNELS.get("nm").storage_bytes(nm_prep)["values"] * 2 == dense_bytes["values"]


@pytest.mark.parametrize("pattern", ["fanin=7", "2:4", "1:8", "channels=0.5", "density=0.2"])
def test_every_kernel_stores_exactly_what_the_storage_model_says(pattern):
    mask = make_matrix(70, 48, pattern, seed=1)       # 70 rows: the last condensed slice is padded
    if not pattern.startswith("fanin"):
        mask[:, 5] = False                            # an all-zero reduction column for shrunk
    pat = analyze(mask)
    for name in KERNELS.names():
        kern = KERNELS.get(name)
        try:
            prep = kern.prepare(torch.randn(70, 48), mask)
        except PatternError:
            continue
        model = kernel_storage_bytes(pat, kern.format, kern.value_dtype)
        stored = kern.storage_bytes(prep)
        assert stored["values"] == model.values_bytes, name
        assert sum(stored.values()) - stored["values"] == model.metadata_bytes, name


def test_every_storage_format_has_a_kernel_and_every_kernel_a_format():
    assert {KERNELS.get(name).format for name in KERNELS.names()} == set(FORMATS)


def test_bf16_dense_is_close_but_not_bit_exact_and_the_fp32_check_would_catch_a_wrong_kernel():
    kern = KERNELS.get("dense_bf16")
    weight, x = torch.randn(64, 256), torch.randn(8, 256)
    mask = np.ones((64, 256), dtype=bool)
    y = kern.run(kern.prepare(weight, mask), x)
    ref = reference(weight, mask, x)
    assert kern.matches(y, ref) and not torch.equal(y, ref)
    assert kern.storage_bytes(kern.prepare(weight, mask))["values"] == 64 * 256 * 2
    assert not kern.matches(y.flip(1), ref)                         # a wrong answer still fails


def test_activations_pass_through_without_copy_when_already_float32_contiguous():
    from simsparse.kernels import check_x

    x = torch.randn(3, 8)
    assert check_x(x, 8) is x                                   # the common case costs no copy
    assert check_x(x.double(), 8).dtype == torch.float32        # others are converted
    assert check_x(x.t().contiguous().t(), 8).is_contiguous()
    assert not check_x(x.requires_grad_(), 8).requires_grad
