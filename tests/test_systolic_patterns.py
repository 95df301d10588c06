"""Pattern choice of the nm_systolic array: tightest supported N:M, row-wise N:M, dense fallback."""

from dataclasses import replace

import numpy as np
import pytest

from simsparse.archs import load_arch
from simsparse.errors import GeometryError
from simsparse.graph.lower import gemm_work
from simsparse.records import Gemm, LayerWork


def work(mask, m=64):
    n, k = mask.shape
    return gemm_work(name="layer", gemm=Gemm(m, n, k, "int8"), mask=mask)


def nm_mask(n, k, keep, group, seed=0):
    """Every group of `group` along k keeps exactly `keep` random positions."""
    rng = np.random.default_rng(seed)
    scores = rng.random((n, k // group, group))
    idx = np.argsort(scores, axis=2)[:, :, :keep]
    mask = np.zeros((n, k // group, group), bool)
    np.put_along_axis(mask, idx, True, axis=2)
    return mask.reshape(n, k)


def test_exact_2_to_8_mask_runs_2_to_8_with_no_wasted_slots():
    arch = load_arch("systolic_32x32")
    plan = arch.plan(work(nm_mask(64, 256, 2, 8)))
    assert plan.format == "2:8"
    assert plan.payload.wasted_slots == 0
    assert plan.metadata_bytes > 0


def test_looser_fit_picks_tightest_covering_pattern_and_reports_wasted_slots():
    mask = nm_mask(64, 256, 2, 8)
    mask[0, 0:8] = [1, 1, 1, 0, 0, 0, 0, 0]   # one group holds 3 of 8 (3 of 4): 2:8 and 2:4 no longer fit
    arch = load_arch("systolic_32x32")        # supports 1:4 2:4 1:8 2:8 4:8
    plan = arch.plan(work(mask))
    assert plan.format == "4:8"
    assert plan.payload.wasted_slots == 64 * 128 - int(mask.sum())
    assert "4:8" in plan.notes[0] and "weight slots hold zeros" in plan.notes[0]


def test_dense_mask_plan_issues_all_macs():
    arch = load_arch("systolic_32x32")
    w = LayerWork(name="l", kind="gemm", op_kind="linear", gemm=Gemm(64, 128, 256, "int8"))
    plan = arch.plan(w)
    assert plan.format == "dense"
    assert plan.macs_issued == plan.macs_dense == 64 * 128 * 256
    assert plan.metadata_bytes == 0


def test_2_to_4_gemm_on_2_to_4_hardware_issues_half_the_macs():
    arch = load_arch("vegeta_like", ["sparsity.row_wise.enabled=false"])
    plan = arch.plan(work(nm_mask(32, 128, 2, 4)))
    assert plan.format == "2:4"
    assert plan.macs_issued * 2 == plan.macs_dense


def test_mask_fitting_no_supported_pattern_runs_dense_and_says_so():
    rng = np.random.default_rng(1)
    mask = rng.random((64, 256)) < 0.6        # unstructured: some 8-groups hold 8 of 8
    mask[:, :8] = True
    arch = load_arch("s2ta_like")             # supports only N:8 with N <= 4
    plan = arch.plan(work(mask))
    assert plan.format == "dense"
    assert plan.macs_issued == plan.macs_dense
    assert any("fits no supported pattern" in n and "runs dense" in n for n in plan.notes)


def test_row_wise_nm_gives_each_row_its_own_n_and_skips_empty_rows():
    arch = load_arch("vegeta_like")           # 1:4, 2:4 uniform + row-wise N:4 with N in {1, 2}
    mask = np.zeros((48, 128), bool)
    mask[:16] = nm_mask(16, 128, 1, 4)        # 16 rows 1:4
    mask[16:40] = nm_mask(24, 128, 2, 4, seed=3)   # 24 rows 2:4
    mask[40:44, :] = True                     # 4 dense rows; rows 44..47 empty
    plan = arch.plan(work(mask))
    assert plan.format == "row-wise:4"
    tiers = {p.work.label: p.work.n for p in plan.payload.pieces}
    assert tiers == {"1:4": 16, "2:4": 24, "dense": 4}
    assert plan.macs_issued == 64 * (16 * 32 + 24 * 64 + 4 * 128)
    assert any("4 empty rows skipped" in n for n in plan.notes)


def test_row_wise_beats_uniform_when_rows_differ():
    mask = np.zeros((64, 256), bool)
    mask[:48] = nm_mask(48, 256, 1, 4)
    mask[48:] = nm_mask(16, 256, 2, 4, seed=5)
    uniform = load_arch("vegeta_like", ["sparsity.row_wise.enabled=false"]).plan(work(mask))
    rowwise = load_arch("vegeta_like").plan(work(mask))
    assert uniform.format == "2:4"
    assert rowwise.payload.compute_cycles < uniform.payload.compute_cycles


def test_the_choice_needs_only_the_measured_pattern_not_the_mask():
    mask = nm_mask(64, 256, 1, 8)
    with_mask = work(mask)
    pattern_only = replace(with_mask, mask=None)           # e.g. a synthetic pattern of a huge GEMM
    arch = load_arch("systolic_32x32")
    assert arch.plan(pattern_only).format == arch.plan(with_mask).format == "1:8"
    assert arch.plan(pattern_only).macs_issued == arch.plan(with_mask).macs_issued


def test_mask_of_wrong_shape_is_a_geometry_error():
    w = gemm_work(name="l", gemm=Gemm(8, 16, 32, "int8"), mask=np.ones((32, 16), bool))
    with pytest.raises(GeometryError, match="does not match"):
        load_arch("systolic_32x32").plan(w)


def test_dense_baseline_ignores_the_mask():
    plan = load_arch("systolic_32x32").plan(work(nm_mask(64, 256, 2, 8)), dense=True)
    assert plan.format == "dense" and plan.macs_issued == plan.macs_dense
