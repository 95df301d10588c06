"""Closed-form patterns of synthetic masks: the same answer as drawing and measuring the mask,
without the mask (DESIGN.md §3 Pattern; masks/closed_form.py says which fields are expectations)."""

import tracemalloc

import numpy as np
import pytest

from simsparse import api
from simsparse.graph.synthetic import materialise, synthetic_gemm_work
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
        total = sum(measured.nm_group_histogram[m].values())
        for c in set(closed.nm_group_histogram[m]) | set(measured.nm_group_histogram[m]):
            share_c = closed.nm_group_histogram[m].get(c, 0) / total
            share_m = measured.nm_group_histogram[m].get(c, 0) / total
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
    w = synthetic_gemm_work(m=1, n=100_000, k=100_000, pattern="2:4", dtype="fp16")
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


def test_a_cpu_arch_ranks_its_sparse_kernels_on_a_pattern_only_layer_as_on_the_drawn_mask():
    lazy = api.evaluate(arch="spr_socket", gemm="16,256,512", pattern="fanin=16")
    work = synthetic_gemm_work(m=16, n=256, k=512, pattern="fanin=16", dtype="fp32")
    drawn = materialise(work)
    assert work.mask is None and drawn.mask is not None and drawn.pattern.source == "measured"
    assert any("condensed" in n for n in lazy.estimates[0].notes)      # sparse kernels were ranked
    assert lazy.total.flops_effective == 2 * 16 * 256 * 16
    model = api.load_arch("spr_socket")
    assert model.plan(work).format == model.plan(drawn).format


@pytest.mark.parametrize("shape,pattern", CASES)
def test_closed_form_fills_the_fields_the_arch_models_read(shape, pattern):
    closed = synthetic_pattern(shape, pattern, seed=3)
    measured = analyze(make_mask(shape, pattern, seed=3))
    assert abs(closed.zero_cols - measured.zero_cols) <= max(1, 0.02 * closed.cols)
    for m in (2, 4, 8, 16, 32):
        assert sum(closed.row_group_max_histogram[m].values()) == closed.rows       # every row counted once
        assert set(closed.nm_group_histogram[m]) and max(closed.row_group_max_histogram[m]) <= m
        mean = sum(c * r for c, r in closed.row_group_max_histogram[m].items()) / closed.rows
        seen = sum(c * r for c, r in measured.row_group_max_histogram[m].items()) / measured.rows
        assert abs(mean - seen) < 0.25, m        # the mean row maximum, within sampling noise


def test_row_maxima_below_the_pattern_group_are_counted_exactly_within_each_group():
    # 2:8 seen in groups of 4: each group of 8 splits its 2 kept weights 2+0, 1+1 or 0+2, so a row of
    # one group of 8 has maximum 2 with probability 2*C(4,2)/C(8,2) = 12/28
    closed = synthetic_pattern((28_000, 8), "2:8")
    assert closed.row_group_max_histogram[4] == {1: 16_000, 2: 12_000}


def test_every_kind_plans_a_huge_synthetic_gemm_without_a_mask():
    for arch in ("a100_2to4", "vegeta_like", "spr_socket"):
        model = api.load_arch(arch)
        work = synthetic_gemm_work(m=1, n=65_536, k=65_536, pattern="2:4", dtype=model.default_dtype())
        assert work.mask is None and model.plan(work).macs_effective == 65_536 * 65_536 // 2
