"""nm_mask: top-N |w| per group of M consecutive weights along the reduction axis (conv: Cin innermost)."""

import pytest
import torch

from simsparse.dst.nm_mask import is_nm_compliant, nm_group_counts, nm_mask
from simsparse.masks.patterns import from_gemm_rows, gemm_rows
from simsparse.errors import PatternError


def test_linear_keeps_the_n_largest_magnitudes_of_each_group():
    w = torch.tensor([[1.0, -5.0, 3.0, 2.0, 0.5, 4.0, -6.0, 0.1]])
    expected = torch.tensor([[False, True, True, False, False, True, True, False]])
    assert torch.equal(nm_mask(w, 2, 4), expected)


def test_conv_groups_run_along_cin_innermost():
    # built in the (Cout, kh, kw, Cin) layout: groups of 4 are the 4 input channels at one kernel position
    hwc = torch.tensor([[[[9.0, 8.0, 1.0, 2.0], [7.0, 6.0, 5.0, 4.0]]]])  # Cout=1, kh=1, kw=2, Cin=4
    expected_hwc = torch.tensor([[[[True, True, False, False], [True, True, False, False]]]])
    weight = hwc.permute(0, 3, 1, 2).contiguous()  # torch layout (Cout, Cin, kh, kw)
    mask = nm_mask(weight, 2, 4)
    assert mask.shape == weight.shape
    assert torch.equal(mask, expected_hwc.permute(0, 3, 1, 2))
    # grouping the torch layout naively (kw innermost) would pick differently
    naive = nm_mask(weight.reshape(1, -1), 2, 4).reshape(weight.shape)
    assert not torch.equal(naive, mask)


def test_partial_last_group_keeps_min_n_r_largest():
    w = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 0.5, 7.0],     # k=7, M=4: tail of 3 keeps its 2 largest
                      [4.0, 3.0, 2.0, 1.0, 0.1, 0.2, 0.3]])
    mask = nm_mask(w, 2, 4)
    assert mask[0].tolist() == [False, False, True, True, True, False, True]
    assert mask[1].tolist() == [True, True, False, False, False, True, True]
    short = nm_mask(torch.tensor([[3.0, 1.0]]), 2, 8)            # k < M and r ≤ N: everything stays
    assert short.all()


@pytest.mark.parametrize("shape", [(6, 16), (5, 24), (4, 8, 3, 3), (3, 6, 1, 5), (4, 7)])
@pytest.mark.parametrize("nm", [(1, 4), (2, 4), (1, 8), (3, 8)])
def test_every_full_group_holds_exactly_n(shape, nm):
    n, m = nm
    w = torch.randn(shape, generator=torch.Generator().manual_seed(sum(shape)))
    mask = nm_mask(w, n, m)
    counts = nm_group_counts(mask, m)
    k = gemm_rows(w).shape[1]
    full = k // m
    assert (counts[:, :full] == n).all()
    if k % m:
        assert (counts[:, full] == min(n, k % m)).all()
    assert is_nm_compliant(mask, n, m)


def test_kept_weights_dominate_dropped_ones_within_each_group():
    w = torch.randn(8, 32, generator=torch.Generator().manual_seed(3))
    mask = nm_mask(w, 2, 8)
    a = w.abs().reshape(8, 4, 8)
    kept = torch.where(mask.reshape(8, 4, 8), a, torch.full_like(a, float("inf"))).amin(-1)
    dropped = torch.where(~mask.reshape(8, 4, 8), a, torch.full_like(a, -1.0)).amax(-1)
    assert (kept >= dropped).all()


def test_reduction_rows_round_trip_conv_layout():
    w = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    rows = gemm_rows(w)
    assert torch.equal(rows, w.permute(0, 2, 3, 1).reshape(2, -1))
    assert torch.equal(from_gemm_rows(rows, w.shape), w)


def test_compliance_check_rejects_an_overfull_group():
    mask = torch.tensor([[True, True, True, False, True, False, False, False]])
    assert not is_nm_compliant(mask, 2, 4)
    assert is_nm_compliant(mask, 3, 4)


@pytest.mark.parametrize("nm", [(0, 4), (5, 4), (1, 1), (2.0, 4)])
def test_invalid_n_m_is_a_pattern_error(nm):
    with pytest.raises(PatternError, match="N:M"):
        nm_mask(torch.ones(2, 8), *nm)


def test_flat_layout_groups_wrap_across_rows_as_the_srste_reference_masks_a_stem():
    # a 1x1 conv with 3 input channels: k = 3 is not a multiple of M = 4. The reference (SR-STE, PGF)
    # cuts the flattened weight into groups of 4 that run on into the next row; padding per row would
    # keep 2 of every row's 3 weights instead.
    w = torch.tensor([[9.0, 1.0, 2.0], [8.0, 7.0, 3.0], [0.5, 6.0, 5.0], [4.0, 0.1, 0.2]]).reshape(4, 3, 1, 1)
    flat = nm_mask(w, 2, 4, layout="flat").reshape(4, 3)
    # groups: (9, 1, 2, 8) -> 9, 8; (7, 3, 0.5, 6) -> 7, 6; (5, 4, 0.1, 0.2) -> 5, 4
    assert flat.tolist() == [[True, False, False], [True, True, False], [False, True, True], [True, False, False]]
    assert nm_mask(w, 2, 4).reshape(4, 3).sum(dim=1).tolist() == [2, 2, 2, 2]
