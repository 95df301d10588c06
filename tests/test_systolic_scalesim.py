"""memory.reuse: scalesim — SCALE-Sim v3's scratchpads, cycle for cycle; both engines; golden table.

tests/data/scalesim_golden.csv holds cycles SCALE-Sim 3.0.0 printed for a few GEMMs (its header
says how they were run; `benchmarks/bench_vs_scalesim.py --write-golden` writes it).
"""

import csv
from pathlib import Path

import numpy as np
import pytest

from simsparse.archs import load_arch
from simsparse.archs.nm_systolic import NmSystolic
from simsparse.engines.systolic_analytic import analytic_timing
from simsparse.engines.systolic_event import cycle_timing
from simsparse.errors import GeometryError, SpecError
from simsparse.graph import lower
from simsparse.records import Gemm, LayerWork
from simsparse.resources import data_dir
from simsparse.specs import load_yaml

GOLDEN = Path(__file__).parent / "data" / "scalesim_golden.csv"


def scalesim_arch(dataflow="ws", sram_kb=64, bw=10, nm=None, rows=32, cols=32):
    sets = [f"array.dataflow={dataflow}", f"array.rows={rows}", f"array.cols={cols}", "array.tile_temporal=false",
            "memory.reuse=scalesim", f"memory.dram_bytes_per_clk={bw}", f"memory.ifmap_sram_bytes={sram_kb * 1024}",
            f"memory.filter_sram_bytes={sram_kb * 1024}", f"memory.ofmap_sram_bytes={sram_kb * 1024}"]
    if nm:
        sets += [f"sparsity.patterns=['{nm}']", "sparsity.metadata_bits_per_value={4: 0, 8: 0}"]
    return load_arch("systolic_32x32", sets)


def scalesim_mask(n, k, nm):
    """SCALE-Sim's layer-wise N:M: the first N of every M reduction positions, in every filter."""
    keep, group = (int(x) for x in nm.split(":"))
    return np.broadcast_to(np.arange(k) % group < keep, (n, k)).copy()


def work(m, n, k, nm=None):
    mask = scalesim_mask(n, k, nm) if nm else None
    return lower.gemm_work(name="gemm", gemm=Gemm(m, n, k, "int8"), mask=mask)


def golden_rows():
    with open(GOLDEN) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@pytest.mark.parametrize("row", golden_rows(), ids=lambda r: f"{r['dataflow']}-{r['m']}x{r['n']}x{r['k']}-"
                         f"{r['nm']}-{r['ifmap_kb']}KB-{r['bw']}w")
def test_analytic_engine_reproduces_scalesim_golden_cycles_exactly(row):
    assert row["ifmap_kb"] == row["filter_kb"] == row["ofmap_kb"]
    nm = None if row["nm"] == "1:1" else row["nm"]
    a = scalesim_arch(row["dataflow"], int(row["ifmap_kb"]), int(row["bw"]), nm, int(row["rows"]), int(row["cols"]))
    plan = a.plan_format(work(int(row["m"]), int(row["n"]), int(row["k"]), nm), row["nm"] if nm else "dense")
    t = analytic_timing(plan, a)
    # SCALE-Sim prints the index of the last cycle: counts are one more
    assert t.compute_cycles + t.stall_cycles == int(row["total_cycles"]) + 1
    assert t.stall_cycles == int(row["stall_cycles"])
    assert t.cycles == int(row["total_cycles_incl_prefetch"]) + 1


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("sram_kb, bw", [(1, 1), (4, 2), (16, 10), (1024, 256)])
@pytest.mark.parametrize("shape, nm", [((50, 70, 100), None), ((64, 96, 256), "2:4"), ((33, 40, 72), "1:8")])
def test_cycle_engine_agrees_with_analytic_to_the_cycle(dataflow, sram_kb, bw, shape, nm):
    a = scalesim_arch(dataflow, sram_kb, bw, nm)
    plan = a.plan_format(work(*shape, nm), nm or "dense")
    closed, sim = analytic_timing(plan, a), cycle_timing(plan, a)
    assert (sim.cycles, sim.stall_cycles, sim.drain_cycles) == (closed.cycles, closed.stall_cycles, closed.drain_cycles)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_no_stalls_when_srams_hold_everything_and_bandwidth_is_ample(dataflow):
    for reuse in ("scalesim", "ideal-tiling"):
        sets = [f"array.dataflow={dataflow}", "array.tile_temporal=false", f"memory.reuse={reuse}",
                "memory.dram_bytes_per_clk=256"] + [f"memory.{s}_sram_bytes={1 << 20}" for s in ("ifmap", "filter", "ofmap")]
        a = load_arch("systolic_32x32", sets)
        for shape in [(64, 128, 256), (100, 300, 200), (17, 33, 65)]:
            t = analytic_timing(a.plan(work(*shape)), a)
            assert t.stall_cycles == 0, (reuse, shape)


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_scalesim_stalls_grow_as_interface_bandwidth_falls(dataflow):
    for shape in [(64, 128, 256), (196, 192, 384), (129, 65, 97)]:
        stalls = [analytic_timing(a.plan(work(*shape)), a).stall_cycles
                  for a in (scalesim_arch(dataflow, 16, bw) for bw in (64, 16, 8, 4, 2, 1))]
        assert stalls == sorted(stalls) and stalls[-1] > stalls[0], shape


