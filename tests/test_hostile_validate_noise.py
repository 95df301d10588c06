"""validate --device cpu is load-aware like measure: every point carries the noise its timing
passes recorded, the summary says how noisy the measurements were, and a run too often noisy is
refused unless --allow-noisy."""

import itertools
from dataclasses import replace
from types import SimpleNamespace

import pytest

from simsparse import api
from simsparse.cli import main
from simsparse.errors import MeasurementError, SimSparseError
from simsparse.kernels.contention import Probe
from simsparse.kernels.suites import Case
from simsparse.validate import cpu, cpu_timing, render, stats
from simsparse.validate.cpu_timing import cpu_point, measure_points, noise_verdict


def harness_result(case: Case, *, threads: int, min_s: float, noisy: str = "", share: float = 1.0, steal=0.0):
    """What kernels.measure.measure_cases returns for one kernel (the fields validate reads)."""
    return SimpleNamespace(kernel=case.kernels[0], m=case.m, n=case.n, k=case.k, pattern=case.pattern,
                           threads=threads, min_s=min_s, median_s=2 * min_s, iqr_s=0.1 * min_s, p10_s=1.1 * min_s,
                           p90_s=3 * min_s, noise=0.05, cpu_share=share, steal_fraction=steal, noisy=noisy)


def fake_passes(monkeypatch, passes):
    """measure_cases answering pass i with passes[i] = (min_s, noisy, cpu_share)."""
    calls = iter(passes)

    def fake(cases, *, threads, **_):
        min_s, noisy, share = next(calls)
        return [harness_result(c, threads=threads, min_s=min_s, noisy=noisy, share=share) for c in cases], []

    monkeypatch.setattr(cpu_timing, "measure_cases", fake)


CASE = Case(m=1, n=64, k=64, pattern="2:4", kernels=("dense",))


def test_a_point_keeps_the_load_its_passes_ran_under(monkeypatch):
    fake_passes(monkeypatch, [(2e-6, "busy", 0.5), (1e-6, "", 0.9), (3e-6, "", 1.0)])
    (p,) = measure_points([CASE], threads=(1,), min_time_s=0.0, progress=False, machine="m", repeats=3)
    assert p.measured_s == 1e-6 and p.cpu_share == 0.5 and p.steal_fraction == 0.0
    assert p.p10_s == pytest.approx(2.2e-6) and p.p90_s == pytest.approx(6e-6) and p.noise == 0.05
    assert p.noisy == ""                       # one clean pass: its fastest sample is a quiet one


def test_a_point_noisy_in_every_pass_says_why(monkeypatch):
    fake_passes(monkeypatch, [(2e-6, "it got 40% of the CPU time", 0.4), (1e-6, "it got 50% of the CPU time", 0.5)])
    (p,) = measure_points([CASE], threads=(1,), min_time_s=0.0, progress=False, machine="m", repeats=2)
    assert p.noisy == "every pass: it got 40% of the CPU time"


def noisy_points(total: int, noisy: int):
    pts = [cpu_point(kernel="dense", m=b + 1, n=64, k=64, pattern="2:4", threads=1, measured_s=1e-6,
                     predicted_s=1e-6, pass_mins_s=(1e-6, 1.2e-6), noise=0.3, cpu_share=0.6, steal_fraction=0.01)
           for b in range(total)]
    return [replace(p, noisy="every pass: busy" if i < noisy else "") for i, p in enumerate(pts)]


def test_the_summary_shows_how_noisy_the_measurements_were():
    s = stats.summarize(noisy_points(10, 3), metric="time")
    assert s.noise.noisy_points == 3 and s.noise.cpu_share_min == 0.6 and s.noise.steal_fraction_max == 0.01
    assert s.noise.sample_noise_median == 0.3
    assert "noisy points 3" in render.noise_text(s) and "CPU share >= 60.0 %" in render.noise_text(s)


def test_too_many_noisy_points_are_refused_unless_allowed():
    with pytest.raises(MeasurementError, match="--allow-noisy"):
        noise_verdict(noisy_points(20, 2), allow_noisy=False)
    assert "2 of 20 points" in noise_verdict(noisy_points(20, 2), allow_noisy=True)[0]
    assert "1 of 20 points" in noise_verdict(noisy_points(20, 1), allow_noisy=False)[0]   # 5 %: a note
    assert noise_verdict(noisy_points(20, 0), allow_noisy=False) == ()


def test_validate_cpu_waits_for_a_busy_machine_then_refuses_its_noisy_timings(monkeypatch):
    monkeypatch.setenv("SIMSPARSE_SKIP_PROBE", "1")
    slept = []
    jiffies = itertools.count(step=100)
    busy = Probe(load=lambda: 64.0, stat=lambda: (next(jiffies), 0, 0), sleep=slept.append)   # never idle

    def fake(cases, *, threads, machine, arch, **_):
        return [replace(cpu_point(kernel=kern, m=c.m, n=c.n, k=c.k, pattern=c.pattern, threads=t, machine=machine,
                                  measured_s=1e-4), noisy="every pass: busy")
                for c in cases for kern in c.kernels for t in threads]

    monkeypatch.setattr(cpu, "measure_points", fake)
    with pytest.raises(MeasurementError, match="too busy to validate"):
        cpu.run(threads=(1,), calibration="stored", probe=busy, max_wait_s=2)
    assert sum(slept) == pytest.approx(2.0)     # waited (bounded) before timing
    res = cpu.run(threads=(1,), calibration="stored", probe=busy, max_wait_s=0, allow_noisy=True)
    assert res.summary.noise is None or res.summary.noise.noisy_points == len(res.points)
    assert any("noisy in every pass" in n for n in res.notes)


@pytest.mark.parametrize("argv", [["--allow-noisy"], ["--max-noise", "0.2"], ["--device", "published", "--max-wait", "1"]])
def test_noise_options_apply_to_the_cpu_device_only(capsys, argv):
    assert main(["validate", *argv]) == 2
    err = capsys.readouterr().err
    assert "--device cpu only" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kwargs", [{"max_noise": 0}, {"max_noise": "nan"}, {"max_wait_s": -1}])
def test_api_validate_checks_its_noise_limits_with_the_strict_parser(kwargs):
    with pytest.raises(SimSparseError, match="--max"):
        api.validate(device="cpu", **kwargs)
