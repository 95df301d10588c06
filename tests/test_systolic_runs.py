"""Runs: equal temporal pieces and equal m chunks are kept once with a repeat count, and both
engines time them exactly as if every fold were written out (so a layer's rows cost nothing)."""

import pytest

from simsparse.archs import load_arch
from simsparse.archs.systolic_pipeline import closed_form
from simsparse.engines import estimate
from simsparse.engines.systolic_analytic import plan_stream
from simsparse.engines.systolic_event import simulate
from simsparse.graph import lower
from simsparse.records import Gemm


def gemm_work(m, n, k):
    return lower.gemm_work(name="layer", gemm=Gemm(m, n, k, "int8"))


def arch(dataflow, bw, extra=()):
    return load_arch("systolic_32x32", [f"array.dataflow={dataflow}", f"memory.dram_bytes_per_clk={bw}",
                                        "memory.ofmap_sram_bytes=16384", *extra])


def written_out(stream):
    return stream.take([r for _, r in stream.block_runs()])


CONFIGS = [(df, bw, extra) for df in ("ws", "os", "is") for bw in (1, 4, 16, 64)
           for extra in ((), ("memory.double_buffered=false",))]


@pytest.mark.parametrize("dataflow, bw, extra", CONFIGS)
def test_the_closed_form_of_runs_equals_that_of_every_fold_written_out(dataflow, bw, extra):
    a = arch(dataflow, bw, extra)
    for shape in [(3000, 100, 200), (1000, 64, 576)]:
        stream = plan_stream(a.plan(gemm_work(*shape)), a)
        assert any(r > 3 for _, r in stream.block_runs()), shape          # the case has runs to replicate
        double = not extra
        runs, full = closed_form(stream, double_buffered=double), closed_form(written_out(stream), double_buffered=double)
        assert runs.cycles == pytest.approx(full.cycles, rel=1e-12)
        assert runs.dram_cycles == pytest.approx(full.dram_cycles, rel=1e-12)


@pytest.mark.parametrize("dataflow, bw, extra", CONFIGS)
def test_the_cycle_engine_replicates_runs_and_matches_the_fold_by_fold_simulation(dataflow, bw, extra):
    a = arch(dataflow, bw, extra)
    slots = 1 if extra else 2
    stream = plan_stream(a.plan(gemm_work(3000, 100, 200)), a)
    (runs, notes), (full, _) = simulate(stream, slots=slots), simulate(written_out(stream), slots=slots)
    assert runs.cycles == pytest.approx(full.cycles, rel=1e-12)
    assert any("folds simulated for" in n for n in notes)


def test_plan_bytes_are_those_of_every_fold_written_out():
    for dataflow in ("ws", "os", "is"):
        a = arch(dataflow, 4)
        plan = a.plan(gemm_work(3000, 100, 200))
        full = written_out(plan_stream(plan, a))
        assert plan.bytes_by_level["dram"] == pytest.approx((full.fill.sum() + full.writeback.sum()) * 4, rel=1e-12)
        assert plan.payload.folds == full.compute.size


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_a_hundred_million_row_gemm_is_a_handful_of_runs_and_both_engines_agree(dataflow):
    a = load_arch("systolic_32x32", [f"array.dataflow={dataflow}"])
    plan = a.plan(gemm_work(100_000_000, 768, 3072))
    stream = plan_stream(plan, a)
    assert len(plan.payload.pieces) <= 3 and stream.compute.size < 10_000
    analytic, cycle = estimate(plan, a, "analytic"), estimate(plan, a, "cycle")
    assert cycle.cycles == pytest.approx(analytic.cycles, rel=type(a).engines_agree_rel)
    assert plan.payload.folds == sum(n * r for n, r in stream.block_runs()) > 3_000_000
    simulated = [n for n in cycle.notes if "folds simulated for" in n]
    assert simulated and int(simulated[0].split()[2]) < 100_000