def test_scalesim_can_stall_more_with_a_larger_sram_as_scalesim_does():
    # a 128 KB window laps the operand worse than a 64 KB one here; SCALE-Sim agrees (golden rows)
    w = work(196, 192, 384)
    small, large = (analytic_timing(a.plan(w), a).stall_cycles for a in (scalesim_arch("os", kb, 10) for kb in (64, 128)))
    assert large > 5 * small


def test_a_repeated_miss_pays_its_wait_twice_then_the_next_one_pays_less():
    from simsparse.archs.systolic_memory import read_stall
    assert read_stall([110.0], cycle=100) == 2 * (110 - 100 - 1)   # SCALE-Sim counts a wait twice
    assert read_stall([90.0], cycle=100) == -11                      # done long ago: no wait (clipped at 0)
    # two prefetches on one line: offset 1 + 2*9 = 19, then 120 - (100 + 19) = 1 waits twice: 21 - 1
    assert read_stall([110.0, 120.0], cycle=100) == 20


def test_a_chain_of_prefetches_stalls_as_its_prefetches_listed_one_by_one():
    from simsparse.archs.systolic_fetch_order import ReadMisses
    from simsparse.archs.systolic_memory import chain_stall, prefetch_done, read_stall
    rng = np.random.default_rng(3)
    for _ in range(3000):
        d, first, count = int(rng.integers(2, 40)), int(rng.integers(0, 300)), int(rng.integers(0, 400))
        cycle = float(rng.integers(-5, 20000)) + (0.5 if rng.random() < 0.2 else 0.0)
        m = ReadMisses("filter", (), (), d, 0, 0.0)
        assert chain_stall(m, first=first, count=count, cycle=cycle) == \
            read_stall(prefetch_done(m, first=first, count=count), cycle=cycle)


def test_scalesim_layerwise_nm_fetches_only_the_kept_activations():
    a = scalesim_arch("ws", 64, 10, "2:4")
    plan = a.plan(work(64, 128, 256, "2:4"))          # the fastest format here is the 2:4 one
    layer = plan.payload.scalesim[0].layer
    assert plan.format == "2:4" and (layer.sr, layer.sc, layer.t) == (128, 128, 64)
    assert layer.ifmap_words_per_element == 1.0 and layer.filter_words_per_element == 1.0


@pytest.mark.parametrize("field, value, message", [
    ("array.tile_temporal", True, "array.tile_temporal = True is invalid with memory.reuse = 'scalesim'"),
    ("memory.double_buffered", False, "memory.double_buffered = False is invalid with memory.reuse = 'scalesim'"),
])
def test_scalesim_reuse_rejects_settings_scalesim_has_not(field, value, message):
    d = load_yaml(data_dir("accelerators") / "systolic_32x32.yaml")
    d["memory"]["reuse"] = "scalesim"
    d["array"]["tile_temporal"] = False
    section, key = field.split(".")
    d[section][key] = value
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        NmSystolic.from_data(d, source="x.yaml")


def test_scalesim_reuse_needs_a_whole_word_per_cycle():
    a = load_arch("systolic_32x32", ["array.tile_temporal=false", "memory.reuse=scalesim",
                                     "memory.dram_bytes_per_clk=1"])
    w = LayerWork(name="g", kind="gemm", op_kind="linear", gemm=Gemm(64, 64, 64, "fp16"))
    with pytest.raises(SpecError, match="below one 2-byte word per cycle"):
        a.plan(w)


def test_a_layerwise_nm_layer_can_run_slower_than_dense_under_scalesim_and_the_choice_takes_dense():
    # SCALE-Sim agrees: 114753 cycles for the 1:8 layer (golden row); simsparse's dense run is faster
    a, w = scalesim_arch("is", 16, 2, "1:8"), work(33, 129, 513, "1:8")
    sparse, chosen = a.plan_format(w, "1:8"), a.plan(w)
    assert chosen.format == "dense"
    assert analytic_timing(chosen, a).cycles < analytic_timing(sparse, a).cycles


def test_plan_format_refuses_a_format_the_mask_does_not_fit():
    with pytest.raises(GeometryError, match="format '1:8' cannot run this mask"):
        scalesim_arch("ws", 64, 10, "1:8").plan_format(work(64, 64, 64, "1:4"), "1:8")


def test_estimate_names_the_memory_system_that_timed_it():
    notes = scalesim_arch("ws", 64, 10).plan(work(64, 64, 64)).notes
    assert any("SCALE-Sim v3 scratchpads, 3 DRAM ports x 10 words/clk" in n for n in notes)
    notes = load_arch("systolic_32x32").plan(work(64, 64, 64)).notes
    assert any("ideal tiling, one 16 B/clk DRAM interface" in n for n in notes)
