"""Fold arithmetic of the nm_systolic array: SCALE-Sim equations per dataflow, N:M compression."""

import math

import numpy as np
import pytest

from simsparse.archs import load_arch
from simsparse.archs.systolic_folds import Pass, compute_cycles, mapping
from simsparse.archs.systolic_patterns import compressed_k
from simsparse.engines import estimate
from simsparse.graph import lower
from simsparse.records import Gemm

AMPLE = "memory.dram_bytes_per_clk=1000000"
HUGE_SRAM = ["memory.ifmap_sram_bytes=1000000000", "memory.filter_sram_bytes=1000000000",
             "memory.ofmap_sram_bytes=1000000000"]


def arch(dataflow="ws", rows=32, cols=32, extra=()):
    return load_arch("systolic_32x32", [f"array.dataflow={dataflow}", f"array.rows={rows}",
                                        f"array.cols={cols}", AMPLE, *HUGE_SRAM, *extra])


def gemm_work(m, n, k, mask=None):
    return lower.gemm_work(name="layer", gemm=Gemm(m, n, k, "int8"), mask=mask)


def equation(sr, sc, t, rows, cols):
    return math.ceil(sr / rows) * math.ceil(sc / cols) * (2 * rows + cols + t - 2)


def test_ws_reference_case_is_5056_cycles():
    # M=64, N=128, K=256 on 32x32 WS: (Sr,Sc,T) = (256,128,64) -> 8*4 folds x 158 cycles
    plan = arch("ws").plan(gemm_work(64, 128, 256))
    assert plan.payload.compute_cycles == 5056
    assert plan.payload.folds == 32


@pytest.mark.parametrize("dataflow, expected", [
    # hand-computed for M=50, N=70, K=100 on 32x32 (no dimension divides the array)
    ("ws", 4 * 3 * (64 + 32 + 50 - 2)),    # (Sr,Sc,T) = (K,N,M) = (100,70,50)
    ("os", 2 * 3 * (64 + 32 + 100 - 2)),   # (M,N,K) = (50,70,100)
    ("is", 4 * 2 * (64 + 32 + 70 - 2)),    # (K,M,N) = (100,50,70)
])
def test_compute_cycles_follow_the_equation_for_each_dataflow(dataflow, expected):
    plan = arch(dataflow).plan(gemm_work(50, 70, 100))
    assert plan.payload.compute_cycles == expected


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_non_square_array_uses_rows_for_sr_and_cols_for_sc(dataflow):
    m, n, k, rows, cols = 64, 128, 256, 16, 8
    sr, sc, t = {"ws": (k, n, m), "os": (m, n, k), "is": (k, m, n)}[dataflow]
    plan = arch(dataflow, rows=rows, cols=cols).plan(gemm_work(m, n, k))
    assert plan.payload.compute_cycles == equation(sr, sc, t, rows, cols)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("engine", ["analytic", "cycle"])
def test_total_cycles_within_one_percent_of_equation_when_memory_is_ample(dataflow, engine):
    a = arch(dataflow)
    for m, n, k in [(64, 128, 256), (50, 70, 100), (196, 256, 1152), (1, 1000, 2048)]:
        sr, sc, t = {"ws": (k, n, m), "os": (m, n, k), "is": (k, m, n)}[dataflow]
        est = estimate(a.plan(gemm_work(m, n, k)), a, engine)
        assert est.cycles == pytest.approx(equation(sr, sc, t, 32, 32), rel=0.01)


def test_nm_compression_shrinks_reduction_to_ceil_k_n_over_m():
    assert compressed_k(256, 2, 8) == 64
    assert compressed_k(100, 1, 4) == 25
    assert compressed_k(10, 2, 8) == 3      # ceil(2.5)
    assert compressed_k(147, 2, 4) == 74    # ResNet stem: K = 3*7*7


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_2_to_8_gemm_runs_a_quarter_of_the_reduction(dataflow):
    m, n, k = 64, 128, 256
    mask = np.zeros((n, k), bool)
    mask[:, 0::8] = mask[:, 3::8] = True                 # exactly 2 of every 8
    plan = arch(dataflow).plan(gemm_work(m, n, k, mask))
    assert plan.format == "2:8"
    sr, sc, t = mapping(Pass("2:8", m, n, k, 64, 3.0), dataflow)
    assert plan.payload.compute_cycles == equation(sr, sc, t, 32, 32)
    assert plan.macs_issued == m * n * k // 4


def test_compute_cycles_helper_matches_mapping():
    p = Pass("dense", 50, 70, 100, 100, 0.0)
    assert compute_cycles(p, rows=32, cols=32, dataflow="ws") == equation(100, 70, 50, 32, 32)


def test_temporal_pieces_keep_partial_sums_on_chip_at_the_cost_of_extra_fill_and_drain():
    small_ofmap = ["memory.ofmap_sram_bytes=16384", "memory.dram_bytes_per_clk=16"]   # 8 KB half: T <= 64
    tiled = load_arch("systolic_32x32", small_ofmap)
    spilled = load_arch("systolic_32x32", small_ofmap + ["array.tile_temporal=false"])
    w = gemm_work(200, 64, 128)                              # T = 200 -> pieces 64, 64, 64, 8
    t_plan, s_plan = tiled.plan(w), spilled.plan(w)
    assert [p.work.m for p in t_plan.payload.pieces] == [64, 64, 64, 8]
    assert t_plan.payload.compute_cycles == sum(equation(128, 64, t, 32, 32) for t in (64, 64, 64, 8))
    assert s_plan.payload.compute_cycles == equation(128, 64, 200, 32, 32)
    assert t_plan.payload.dram_bytes_by_operand["psum"] == 0
    assert s_plan.payload.dram_bytes_by_operand["psum"] > 0
    assert t_plan.bytes_by_level["dram"] < s_plan.bytes_by_level["dram"]


def test_grouped_conv_mask_stacks_groups_rows():
    a = arch("ws")
    mask = np.zeros((4 * 16, 36), bool)
    mask[:, ::4] = True                                       # 1:4 in every group
    w = lower.gemm_work(name="g", gemm=Gemm(49, 16, 36, "int8", count=4), mask=mask, op_kind="conv")
    plan = a.plan(w)
    assert plan.format == "1:4"
    assert plan.macs_issued == 4 * 49 * 16 * 9
    assert plan.macs_effective == 4 * 49 * 16 * 9
    assert plan.payload.wasted_slots == 0
