"""The cpu_simd model: kernel plans, kernel choice, monotonicity, placement and the two engines."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from simsparse.archs import load_arch
from simsparse.archs.cpu_simd import place
from simsparse.engines import estimate
from simsparse.errors import PatternError
from simsparse.graph.lower import gemm_work
from simsparse.masks.synthetic import make_matrix
from simsparse.records import Gemm, LayerWork


def work(m: int, n: int, k: int, pattern: str | None, *, seed: int = 0) -> LayerWork:
    mask = make_matrix(n, k, pattern, seed=seed) if pattern else None
    return gemm_work(name="fc", gemm=Gemm(m=m, n=n, k=k, dtype="fp32"), mask=mask)


@pytest.fixture(scope="module")
def spr():
    return load_arch("spr_socket", ["software.threads=4"])


def latency(model, w, kernel=None, engine="analytic"):
    return estimate(model.plan(w, kernel=kernel), model, engine).latency_s


def test_condensed_is_chosen_at_batch_1_for_a_90_percent_constant_fan_in_layer(spr):
    assert spr.plan(work(1, 3072, 768, "fanin=77")).format == "condensed"


def test_dense_is_chosen_at_large_batch_for_a_half_dense_layer(spr):
    assert spr.plan(work(1024, 768, 768, "fanin=384")).format == "dense"


def test_dense_layer_without_mask_runs_dense(spr):
    assert spr.plan(work(8, 256, 256, None)).format == "dense"


def test_choice_note_ranks_every_suitable_kernel(spr):
    note = spr.plan(work(1, 512, 512, "fanin=32")).notes[-1]
    assert note.startswith("kernel choice:") and all(k in note for k in ("dense", "csr", "condensed"))


def test_forced_condensed_on_varying_fan_in_is_refused(spr):
    with pytest.raises(PatternError, match="constant fan-in"):
        spr.plan(work(1, 128, 256, "density=0.1"), kernel="condensed")


def test_forced_shrunk_needs_removed_channels(spr):
    with pytest.raises(PatternError, match="all-zero rows"):
        spr.plan(work(1, 128, 256, "fanin=16"), kernel="shrunk")
    assert spr.plan(work(1, 128, 256, "channels=0.5"), kernel="shrunk").format == "shrunk"


def test_dense_baseline_of_a_sparse_layer_equals_the_dense_layer(spr):
    sparse, full = work(16, 512, 256, "fanin=16"), work(16, 512, 256, None)
    assert latency(spr, sparse, None) > 0
    assert estimate(spr.plan(sparse, dense=True), spr, "analytic").latency_s == pytest.approx(latency(spr, full))


def test_fully_dense_mask_issues_all_macs_on_every_kernel(spr):
    w = work(4, 64, 128, "dense")
    for kernel in ("dense", "csr", "condensed"):
        assert spr.plan(w, kernel=kernel).macs_issued == 4 * 64 * 128


def test_csr_issues_exactly_the_nonzero_macs(spr):
    w = work(8, 256, 512, "density=0.1")
    assert spr.plan(w, kernel="csr").macs_issued == 8 * int(w.mask.sum())


@settings(max_examples=25, deadline=None)
@given(kernel=st.sampled_from(["csr", "condensed", "dense"]), m=st.sampled_from([1, 2, 7, 16, 33, 256]),
       n=st.integers(8, 300), k=st.integers(16, 700), f1=st.integers(1, 16), extra=st.integers(0, 64))
def test_more_nonzeros_never_predicts_faster(spr, kernel, m, n, k, f1, extra):
    f2 = min(k, f1 + extra)
    t1 = latency(spr, work(m, n, k, f"fanin={min(f1, k)}"), kernel)
    t2 = latency(spr, work(m, n, k, f"fanin={f2}"), kernel)
    assert t2 >= t1 * (1 - 1e-12)


@settings(max_examples=15, deadline=None)
@given(kernel=st.sampled_from(["dense", "csr", "condensed", "nm"]), m=st.sampled_from([1, 3, 64]),
       n=st.integers(16, 256), k=st.sampled_from([64, 200, 512]))
def test_engines_agree_when_rows_split_evenly(kernel, m, n, k):
    model = load_arch("spr_socket", ["software.threads=1"])
    w = work(m, n, k, "2:8")
    a, c = latency(model, w, kernel, "analytic"), latency(model, w, kernel, "cycle")
    assert c == pytest.approx(a, rel=0.02)


@pytest.mark.parametrize("m, n, k", [(1, 2, 100_000), (12, 20, 50_000)])   # memory-bound, compute-bound
def test_engines_agree_on_a_layer_with_fewer_work_units_than_threads(m, n, k):
    model = load_arch("spr_socket")                  # 56 threads; the layer's rows keep 1 or 2 of them busy
    plan = model.plan(work(m, n, k, None), kernel="dense")
    assert estimate(plan, model, "cycle").latency_s == pytest.approx(estimate(plan, model, "analytic").latency_s,
                                                                     rel=model.engines_agree_rel)


def test_cycle_engine_sees_idle_cores_of_an_uneven_split():
    model = load_arch("spr_socket", ["software.threads=2", "software.parallel_eff=1.0"])
    w = work(1, 3, 4096, "fanin=4096")            # 3 rows on 2 threads: blocks of 2 and 1
    plan = model.plan(w, kernel="dense")
    assert estimate(plan, model, "cycle").latency_s > estimate(plan, model, "analytic").latency_s


def test_more_threads_predict_faster_for_a_large_layer():
    w = work(64, 2048, 2048, "fanin=205")
    one = load_arch("spr_socket", ["software.threads=1"])
    many = load_arch("spr_socket", ["software.threads=16"])
    assert latency(many, w, "condensed") < latency(one, w, "condensed")


def test_cold_cache_serves_the_weights_from_main_memory():
    warm = load_arch("spr_socket")
    cold = load_arch("spr_socket", ["memory.cache_state=cold"])
    w = work(1, 2048, 2048, "fanin=256")        # 3 MiB of values + indices: fits the LLC when warm
    assert "dram" not in warm.plan(w, kernel="condensed").bytes_by_level
    assert cold.plan(w, kernel="condensed").bytes_by_level["dram"] > 0
    assert latency(cold, w, "condensed") > latency(warm, w, "condensed")


def test_placement_splits_a_working_set_larger_than_a_level(spr):
    levels = spr.spec.levels
    cap_l1 = levels[0].bytes * spr.spec.fill_fraction
    split = place(bytes_moved=100.0, working_set_bytes=2 * cap_l1, levels=levels, threads=1,
                  fill_fraction=spr.spec.fill_fraction, cold=False)
    assert split["l1"] == pytest.approx(50.0) and split["l2"] == pytest.approx(50.0)


def test_memory_op_is_planned_as_bytes_over_bandwidth(spr):
    w = LayerWork(name="relu", kind="memory", op_kind="elementwise", bytes_moved=1 << 20, elements=1 << 18)
    plan = spr.plan(w)
    assert plan.format == "memory" and sum(plan.bytes_by_level.values()) == pytest.approx(1 << 20)
    assert estimate(plan, spr, "analytic").latency_s > 0


def test_batched_gemms_cost_count_times_one(spr):
    one = LayerWork(name="qk", kind="gemm", op_kind="matmul", gemm=Gemm(m=64, n=64, k=64, dtype="fp32"))
    twelve = LayerWork(name="qk", kind="gemm", op_kind="matmul", gemm=Gemm(m=64, n=64, k=64, dtype="fp32", count=12))
    assert latency(spr, twelve) == pytest.approx(12 * latency(spr, one))


def test_estimate_reports_flops_and_bytes(spr):
    w = work(2, 256, 256, "fanin=32")
    e = estimate(spr.plan(w, kernel="condensed"), spr, "analytic")
    assert e.flops_dense == 2 * 2 * 256 * 256 and e.flops_effective == 2 * 2 * 256 * 32
    assert e.format == "condensed" and sum(e.bytes_by_level.values()) > 256 * 32 * 6
