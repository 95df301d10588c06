"""The analytic and cycle (simpy) engines run the same plan and agree where the closed form is exact."""

from __future__ import annotations

import pytest

from simsparse.archs import load_arch
from simsparse.archs.gpu_call import config_timing
from simsparse.engines import estimate, gpu_event
from simsparse.graph.lower import gemm_work
from simsparse.masks.synthetic import two_four_checkerboard
from simsparse.records import Gemm, LayerWork


@pytest.mark.parametrize("m,n,k", [(8192, 4096, 4096), (16384, 2048, 8192), (196608, 768, 3072)])
@pytest.mark.parametrize("dense", [True, False])
def test_engines_agree_within_five_percent_on_large_compute_bound_gemms(a100, m, n, k, dense):
    mask = two_four_checkerboard(n, k)
    work = gemm_work(name="w", gemm=Gemm(m=m, n=n, k=k), mask=mask)
    plan = a100.plan(work, dense=dense)
    ana = estimate(plan, a100, "analytic")
    cyc = estimate(plan, a100, "cycle")
    assert ana.bound == "compute" and cyc.bound == "compute"
    assert cyc.latency_s == pytest.approx(ana.latency_s, rel=0.05)
    assert cyc.flops_executed == ana.flops_executed and cyc.engine == "cycle"


def test_cycle_engine_sees_bandwidth(a100):
    """A memory-bound decode GEMM gets slower in simulation when HBM bandwidth is halved."""
    slow = load_arch("a100_2to4", overrides=["memory.hbm_bytes_per_s=1.0e12"])   # the kernel stack: no host time
    fast = load_arch("a100_2to4")
    work = LayerWork(name="w", kind="gemm", op_kind="linear", gemm=Gemm(m=16, n=8192, k=8192))
    t_slow = estimate(slow.plan(work), slow, "cycle").latency_s
    t_fast = estimate(fast.plan(work), fast, "cycle").latency_s
    assert t_slow > 1.3 * t_fast


def test_cycle_engine_uses_one_environment_per_wave_and_is_deterministic(a100, monkeypatch):
    work = gemm_work(name="w", gemm=Gemm(m=6000, n=3000, k=999))    # 5 full waves and a partial one
    plan = a100.plan(work)
    timing = config_timing(a100.spec, plan.payload.call)
    waves = (timing.full_wave is not None) + (timing.last_wave is not None)
    made = []
    environment = gpu_event.simpy.Environment
    monkeypatch.setattr(gpu_event.simpy, "Environment", lambda: made.append(1) or environment())
    latencies = []
    for _ in range(2):
        gpu_event.simulate_wave.cache_clear()              # simulate afresh, not from the memo
        latencies.append(estimate(plan, a100, "cycle").latency_s)
    assert waves == 2 and len(made) == 2 * waves
    assert latencies[0] == latencies[1]
