"""Load-aware timing: interleaved samples, a robust estimator with its noise, and a `measure` that
waits for, refuses, or (with --allow-noisy) flags a machine too busy for the precision asked."""

import itertools

import pytest

from simsparse.errors import MeasurementError
from simsparse.kernels import measure
from simsparse.kernels.contention import Contention, Probe, contention_between, problem, wait_for_cpus
from simsparse.kernels.harness import summarize, time_interleaved


def probe(*, share: float, load: float = 0.0, stat=lambda: None, sleep=lambda s: None) -> Probe:
    """Readings where the process gets `share` of one CPU per wall second."""
    wall = itertools.count()
    walls: list[float] = []

    def read_wall():
        walls.append(float(next(wall)))
        return walls[-1]

    return Probe(wall=read_wall, process=lambda: share * walls[-1], stat=stat, load=lambda: load, sleep=sleep)


def fake_measure(monkeypatch, *, share: float, durations=(1e-3,), **kw):
    ticks = itertools.count()
    steps = itertools.cycle(durations)
    clock_now = [0.0]

    def with_fake_clock(cases, **k):
        def clock():
            if next(ticks) % 2:        # every second read ends a sample: advance by the next duration
                clock_now[0] += next(steps)
            return clock_now[0]

        k["clock"] = clock
        return real(cases, **k)

    real = measure.measure_cases
    monkeypatch.setattr(measure, "measure_cases", with_fake_clock)
    return measure.run(device="cpu", gemm=(1, 16, 32), pattern="2:4", suite=None, kernel="dense", threads=1,
                       min_time_s=0.0, probe=probe(share=share), max_wait_s=0, **kw)


def test_samples_of_several_kernels_are_interleaved_round_robin():
    calls = []
    time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, min_time_s=0.0,
                     warmup=1, min_repeats=3, min_sample_s=0.0, clock=itertools.count().__next__)
    timed = calls[2:]                                   # after one warm-up call each
    assert timed == ["a", "b", "b", "a", "a", "b"]      # the first in each round rotates


def test_the_robust_estimator_reports_min_and_low_quantile_beside_the_median():
    stats = summarize([1.0] * 8 + [9.0, 10.0], inner=1, total_s=26.0)
    assert stats.min_s == 1.0 and stats.p10_s == 1.0 and stats.median_s == 1.0
    assert stats.p90_s == pytest.approx(9.1) and stats.noise == 0.0


def test_a_process_starved_of_cpu_time_is_a_contended_timing():
    p = probe(share=0.4)
    start = p.now()
    end = p.now()
    c = contention_between(start, end, threads=1, probe=p)
    assert c.cpu_share == pytest.approx(0.4)
    assert "40% of the CPU time" in problem(noise=0.0, contention=c, max_noise=0.1)


def test_steal_time_comes_from_proc_stat():
    stats = iter([(1000, 500, 0), (2000, 700, 200)])
    p = probe(share=1.0, stat=lambda: next(stats))
    c = contention_between(p.now(), p.now(), threads=1, probe=p)
    assert c.steal_fraction == pytest.approx(0.2)
    assert "stolen" in problem(noise=0.0, contention=c, max_noise=0.1)


def test_measure_refuses_a_busy_machine_with_one_line(monkeypatch):
    with pytest.raises(MeasurementError, match="too busy.*--allow-noisy") as err:
        fake_measure(monkeypatch, share=0.3)
    assert "\n" not in str(err.value)


def test_measure_refuses_samples_noisier_than_asked(monkeypatch):
    with pytest.raises(MeasurementError, match="spread"):
        fake_measure(monkeypatch, share=1.0, durations=(1e-3, 5e-3, 2e-3, 9e-3), max_noise=0.1)


def test_allow_noisy_reports_the_timing_with_its_reason_and_a_note(monkeypatch):
    result = fake_measure(monkeypatch, share=0.3, allow_noisy=True)
    (row,) = result.results
    assert "CPU time" in row.noisy and row.cpu_share == pytest.approx(0.3)
    assert row.min_s <= row.median_s <= row.p90_s
    assert any("noisy" in n for n in result.notes)


def test_a_quiet_machine_is_reported_clean(monkeypatch):
    result = fake_measure(monkeypatch, share=1.0)
    assert result.results[0].noisy == "" and result.notes == ()


def test_waiting_for_idle_cpus_is_bounded():
    busy = itertools.count(step=100)   # every window: 100 jiffies, none idle
    p = Probe(stat=lambda: (next(busy), 0, 0), sleep=lambda s: None)
    assert wait_for_cpus(1, 2, max_wait_s=5, window_s=1.0, probe=p) == (5.0, False)
    calm = iter([(0, 0, 0), (100, 10, 0), (100, 10, 0), (200, 100, 0)])
    p = Probe(stat=lambda: next(calm), sleep=lambda s: None)
    assert wait_for_cpus(1, 2, max_wait_s=5, window_s=1.0, probe=p) == (1.0, True)


def test_no_contention_is_claimed_without_readings():
    c = Contention(cpu_share=1.0, steal_fraction=0.0, load_avg_1min=9.0)
    assert problem(noise=0.05, contention=c, max_noise=0.1) == ""
