"""Calibration fits the per-kernel parameters back from points; the CPU validation report
(statistics, noise, crossovers, in-run calibration) on the shared records."""

import math
from dataclasses import replace

import pytest

from simsparse.archs import load_arch
from simsparse.archs.cpu_spec import KernelParams
from simsparse.kernels.suites import suite_cases
from simsparse.validate import calibrate, cpu, render, stats
from simsparse.validate.calibrate import Predictor
from simsparse.validate.cpu_timing import cpu_point


def _points(kernel: str, threads=(1, 2)):
    return [cpu_point(kernel=kernel, m=m, n=n, k=k, pattern=p, threads=t, measured_s=1.0)
            for (n, k, p) in ((256, 512, "fanin=32"), (512, 256, "fanin=64"))
            for m in (1, 2, 8, 32) for t in threads]


def test_fit_recovers_the_parameters_that_produced_the_times():
    model = load_arch("spr_socket", ["software.threads=2"])
    truth = KernelParams(overhead_s=2e-5, parallel_overhead_s=1e-5, compute_eff=0.4, bw_eff=0.6)
    predictor = Predictor(model)
    pts = [replace(p, measured_s=predictor.predict_s(p, {"condensed": truth})) for p in _points("condensed")]
    fitted, out = calibrate.fit(pts, model)
    assert stats.summarize(out, metric="time").mape < 0.01
    assert fitted["condensed"].overhead_s == pytest.approx(truth.overhead_s, rel=0.05)
    assert fitted["condensed"].compute_eff == pytest.approx(truth.compute_eff, rel=0.05)


def test_calibration_and_validation_suites_share_no_point():
    def key(c):
        return (c.m, c.n, c.k, c.pattern)

    cal = {key(c) for c in suite_cases("cpu_calibration")}
    val = {key(c) for c in suite_cases("cpu_validation")}
    assert not cal & val


def test_validation_suite_has_at_least_60_points_over_five_kernels():
    cases = suite_cases("cpu_validation")
    assert sum(len(c.kernels) for c in cases) >= 60
    assert {k for c in cases for k in c.kernels} == {"dense", "csr", "condensed", "nm", "shrunk"}
    assert {c.m for c in cases} >= {1, 256}


def test_crossover_interpolates_between_batches_and_is_inf_when_condensed_always_wins():
    # condensed 2x faster at batch 1, 2x slower at batch 4: the log-ratio crosses at batch 2
    assert cpu.crossover_batches([1, 4], [1.0, 2.0], [2.0, 1.0])[0] == pytest.approx(2.0)
    assert math.isinf(cpu.crossover_batches([1, 4], [1.0, 1.0], [2.0, 2.0])[0])


def test_final_crossover_is_where_condensed_loses_for_good():
    # loses at batch 2, wins again at 4, loses from 64 on
    first, final = cpu.crossover_batches([1, 2, 4, 16, 64], [1, 3, 1, 1, 3], [2, 1, 2, 2, 1])
    assert 1 < first < 2 and 16 < final < 64


def test_report_predicts_every_point_groups_by_kernel_and_threads_and_finds_crossovers():
    model = load_arch("spr_socket", ["software.threads=1"])
    pts = [cpu_point(kernel=k, m=m, n=3072, k=768, pattern="fanin=77", threads=1, measured_s=1e-4)
           for k in ("dense", "condensed") for m in (1, 4)]
    report = cpu.build_report(pts, model)
    assert report.summary.n == 4 and all(p.predicted_s > 0 for p in report.points)
    assert {(g.by, g.key) for g in report.groups} == {(("kernel",), ("dense",)), (("kernel",), ("condensed",)),
                                                      (("threads",), ("1",))}
    assert len(report.crossovers) == 1 and report.crossovers[0].n == 3072
    assert report.crossovers[0].predicted_first >= 1


def test_the_report_shows_how_noisy_its_own_measurements_were():
    model = load_arch("spr_socket", ["software.threads=1"])
    pts = [cpu_point(kernel="csr", m=m, n=768, k=3072, pattern="fanin=307", threads=1, measured_s=1e-4,
                     pass_mins_s=(1e-4, 1.5e-4, 1.2e-4)) for m in (1, 4, 16)]
    report = cpu.build_report(pts, model)
    noise = report.summary.noise
    assert noise.passes == 3 and noise.spread_median == pytest.approx(0.5)
    assert noise.single_pass_ape == pytest.approx((0 + 0.5 + 0.2) / 3)
    data = render.to_dict(report)
    assert data["summary"]["noise"]["spread_median"] == pytest.approx(0.5)
    assert all(g["noise"]["passes"] == 3 for g in data["groups"])
    assert "spread 50.0 %" in render.to_table(report)


def test_stored_calibration_is_used_by_cpu_host(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("SIMSPARSE_SKIP_PROBE", "1")
    from simsparse import hostinfo

    key = hostinfo.detect().key
    params = {"dense": KernelParams(overhead_s=1e-3, parallel_overhead_s=0.0, compute_eff=0.5, bw_eff=0.5)}
    path = calibrate.store(key, params, points=[], suite="test", threads=(1,))
    model = load_arch("cpu_host")
    assert model.spec.calibration == path
    assert model.spec.params("dense").overhead_s == pytest.approx(1e-3)


def test_fresh_validation_fits_on_calibration_points_only(monkeypatch):
    """validate --calibration fresh: both suites are timed in the same passes, the fit sees only
    the calibration points, and the validation points are predicted with it (here the fake
    machine is the model itself with slower kernels, so the held-out error is ~0)."""
    monkeypatch.setenv("SIMSPARSE_SKIP_PROBE", "1")
    base = calibrate.uncalibrated_host_model()                  # documented defaults on this host
    truth = {k: replace(v, compute_eff=v.compute_eff * 0.7, overhead_s=v.overhead_s * 1.5)
             for k, v in base.spec.kernels.items()}
    predictor = Predictor(base)
    seen = []

    def fake_measure(cases, *, threads, machine, arch, **_):
        seen.extend(cases)
        pts = [cpu_point(kernel=kern, m=c.m, n=c.n, k=c.k, pattern=c.pattern, threads=t, machine=machine)
               for c in cases for kern in c.kernels for t in threads if kern in ("dense", "condensed")]
        return [replace(p, measured_s=predictor.predict_s(p, truth)) for p in pts]

    monkeypatch.setattr(cpu, "measure_points", fake_measure)
    res = cpu.run(threads=(1,), calibration="fresh")
    val_keys = {(c.m, c.n, c.k, c.pattern) for c in suite_cases("cpu_validation")}
    assert {(p.m, p.n, p.k, p.pattern) for p in res.points} <= val_keys        # no calibration point scored
    assert any((c.m, c.n, c.k, c.pattern) not in val_keys for c in seen)       # ... but they were measured
    assert res.summary.mape < 0.02 and res.calibration.startswith("fresh")
    assert res.calibration_points and not {(p.m, p.n, p.k, p.pattern) for p in res.calibration_points} & val_keys
