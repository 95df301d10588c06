"""Timing statistics on a fake clock, thread control, machine records, and `measure` plumbing."""

import itertools
import json

import numba
import pytest
import torch

from simsparse.errors import MeasurementError, SimSparseError, UnknownNameError
from simsparse.kernels import measure
from simsparse.kernels.contention import Probe
from simsparse.kernels.harness import (Machine, choose_inner, flush_bytes_for, library_versions,
                                       machine_info, summarize, thread_count, time_callable)
from simsparse.kernels.suites import SUITES, fan_in_for, suite_cases


class FakeClock:
    """Each call to fn() advances time by the next scripted duration; reading the clock is free."""

    def __init__(self, durations_s):
        self.now = 0.0
        self.durations = list(durations_s)
        self.calls = 0

    def __call__(self):
        return self.now

    def fn(self):
        self.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1


def test_summarize_reports_median_and_interquartile_range():
    stats = summarize([5.0, 1.0, 3.0, 2.0, 4.0], inner=1, total_s=15.0)
    assert stats.median_s == 3.0
    assert stats.iqr_s == pytest.approx(4.0 - 2.0)
    assert stats.min_s == 1.0 and stats.repeats == 5


def test_samples_continue_until_the_minimum_total_time():
    clock = FakeClock([0.01])                      # every call takes 10 ms
    stats = time_callable(clock.fn, min_time_s=0.5, warmup=2, min_repeats=3, clock=clock)
    assert stats.inner == 1
    assert stats.repeats == 50                      # 50 x 10 ms reaches 0.5 s
    assert stats.median_s == pytest.approx(0.01) and stats.iqr_s == pytest.approx(0.0)
    assert clock.calls == 2 + 50                    # warm-up calls are not samples


def test_minimum_repeats_win_over_a_reached_time():
    clock = FakeClock([1.0])
    stats = time_callable(clock.fn, min_time_s=0.1, warmup=1, min_repeats=7, clock=clock)
    assert stats.repeats == 7


def test_outliers_move_the_mean_but_not_the_median():
    clock = FakeClock([0.001] * 3 + [0.001, 0.001, 0.001, 0.5, 0.001, 0.001, 0.001])
    stats = time_callable(clock.fn, min_time_s=0.0, warmup=3, min_repeats=7, min_sample_s=0.0, clock=clock)
    assert stats.median_s == pytest.approx(0.001)
    assert max(stats.samples_s) == pytest.approx(0.5)


def test_short_calls_are_grouped_into_longer_samples():
    clock = FakeClock([1e-6])
    stats = time_callable(clock.fn, min_time_s=1e-3, warmup=1, min_repeats=2, min_sample_s=1e-4, clock=clock)
    assert stats.inner == choose_inner(1e-6, min_sample_s=1e-4) == 100
    assert stats.median_s == pytest.approx(1e-6)


def test_cold_cache_flushes_before_every_sample_with_single_calls():
    clock = FakeClock([1e-6])
    flushes = []
    stats = time_callable(clock.fn, min_time_s=0.0, warmup=1, min_repeats=4, clock=clock,
                          before_each=lambda: flushes.append(clock.now))
    assert stats.inner == 1 and len(flushes) == stats.repeats == 4


def test_thread_count_is_set_inside_and_restored_after():
    before = (torch.get_num_threads(), numba.get_num_threads())
    with thread_count(1) as used:
        assert used == 1 and torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert (torch.get_num_threads(), numba.get_num_threads()) == before


def test_thread_count_outside_the_cpu_range_is_refused():
    with pytest.raises(MeasurementError, match="threads=0"):
        with thread_count(0):
            pass


def test_machine_and_versions_are_recorded():
    machine = machine_info()
    assert machine.usable_cpus >= 1 and machine.cpu_model
    assert {"torch", "numpy", "numba"} <= set(library_versions())


def test_cold_flush_buffer_exceeds_the_largest_cache_up_to_a_cap():
    small = Machine(cpu_model="x", usable_cpus=1, isa="avx2", flags=(), cache_bytes={"L2": 2**20, "L3": 16 * 2**20},
                    clock_hz=0.0, system="test")
    huge = Machine(cpu_model="x", usable_cpus=1, isa="avx2", flags=(), cache_bytes={"L3": 2**30},
                   clock_hz=0.0, system="test")
    assert flush_bytes_for(small) == 32 * 2**20
    assert flush_bytes_for(huge) == 256 * 2**20


