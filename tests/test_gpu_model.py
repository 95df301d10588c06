"""Oracle tests of the GPU 2:4 sparse tensor-core model (a100_2to4)."""

from __future__ import annotations

import numpy as np
import pytest

from simsparse.archs import load_arch
from simsparse.engines import estimate
from simsparse.graph.lower import gemm_work
from simsparse.masks.synthetic import two_four_checkerboard
from simsparse.records import Gemm, LayerWork


def work_for(mask: np.ndarray, m: int, dtype: str = "fp16") -> LayerWork:
    n, k = mask.shape
    return gemm_work(name="layer.weight", gemm=Gemm(m=m, n=n, k=k, dtype=dtype), mask=mask)


def speedup(model, work: LayerWork, engine: str = "analytic") -> tuple[float, object, object]:
    sparse = estimate(model.plan(work), model, engine)
    dense = estimate(model.plan(work, dense=True), model, engine)
    return dense.latency_s / sparse.latency_s, sparse, dense


@pytest.mark.parametrize("engine", ["analytic", "cycle"])
def test_fully_dense_mask_costs_exactly_the_dense_baseline(a100, engine):
    ratio, sparse, _ = speedup(a100, work_for(np.ones((512, 1024), dtype=bool), m=2048), engine)
    assert ratio == 1.0
    assert sparse.format == "dense"


def test_two_four_mask_on_large_gemm_issues_half_the_macs(a100):
    work = work_for(two_four_checkerboard(4096, 4096), m=8192)
    plan = a100.plan(work)
    assert plan.format == "2:4"
    assert plan.macs_issued == plan.macs_dense // 2


@pytest.mark.parametrize("m,n,k", [(8192, 4096, 4096), (196608, 768, 3072), (16384, 1024, 8192)])
def test_two_four_speedup_is_real_but_never_above_two(a100, m, n, k):
    ratio, sparse, dense = speedup(a100, work_for(two_four_checkerboard(n, k), m=m))
    assert 1.2 < ratio <= 2.0
    assert sparse.flops_executed == pytest.approx(dense.flops_executed / 2)


def test_non_compliant_mask_falls_back_to_dense_and_says_so(a100):
    rng = np.random.default_rng(0)
    mask = rng.random((256, 512)) < 0.5
    ratio, sparse, _ = speedup(a100, work_for(mask, m=4096))
    assert sparse.format == "dense"
    assert ratio == 1.0
    assert any("not 2:4" in note and "%" in note for note in sparse.notes)


def test_tf32_needs_one_of_two_not_two_of_four(a100):
    row = np.tile(np.array([True, True, False, False]), 256)
    mask = np.stack([row if i % 2 == 0 else ~row for i in range(128)])   # 2:4 but not 1:2
    assert a100.plan(work_for(mask, m=4096, dtype="fp16")).format == "2:4"
    fallback = a100.plan(work_for(mask, m=4096, dtype="tf32"))
    assert fallback.format == "dense" and any("1:2" in note for note in fallback.notes)


def test_removed_output_rows_run_dense_the_graph_layer_shrinks_the_network(a100):
    rng = np.random.default_rng(1)
    mask = rng.random((1024, 1024)) < 0.7
    mask[::2] = False                                      # half the output channels removed
    plan = a100.plan(work_for(mask, m=8192))               # as PyTorch runs an unshrunk layer
    assert plan.format == "dense"
    assert plan.padded.n == 1024


def test_single_token_is_slower_sparse_than_dense_in_eager_pytorch(a100):
    eager = a100.with_software("pytorch-eager")          # cuSPARSELt's per-call plan set-up on the host
    ratio, sparse, _ = speedup(eager, work_for(two_four_checkerboard(4096, 4096), m=1))
    assert ratio < 1.0
    assert sparse.bound == "overhead"
    assert sparse.m == 1 and sparse.n == 4096 and sparse.k == 4096


def test_estimate_reports_flops_and_metadata_bytes(a100):
    cold = load_arch("a100_2to4", overrides=["software.profiles.kernel.warm_l2=false"])   # every operand from HBM
    m, n, k = 4096, 2048, 1024
    work = work_for(two_four_checkerboard(n, k), m=m)
    plan = cold.plan(work)
    est = estimate(plan, cold, "analytic")
    assert est.flops_dense == 2 * m * n * k
    assert est.flops_effective == 2 * m * (n * k // 2)
    assert plan.metadata_bytes == n * k / 8
    assert est.bytes_by_level["hbm"] >= n * k * 2 * 0.5625 + m * k * 2 + m * n * 2
    assert est.cycles == pytest.approx(est.latency_s * cold.spec.clock_hz)
    assert 0.0 < est.density <= 0.5


def test_memory_op_is_bytes_over_bandwidth_plus_launch(a100):
    moved = 512 * 2**20
    work = LayerWork(name="bn1", kind="memory", op_kind="norm", bytes_moved=moved, elements=moved // 4)
    est = estimate(a100.plan(work), a100, "analytic")
    spec = a100.spec
    floor = moved / (spec.hbm_bytes_per_s * spec.hbm_efficiency)
    assert est.format == "memory" and est.bound == "memory"
    assert floor < est.latency_s < floor * 1.05 + spec.launch_gap_s + spec.latency_s


def test_cutlass_backend_is_chosen_by_set(a100):
    cutlass = load_arch("a100_2to4", overrides=["software.backend=cutlass"])
    work = work_for(two_four_checkerboard(768, 3072), m=49152)
    assert cutlass.plan(work).payload.call.library == "cutlass"
    assert a100.plan(work).payload.call.library == "cusparselt"
