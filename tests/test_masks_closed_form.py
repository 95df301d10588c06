"""Closed-form patterns of synthetic masks: the same answer as drawing and measuring the mask,
without the mask (DESIGN.md §3 Pattern; masks/closed_form.py says which fields are expectations)."""

import tracemalloc

import numpy as np
import pytest

from simsparse import api
from simsparse.masks import synthetic
from simsparse.masks.patterns import analyze
from simsparse.masks.synthetic import make_mask, make_matrix, synthetic_pattern

EXACT_FIELDS = ("shape", "rows", "cols", "nnz", "density", "fan_in", "rows_removed", "cols_removed",
                "removed_rows", "removed_cols", "row_nnz_histogram", "reduction_per_channel")
CASES = [((128, 256), "dense"), ((64, 32, 3, 3), "dense"), ((256, 576), "1:8"), ((64, 128), "2:4"),
         ((64, 32, 3, 3), "2:4"), ((300, 200), "4:8"), ((768, 3072), "fanin=0.1"), ((96, 64, 3, 3), "fanin=0.2"),
         ((512, 1024), "channels=0.5"), ((16, 8, 3, 3), "channels=0.3")]


@pytest.mark.parametrize("shape,pattern", CASES)
def test_closed_form_pattern_equals_the_measured_one_on_every_exact_field(shape, pattern):
    closed = synthetic_pattern(shape, pattern, seed=3)
    measured = analyze(make_mask(shape, pattern, seed=3))
    assert closed.source == "closed-form" and measured.source == "measured"
    for f in EXACT_FIELDS:
        assert getattr(closed, f) == getattr(measured, f), f


@pytest.mark.parametrize("shape,pattern", CASES)
def test_closed_form_envelopes_and_group_shares_are_within_expectation_of_the_measured(shape, pattern):
    closed = synthetic_pattern(shape, pattern, seed=5)
    measured = analyze(make_mask(shape, pattern, seed=5))
    for m in (2, 4, 8):
        assert abs(closed.nm_envelope[m] - measured.nm_envelope[m]) <= 1
        total = sum(measured.group_histogram[m].values())
        for c in set(closed.group_histogram[m]) | set(measured.group_histogram[m]):
            share_c = closed.group_histogram[m].get(c, 0) / total
            share_m = measured.group_histogram[m].get(c, 0) / total
            assert abs(share_c - share_m) < 0.02, (m, c)


def test_nm_envelope_at_the_pattern_group_size_is_exact():
    p = synthetic_pattern((64, 128), "2:4")
    assert p.nm_envelope[4] == 2 and p.is_nm(2, 4) and p.nm_envelope[8] == 4


def test_patterns_without_a_closed_form_return_none():
    assert synthetic_pattern((64, 128), "density=0.3") is None
    assert synthetic_pattern((64, 130), "2:4") is None            # K not a multiple of M
    assert synthetic_pattern((2, 8), "fanin=1") is None            # all-zero input columns are expected


def test_dense_synthetic_pattern_allocates_no_mask():
    tracemalloc.start()
    p = synthetic_pattern((100_000, 100_000), "dense")
    w = api.gemm_work(m=1, n=100_000, k=100_000, pattern="2:4", dtype="fp16", draw=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert p.nnz == 10 ** 10 and w.mask is None and w.pattern.is_nm(2, 4)
    assert peak < 5_000_000        # a drawn mask would take 10 GB


def test_vectorised_nm_draw_keeps_the_n_smallest_scores_per_group_as_a_full_sort_would():
    rows, cols, n, m = 24, 40, 3, 8
    scores = np.random.default_rng(7).random((rows, cols // m, m))
    expect = np.zeros_like(scores, bool)
    np.put_along_axis(expect, np.argsort(scores, axis=2)[:, :, :n], True, axis=2)
    assert (make_matrix(rows, cols, f"{n}:{m}", seed=7) == expect.reshape(rows, cols)).all()


@pytest.mark.parametrize("pattern", ["2:4", "fanin=5", "4:4"])
def test_drawing_in_chunks_of_rows_gives_the_same_mask(monkeypatch, pattern):
    whole = make_matrix(50, 64, pattern, seed=1)
    monkeypatch.setattr(synthetic, "CHUNK_ELEMENTS", 100)
    assert (make_matrix(50, 64, pattern, seed=1) == whole).all()


def test_an_arch_that_reads_masks_gets_the_drawn_mask_of_a_pattern_only_layer():
    lazy = api.evaluate(arch="spr_socket", gemm="16,256,512", pattern="fanin=16")
    work = api.gemm_work(m=16, n=256, k=512, pattern="fanin=16", dtype="fp32")
    assert work.mask is not None
    assert any("condensed" in n for n in lazy.estimates[0].notes)      # sparse kernels were ranked
    assert lazy.total.flops_effective == 2 * 16 * 256 * 16
