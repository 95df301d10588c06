"""One home for validation statistics: MAPE as a fraction, guarded Spearman, sign agreement, worst rows."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simsparse.validate import stats
from simsparse.validate.records import MeasuredPoint


def gpu_point(pid: str, *, speedup: tuple[float, float], dense_s: tuple[float, float] = (1.0, 1.0),
              sparse_s: tuple[float, float] = (1.0, 1.0), device: str = "A100", dtype: str = "fp16") -> MeasuredPoint:
    """A published-style point: (measured, predicted) pairs."""
    return MeasuredPoint(id=pid, source="corpus", device=device, arch="a100_2to4", dtype=dtype, kernel="cusparselt",
                         m=64, n=64, k=64, measured_speedup=speedup[0], predicted_speedup=speedup[1],
                         measured_dense_s=dense_s[0], predicted_dense_s=dense_s[1],
                         measured_s=sparse_s[0], predicted_s=sparse_s[1])


def test_mape_is_a_fraction():
    assert stats.mape([1.1, 1.8], [1.0, 2.0]) == pytest.approx(0.1)


@given(st.lists(st.tuples(st.floats(0.0, 1e6), st.floats(1e-9, 1e6)), min_size=1, max_size=20))
def test_mape_is_never_negative(pairs):
    assert stats.mape([p for p, _ in pairs], [m for _, m in pairs]) >= 0.0


@pytest.mark.parametrize("measured", [0.0, -1.0, math.nan, math.inf])
def test_ape_refuses_a_measured_value_that_is_not_positive_and_finite(measured):
    with pytest.raises(ValueError, match="positive and finite"):
        stats.ape(1.0, measured)


def test_mape_of_nothing_is_nan():
    assert math.isnan(stats.mape([], []))


@pytest.mark.parametrize("a, b", [([1.0, 2.0], [2.0, 1.0]), ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]),
                                  ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])])
def test_spearman_is_nan_for_fewer_than_three_pairs_or_a_constant_input(a, b):
    assert math.isnan(stats.spearman(a, b))


def test_spearman_ranks_a_monotone_relation_as_one():
    assert stats.spearman([1.0, 2.0, 3.0, 4.0], [10.0, 11.0, 30.0, 31.0]) == pytest.approx(1.0)


def test_sign_errors_count_pairs_on_opposite_sides_of_dense():
    assert stats.sign_errors([1.2, 0.9, 1.5, 0.8], [1.1, 1.1, 0.7, 0.9]) == 2


def test_summary_of_published_points_has_speedup_time_and_sign_figures():
    pts = [gpu_point("a", speedup=(1.5, 1.2), dense_s=(2.0, 2.2), sparse_s=(1.0, 1.0)),
           gpu_point("b", speedup=(0.8, 1.2), dense_s=(1.0, 1.0), sparse_s=(1.0, 1.5))]
    s = stats.summarize(pts, metric="speedup")
    assert s.n == 2 and s.mape == pytest.approx((0.2 + 0.5) / 2) == s.mape_speedup
    assert s.mape_dense_time == pytest.approx(0.05) and s.mape_sparse_time == pytest.approx(0.25)
    assert s.mape_time == pytest.approx((0.1 + 0 + 0 + 0.5) / 4)
    assert s.sign_errors == 1 and s.sign_agreement == pytest.approx(0.5)
    assert s.worst == ("b", "a") and s.noise is None


def test_time_summary_of_single_kernel_points_has_no_speedup_figures():
    pts = [MeasuredPoint(id=str(t), source="cpu", device="m", arch="cpu_host", dtype="fp32", kernel="csr",
                         m=1, n=1, k=1, measured_s=t, predicted_s=1.1 * t) for t in (1.0, 2.0, 3.0, 4.0)]
    s = stats.summarize(pts, metric="time")
    assert s.n == 4 and s.mape == pytest.approx(0.1) and s.spearman == pytest.approx(1.0)
    assert s.mape_speedup is None and s.sign_errors is None and s.mape_dense_time is None


def test_points_without_measured_times_count_for_speedup_but_not_for_time():
    pts = [gpu_point("a", speedup=(1.2, 1.2)),
           MeasuredPoint(id="b", source="c", device="H100", arch="h100_2to4", dtype="fp16", kernel="cusparselt",
                         m=1, n=1, k=1, measured_speedup=1.0, predicted_speedup=1.5, predicted_s=1.0,
                         predicted_dense_s=1.5)]
    s = stats.summarize(pts, metric="speedup")
    assert s.mape_speedup == pytest.approx(0.25) and s.mape_time == pytest.approx(0.0)


def test_groups_keep_the_order_of_first_appearance_and_summarise_each():
    pts = [gpu_point("1", speedup=(1.0, 1.1), device="H100"), gpu_point("2", speedup=(1.0, 1.2), device="A100"),
           gpu_point("3", speedup=(1.0, 1.3), device="H100", dtype="int8")]
    groups = stats.grouped(pts, ("device", "dtype"), metric="speedup")
    assert [g.key for g in groups] == [("H100", "fp16"), ("A100", "fp16"), ("H100", "int8")]
    assert [g.summary.n for g in groups] == [1, 1, 1]
    assert groups[2].summary.mape == pytest.approx(0.3)


def test_repeatability_is_the_spread_of_the_pass_minima():
    pts = [MeasuredPoint(id="x", source="cpu", device="m", arch="cpu_host", dtype="fp32", kernel="dense",
                         m=1, n=1, k=1, measured_s=1.0, pass_mins_s=(1.0, 1.2))]
    noise = stats.repeatability(pts)
    assert noise.passes == 2 and noise.spread_median == pytest.approx(0.2)
    assert noise.single_pass_ape == pytest.approx(0.1)