def test_srigl_suite_covers_both_mlp_gemms_four_sparsities_five_batches():
    cases = suite_cases("srigl")
    assert len(cases) == 2 * 4 * 5
    assert {(c.n, c.k) for c in cases} == {(3072, 768), (768, 3072)}
    assert {c.pattern for c in cases if c.k == 768} == {f"fanin={fan_in_for(768, s)}" for s in (0.8, 0.9, 0.95, 0.99)}
    assert "fanin=77" in {c.pattern for c in cases}        # 90 % of 768


def test_every_suite_names_only_registered_kernels():
    from simsparse.kernels import KERNELS

    for name in SUITES.names():
        for case in suite_cases(name):
            assert set(case.kernels) <= set(KERNELS.names()), (name, case)


def _fake_measure(monkeypatch, **kwargs):
    ticks = itertools.count()          # every clock read advances 1 ms: no real timing involved
    real = measure.measure_cases

    def with_fake_clock(cases, **kw):
        kw["clock"] = lambda: next(ticks) * 1e-3
        return real(cases, **kw)

    monkeypatch.setattr(measure, "measure_cases", with_fake_clock)
    reads = itertools.count()          # a quiet machine: the process gets all the CPU time it asks for
    quiet = Probe(wall=lambda: next(reads), process=lambda: next(reads), stat=lambda: None, load=lambda: 0.0)
    return measure.run(probe=quiet, max_wait_s=0, **kwargs)


def test_measure_single_gemm_tries_every_kernel_and_skips_unsuited_ones(monkeypatch):
    result = _fake_measure(monkeypatch, device="cpu", gemm=(3, 32, 48), pattern="density=0.25", suite=None,
                           kernel=None, threads=1, min_time_s=0.0)
    assert {r.kernel for r in result.results} == {"dense", "dense_bf16", "csr", "shrunk", "nm"}
    assert any(s.startswith("condensed on density=0.25") for s in result.skipped)
    assert all(r.threads == 1 and r.m == 3 and r.n == 32 and r.k == 48 for r in result.results)


def test_measure_json_has_the_design_keys(monkeypatch):
    result = _fake_measure(monkeypatch, device="cpu", gemm=None, pattern=None, suite="smoke", kernel=None,
                           threads=1, min_time_s=0.0)
    data = json.loads(json.dumps(measure.to_dict(result)))
    assert {"kernel", "m", "n", "k", "pattern", "median_s", "iqr_s", "threads"} <= set(data["results"][0])
    assert {"cpu_model", "usable_cpus"} <= set(data["machine"]) and "torch" in data["versions"]
    assert len(data["results"]) == sum(len(c.kernels) for c in suite_cases("smoke"))


def test_measure_with_a_kernel_that_rejects_the_pattern_is_an_error():
    with pytest.raises(SimSparseError, match="constant fan-in"):
        measure.run(device="cpu", gemm=(1, 16, 32), pattern="density=0.3", suite=None, kernel="condensed",
                    threads=1, min_time_s=0.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(gemm=(1, 8, 8), pattern="2:4", suite="smoke"), "not both"),
    (dict(gemm=None, pattern=None, suite=None), "--gemm"),
    (dict(gemm=(0, 8, 8), pattern="2:4", suite=None), "positive"),
])
def test_measure_rejects_incomplete_or_conflicting_requests(kwargs, match):
    with pytest.raises(SimSparseError, match=match):
        measure.run(device="cpu", kernel=None, threads=1, **kwargs)


def test_measure_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownNameError, match="condensed, csr"):
        measure.run(device="cpu", gemm=(1, 8, 8), pattern="2:4", suite=None, kernel="blocked", threads=1)
    with pytest.raises(UnknownNameError, match="srigl"):
        measure.run(device="cpu", gemm=None, pattern=None, suite="nope", kernel=None, threads=1)
    with pytest.raises(MeasurementError, match="cpu, cuda"):
        measure.run(device="tpu", gemm=(1, 8, 8), pattern="2:4", suite=None, kernel=None, threads=1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_measure_without_cuda_says_so_in_one_line():
    with pytest.raises(MeasurementError, match="CUDA is not available here") as err:
        measure.run(device="cuda", gemm=(1, 64, 64), pattern="2:4", suite=None, kernel=None, threads=None)
    assert "\n" not in str(err.value)
