"""Pattern analysis measures structure from the mask; synthetic masks confirm their own pattern."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from simsparse.errors import PatternError
from simsparse.masks.formats import storage_bytes
from simsparse.masks.patterns import (analyze, as_matrix, best_nm, from_gemm_rows, group_counts, nm_envelope,
                                      summarize)
from simsparse.masks.synthetic import make_mask, parse_pattern


def test_a_2to4_mask_has_envelope_2_for_groups_of_4():
    mask = make_mask((32, 64), "2:4", seed=0)
    pattern = analyze(mask)
    assert pattern.nm_envelope[4] == 2
    assert pattern.is_nm(2, 4)
    assert pattern.density == pytest.approx(0.5)


def test_conv_groups_run_along_cin_innermost():
    # 2:4 along Cin at every (kh, kw) position: compliant in the Cin-innermost view only
    mask = np.zeros((4, 8, 3, 3), bool)
    mask[:, 0::4] = True
    mask[:, 1::4] = True
    assert analyze(mask).nm_envelope[4] == 2
    mat = mask.reshape(4, -1)  # the naive (Cin outermost) flattening is not 2:4
    assert analyze(mat).nm_envelope[4] > 2


def test_constant_fan_in_mask_reports_constant_fan_in():
    pattern = analyze(make_mask((48, 3, 3, 3), "fanin=5", seed=3))
    assert pattern.fan_in.constant and pattern.fan_in.min == pattern.fan_in.max == 5


def test_unstructured_mask_has_varying_fan_in():
    pattern = analyze(make_mask((64, 256), "density=0.1", seed=1))
    assert not pattern.fan_in.constant
    assert pattern.nnz == round(0.1 * 64 * 256)


def test_channel_removed_mask_reports_removed_rows_and_input_channels():
    mask = make_mask((16, 8, 3, 3), "channels=0.5", seed=0)
    mask[:, 2] = False  # an input channel removed in every filter
    pattern = analyze(mask)
    assert pattern.rows_removed == 8
    assert pattern.cols_removed == 1
    assert 2 in pattern.removed_cols
    assert pattern.reduction_per_channel == 9


def test_row_histogram_counts_every_row():
    pattern = analyze(make_mask((10, 20), "fanin=4", seed=0))
    assert pattern.row_nnz_histogram == {4: 10}


def test_block_sparse_mask_fills_its_blocks():
    mask = np.kron(np.random.default_rng(0).random((8, 8)) > 0.5, np.ones((4, 4), bool))
    pattern = analyze(mask)
    assert pattern.block[4] == pytest.approx(1.0)
    assert pattern.block[8] <= 1.0


def test_non_boolean_values_are_rejected():
    with pytest.raises(PatternError):
        analyze(np.array([[0.0, 0.5], [1.0, 0.0]]))
    with pytest.raises(PatternError):
        analyze(np.array([[np.nan, 1.0]]))


def test_torch_masks_are_accepted():
    assert analyze(torch.ones(4, 8, dtype=torch.bool)).density == 1.0


@pytest.mark.parametrize("text", ["", "3:2", "0:4", "fanin=-1", "density=0", "density=1.5", "channels=x", "blocks=4"])
def test_unknown_pattern_strings_are_rejected_with_the_accepted_forms(text):
    with pytest.raises(PatternError, match="N:M|needs"):
        parse_pattern(text)


def test_2to4_fp16_storage_is_56_percent_of_dense():
    pattern = analyze(make_mask((64, 128), "2:4"))
    assert storage_bytes(pattern, "2:4", "fp16").total_bytes / storage_bytes(pattern, "dense", "fp16").total_bytes == pytest.approx(0.5625)
    assert storage_bytes(pattern, "2:4", "int8").total_bytes / storage_bytes(pattern, "dense", "int8").total_bytes == pytest.approx(0.625)


def test_violating_share_counts_groups_over_n():
    mat = np.ones((2, 8), bool)
    mat[0, :4] = [True, True, False, False]
    assert analyze(mat).nm_violation_share(2, 4) == pytest.approx(3 / 4)


def test_group_histograms_agree_with_direct_group_counts():
    mat = make_mask((24, 70), "density=0.4", seed=2)
    pattern = analyze(mat)
    for m in (2, 4, 8, 16, 32):
        counts = group_counts(mat, m)
        assert pattern.nm_group_histogram[m] == {int(v): int((counts == v).sum()) for v in np.unique(counts)}
        row_max = counts.max(axis=1)
        assert pattern.row_group_max_histogram[m] == {int(v): int((row_max == v).sum()) for v in np.unique(row_max)}
        assert pattern.nm_envelope[m] == nm_envelope(mat, m)


def test_zero_cols_counts_every_all_zero_reduction_column():
    mask = np.ones((4, 2, 3, 3), bool)
    mask[:, 0, 1, 1] = False           # one reduction column (kh=1, kw=1, cin=0), not a whole channel
    pattern = analyze(mask)
    assert pattern.zero_cols == 1 and pattern.cols_removed == 0


def test_best_nm_takes_the_fewest_slots_per_column_then_the_smaller_group():
    assert best_nm({4: 2, 8: 3, 16: 6}, (4, 8, 16)) == (3, 8)
    assert best_nm({4: 1, 8: 2}, (4, 8)) == (1, 4)
    assert best_nm({4: 4, 8: 8}, (4, 8)) is None


def test_summary_lists_compliant_and_constant_fan_in_layers():
    pats = {"a.weight": analyze(make_mask((8, 16), "2:4")), "b.weight": analyze(make_mask((8, 16), "density=0.3"))}
    s = summarize(pats)
    assert s["nm_2to4_layers"] == ["a.weight"]
    assert s["constant_fan_in_layers"] == ["a.weight"]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.sampled_from([(1, 4), (2, 4), (1, 8), (2, 8), (4, 16)]), st.integers(1, 40), st.integers(0, 99))
def test_synthetic_nm_masks_meet_their_envelope(rows, nm, cols, seed):
    n, m = nm
    pattern = analyze(make_mask((rows, cols), f"{n}:{m}", seed=seed))
    assert pattern.nm_envelope[m] <= n


@settings(max_examples=40, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 9), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3))))
def test_analysis_invariants_hold_for_any_mask(mask):
    pattern = analyze(mask)
    assert pattern.nnz == int(mask.sum())
    assert sum(pattern.row_nnz_histogram.values()) == mask.shape[0]
    assert all(pattern.nm_envelope[m] <= m for m in pattern.nm_envelope)
    envs = [pattern.nm_envelope[m] for m in sorted(pattern.nm_envelope)]
    assert envs == sorted(envs)  # a larger group never holds fewer nonzeros
    assert (from_gemm_rows(as_matrix(mask), mask.shape) == mask).all()


def test_fractional_fan_in_keeps_the_same_share_of_every_row():
    spec = parse_pattern("fanin=0.25")
    small = analyze(make_mask((8, 16), spec))
    large = analyze(make_mask((8, 64, 3, 3), spec))
    assert small.fan_in.constant and small.fan_in.min == 4
    assert large.fan_in.constant and large.fan_in.min == 144


def test_each_reference_mask_has_the_structure_it_is_named_for(masks_64x128):
    p = {name: analyze(mask) for name, mask in masks_64x128.items()}
    assert p["dense"].density == 1.0
    assert p["2:4"].is_nm(2, 4) and p["2:4"].is_nm(1, 2) and p["2:4"].cols_removed == 0
    assert p["1:8"].is_nm(1, 8) and not p["1:8"].is_nm(1, 16)
    assert p["fanin"].fan_in.constant and p["fanin"].rows_removed == 0
    assert not p["unstructured"].fan_in.constant and not p["unstructured"].is_nm(2, 4)
    assert p["channels"].rows_removed == 32 and p["channels"].fan_in.constant
