"""Every GPU estimate carries an expected error band from validation residuals; the committed band
table is current; bands without rows of their own say what they borrow."""

from __future__ import annotations

import json

import pytest

from simsparse import api, cli
from simsparse.archs import arch_data, load_arch, shipped_arch_names
from simsparse.engines.gpu_error_bands import REGIMES, band_for, bands_path, regime
from simsparse.records import ErrorBand
from simsparse.validate import gpu_bands

GPUS = tuple(a for a in shipped_arch_names() if arch_data(a)[0].get("kind") == "gpu_sparse_tensor_core")


def test_the_committed_band_table_is_current():
    assert gpu_bands.is_current(), "run: python -m simsparse.validate.gpu_bands --regenerate"


def test_the_table_covers_every_gpu_spec_stack_dtype_and_regime():
    rows = json.loads(bands_path().read_text())["bands"]
    keys = {(r["arch"], r["software"], r["dtype"], r["regime"]) for r in rows}
    for arch in GPUS:
        for software in gpu_bands.STACKS:
            for dtype in load_arch(arch).spec.tensor_dtypes:
                assert all((arch, software, dtype, reg) in keys for reg in REGIMES), (arch, software, dtype)


def test_bands_come_from_rows_where_there_are_rows_and_are_priors_elsewhere():
    measured = band_for("a100_pcie_2to4", "kernel", "bf16", 64, sparse=True)
    assert not measured.prior and "leave-one-shape-set-out" in measured.basis
    assert measured.latency_low < measured.latency_high and measured.speedup_low < measured.speedup_high
    borrowed = band_for("h200_2to4", "kernel", "fp8", 4096, sparse=True)
    assert borrowed.prior and "h100_pcie_2to4" in borrowed.basis
    assert band_for("a100_pcie_2to4", "kernel", "bf16", 64, sparse=False).speedup_low is None


def test_regimes_split_at_256_and_8192_tokens():
    assert [regime(m) for m in (1, 256, 257, 8191, 8192)] == ["skinny", "skinny", "square", "square", "large"]


def test_every_gpu_estimate_and_report_shows_its_band(capsys):
    r = api.evaluate(arch="h100_pcie_2to4", gemm="64,2048,8192", pattern="2:4", dtype="bf16")
    assert isinstance(r.estimates[0].error_band, ErrorBand) and r.total.error_band is not None
    assert cli.main(["evaluate", "--gemm", "64,2048,8192", "--pattern", "2:4", "--arch", "h100_pcie_2to4",
                     "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"latency_low", "latency_high", "speedup_low", "basis", "prior"} <= set(data["error_band"])
    assert data["layers"][0]["error_band"]["basis"]
    assert cli.main(["evaluate", "--gemm", "64,2048,8192", "--pattern", "2:4", "--arch", "h100_pcie_2to4"]) == 0
    out = capsys.readouterr().out
    assert "exp. error" in out and "expected error" in out


def test_a_spec_outside_the_table_gets_the_widest_band_marked_as_a_prior(tmp_path):
    from simsparse.resources import data_dir

    text = (data_dir("accelerators") / "a100_2to4.yaml").read_text()
    path = tmp_path / "a100_half.yaml"
    path.write_text(text.replace("name: a100_2to4", "name: a100_half").replace("sms: 108", "sms: 54"))
    band = api.evaluate(arch=str(path), gemm="4096,4096,4096", pattern="2:4").total.error_band
    assert band.prior and "a100_half" in band.basis


def test_a_sum_of_layers_weights_their_bands_by_latency():
    a = ErrorBand(latency_low=-0.1, latency_high=0.1, speedup_low=-0.2, speedup_high=0.0, basis="x", prior=False)
    b = ErrorBand(latency_low=-0.3, latency_high=0.5, speedup_low=None, speedup_high=None, basis="y", prior=True)
    c = ErrorBand.combine(a, 3.0, b, 1.0)
    assert c.latency_low == pytest.approx(-0.15) and c.latency_high == pytest.approx(0.2)
    assert c.speedup_low == -0.2 and c.prior and ErrorBand.combine(a, 1.0, None, 1.0) is None
