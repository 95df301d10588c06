"""Timing, stalls and energy of the nm_systolic engines (analytic closed form and simpy cycle)."""

import numpy as np
import pytest

from simsparse.archs import load_arch
from simsparse.engines import estimate
from simsparse.engines.systolic_analytic import analytic_timing
from simsparse.engines.systolic_event import cycle_timing
from simsparse.graph import lower
from simsparse.records import Gemm, LayerWork, sum_estimates


def gemm_work(m, n, k, name="layer", mask=None):
    return lower.gemm_work(name=name, gemm=Gemm(m, n, k, "int8"), mask=mask)


def arch_with_bandwidth(bytes_per_clk, extra=()):
    return load_arch("systolic_32x32", [f"memory.dram_bytes_per_clk={bytes_per_clk}", *extra])


@pytest.mark.parametrize("timing", [analytic_timing, cycle_timing])
def test_stall_cycles_fall_as_dram_bandwidth_rises_and_vanish_when_ample(timing):
    w = gemm_work(196, 256, 1152)
    stalls = [timing(a.plan(w), a).stall_cycles
              for a in (arch_with_bandwidth(bw) for bw in (1, 4, 16, 64, 1e6))]
    assert stalls[0] > 0
    assert all(a >= b for a, b in zip(stalls, stalls[1:]))
    assert stalls[0] > stalls[2]
    assert stalls[-1] == 0


def test_memory_bound_layer_is_reported_memory_bound():
    a = arch_with_bandwidth(1)
    est = estimate(a.plan(gemm_work(196, 256, 1152)), a, "cycle")
    assert est.bound == "memory"
    assert est.cycles > a.plan(gemm_work(196, 256, 1152)).payload.compute_cycles


@pytest.mark.parametrize("bw", [2, 8, 16, 64])
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_analytic_agrees_with_cycle_engine_within_one_percent(bw, dataflow):
    a = arch_with_bandwidth(bw, [f"array.dataflow={dataflow}"])
    for m, n, k in [(64, 128, 256), (50, 70, 100), (196, 256, 1152), (3136, 64, 64)]:
        plan = a.plan(gemm_work(m, n, k))
        sim, closed = cycle_timing(plan, a).cycles, analytic_timing(plan, a).cycles
        assert closed == pytest.approx(sim, rel=0.01)
        assert sim >= plan.payload.compute_cycles


def test_single_buffered_srams_overlap_nothing():
    w = gemm_work(64, 128, 256)
    double = arch_with_bandwidth(16)
    single = arch_with_bandwidth(16, ["memory.double_buffered=false"])
    t_single = cycle_timing(single.plan(w), single)
    assert t_single.cycles > cycle_timing(double.plan(w), double).cycles
    assert t_single.cycles == pytest.approx(t_single.compute_cycles + t_single.dram_cycles)
    assert analytic_timing(single.plan(w), single).cycles == pytest.approx(t_single.cycles)


def test_energy_adds_up_over_layers():
    a = load_arch("systolic_32x32")
    layers = [gemm_work(64, 128, 256, "a"), gemm_work(196, 256, 1152, "b"), gemm_work(1, 1000, 2048, "c")]
    ests = [estimate(a.plan(w), a, "analytic") for w in layers]
    total = sum_estimates(ests)
    assert total.energy_j == pytest.approx(sum(e.energy_j for e in ests))
    assert all(e.energy_j > 0 for e in ests)


def test_mac_energy_is_macs_issued_times_pj_per_mac():
    zero = ["energy_pj.sram_read_byte=0", "energy_pj.sram_write_byte=0", "energy_pj.dram_byte=0",
            "energy_pj.metadata_bit=0"]
    a = load_arch("systolic_32x32", zero)
    mask = np.zeros((128, 256), bool)
    mask[:, ::4] = True
    plan = a.plan(gemm_work(64, 128, 256, mask=mask))
    assert plan.format == "1:4"
    assert estimate(plan, a, "cycle").energy_j == pytest.approx(plan.macs_issued * 0.3e-12)


def test_sparse_layer_moves_fewer_weight_bytes_but_pays_metadata():
    a = load_arch("systolic_32x32")
    mask = np.zeros((128, 256), bool)
    mask[:, 1::8] = mask[:, 2::8] = True                     # 2:8, but 2 of 4 in one half: not 1:4
    sparse, dense = a.plan(gemm_work(64, 128, 256, mask=mask)), a.plan(gemm_work(64, 128, 256))
    assert sparse.format == "2:8"
    s_ops, d_ops = sparse.payload.dram_bytes_by_operand, dense.payload.dram_bytes_by_operand
    assert s_ops["filter"] == pytest.approx(d_ops["filter"] / 4)
    assert s_ops["metadata"] == pytest.approx(128 * 64 * 3 / 8)
    assert s_ops["ifmap"] == pytest.approx(d_ops["ifmap"])   # inputs are read uncompressed


def test_memory_layer_streams_at_dram_or_vector_rate():
    a = load_arch("systolic_32x32")                            # 16 B/clk, 32 elements/clk
    w = LayerWork(name="relu", kind="memory", op_kind="elementwise", bytes_moved=32000, elements=16000)
    for engine in ("analytic", "cycle"):
        est = estimate(a.plan(w), a, engine)
        assert est.cycles == pytest.approx(2000) and est.bound == "memory"
    w = LayerWork(name="norm", kind="memory", op_kind="norm", bytes_moved=1600, elements=16000)
    assert estimate(a.plan(w), a, "analytic").cycles == pytest.approx(500)


def test_batched_matmul_count_multiplies_cycles_bytes_and_energy():
    a = load_arch("systolic_32x32")
    one = estimate(a.plan(gemm_work(64, 64, 64)), a, "cycle")
    w = LayerWork(name="attn", kind="gemm", op_kind="matmul", gemm=Gemm(64, 64, 64, "int8", count=12))
    twelve = estimate(a.plan(w), a, "cycle")
    assert twelve.cycles == pytest.approx(12 * one.cycles)
    assert twelve.bytes_by_level["dram"] == pytest.approx(12 * one.bytes_by_level["dram"])
    assert twelve.energy_j == pytest.approx(12 * one.energy_j)


def test_latency_is_cycles_over_clock():
    a = load_arch("vegeta_like")
    est = estimate(a.plan(gemm_work(64, 128, 256)), a, "analytic")
    assert est.latency_s == pytest.approx(est.cycles / 2.0e9)
