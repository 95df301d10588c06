"""End-to-end invariants a user trusts, over the matrix of shipped archs x dtypes x patterns x
software stacks x engines x forced kernels (small GEMMs and workloads, `simsparse.api` calls).

Every number is finite and non-negative, effective FLOPs never exceed dense FLOPs, a dense layer
runs at exactly the dense baseline, the `kernel` stack is never slower than `pytorch-eager` on the
same layer and format, the cycle engine stays within the kind's declared tolerance of the analytic
one on compute-bound GEMMs, and the CLI's JSON and CSV parse. Cases that fail on main today are
marked `xfail(strict=True)` with the bug they show (none at the moment: each bug found was fixed with the
mark removed).
"""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from simsparse import api, cli, report
from simsparse.archs import load_arch
from simsparse.errors import SimSparseError
from simsparse.records import ErrorBand
from simsparse.report_data import records_csv

ARCHS = [a["name"] for a in api.list_archs()]
GPUS = [a for a in ARCHS if load_arch(a).software_stacks()]
PATTERNS = ("dense", "2:4", "1:8", "fanin=77", "fanin=0.25", "density=0.3", "channels=0.5")
SMALL_GEMM = "64,256,512"


def _numbers_are_sane(rep) -> list[str]:
    """Every problem a user would see in one report: NaN, inf or negative numbers, effective FLOPs
    above dense FLOPs, a non-positive latency."""
    problems = []
    for e in (*rep.estimates, rep.total, *rep.dense_estimates, rep.dense_total):
        values = {f: getattr(e, f) for f in ("flops_dense", "flops_effective", "flops_executed", "cycles",
                                              "latency_s", "energy_j")}
        values.update({f"bytes.{k}": v for k, v in e.bytes_by_level.items()})
        values.update({f"alt.{k}": v for k, v in e.alternatives.items()})
        problems += [f"{e.layer} {k}={v}" for k, v in values.items() if not math.isfinite(v) or v < 0]
        if e.flops_effective > e.flops_dense * (1 + 1e-12):
            problems.append(f"{e.layer} effective {e.flops_effective} > dense {e.flops_dense}")
    if not rep.total.latency_s > 0:
        problems.append(f"total latency {rep.total.latency_s}")
    return problems


@pytest.mark.parametrize("arch", ARCHS)
def test_every_dtype_and_pattern_on_every_arch_gives_sane_numbers_and_dense_runs_at_exactly_1x(arch):
    model = load_arch(arch)
    problems = []
    for dtype in model.supported_dtypes():
        for pattern in (PATTERNS if dtype == model.default_dtype() else ("dense", "2:4")):
            rep = api.evaluate(arch=arch, gemm=SMALL_GEMM, pattern=pattern, dtype=dtype)
            problems += [f"{dtype} {pattern}: {p}" for p in _numbers_are_sane(rep)]
            if pattern == "dense" and rep.speedup_vs_dense != 1.0:
                problems.append(f"{dtype} dense: speedup {rep.speedup_vs_dense!r}")
    assert not problems, problems


@pytest.mark.parametrize("arch", GPUS)
def test_the_kernel_stack_is_never_slower_than_eager_pytorch_on_the_same_layer_and_format(arch):
    model = load_arch(arch)
    slower = []
    for pattern in ("2:4", "fanin=0.25"):
        for kernel in (None, *model.kernels):
            try:
                lib = api.evaluate(arch=arch, gemm=SMALL_GEMM, pattern=pattern, software="kernel", kernel=kernel)
            except SimSparseError:        # a kernel this mask cannot run: refused on both stacks
                continue
            eager = api.evaluate(arch=arch, gemm=SMALL_GEMM, pattern=pattern, software="pytorch-eager", kernel=kernel)
            if lib.total.format == eager.total.format and lib.total.latency_s > eager.total.latency_s * (1 + 1e-9):
                slower.append((pattern, kernel, lib.total.latency_s, eager.total.latency_s))
    assert not slower, slower


@pytest.mark.parametrize("arch", ARCHS)
def test_cycle_engine_is_within_the_kinds_declared_tolerance_of_analytic_on_a_compute_bound_gemm(arch):
    model = load_arch(arch)
    gemm = "4096,4096,4096" if model.software_stacks() else "512,512,1024"
    for pattern in ("dense", "2:4"):
        a = api.evaluate(arch=arch, gemm=gemm, pattern=pattern)
        c = api.evaluate(arch=arch, gemm=gemm, pattern=pattern, engine="cycle")
        for x, y in ((a.total, c.total), (a.dense_total, c.dense_total)):
            assert abs(y.latency_s - x.latency_s) <= model.engines_agree_rel * x.latency_s, (pattern, x, y)


@pytest.mark.parametrize("workload", ["mlp", "cnn", "llama3_2_1b_decode_2048"])
@pytest.mark.parametrize("pattern", ["dense", "2:4", "channels=0.5,skip=keep"])
def test_shipped_workloads_give_sane_numbers_on_a_gpu_and_a_systolic_array(workload, pattern):
    for arch in ("h100_2to4", "systolic_128x128"):
        rep = api.evaluate(arch=arch, workload=workload, pattern=pattern, batch=2)
        assert not _numbers_are_sane(rep), (arch, _numbers_are_sane(rep))
        assert rep.total.flops_dense == rep.dense_total.flops_dense
        if pattern == "dense":
            assert rep.speedup_vs_dense == 1.0


def _cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_json_parses_and_its_speedup_is_dense_over_sparse_latency(capsys):
    code, out, err = _cli(capsys, "evaluate", "--gemm", SMALL_GEMM, "--pattern", "2:4", "--arch", "h100_2to4",
                          "--dtype", "fp8", "--software", "pytorch-eager", "--format", "json")
    assert code == 0, err
    d = json.loads(out)
    assert d["speedup_vs_dense"] == pytest.approx(d["dense_total"]["latency_s"] / d["total"]["latency_s"])
    assert d["dtype"] == "fp8" and d["software"] == "pytorch-eager"


def test_evaluate_csv_has_one_row_per_layer_plus_total_with_the_documented_columns(capsys):
    code, out, err = _cli(capsys, "evaluate", "--workload", "mlp", "--pattern", "fanin=0.25", "--arch", "cpu_host",
                          "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {"arch", "name", "format", "latency_s", "dense_latency_s", "speedup", "flops_dense",
            "flops_effective", "flops_executed"} <= set(rows[0])
    assert rows[-1]["name"] == "total"
    assert all(float(r["latency_s"]) >= 0 and math.isfinite(float(r["latency_s"])) for r in rows)


@pytest.mark.parametrize("argv", [
    ["--pattern", "2:4", "--arch", "a100_2to4", "--dtype", "fp8"],
    ["--pattern", "2:4", "--arch", "cpu_host", "--software", "kernel"],
    ["--pattern", "2:4", "--arch", "s2ta_like", "--kernel", "csr"],
    ["--pattern", "dense", "--arch", "a100_2to4", "--kernel", "csr"],
    ["--pattern", "fanin=600", "--arch", "a100_2to4"],
    ["--pattern", "channels=0.5,skip=2", "--arch", "a100_2to4"],
    ["--pattern", "2:4", "--arch", "a100_2to4", "--set", "compute.sms=0"],
])
def test_an_impossible_request_is_one_line_on_stderr_and_exit_2(capsys, argv):
    code, out, err = _cli(capsys, "evaluate", "--gemm", SMALL_GEMM, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out


def test_batch_with_a_lone_gemm_is_not_silently_ignored():
    try:
        rep = api.evaluate(arch="a100_2to4", gemm=SMALL_GEMM, pattern="2:4", batch=8)
    except SimSparseError:
        return
    assert rep.estimates[0].m == 8 * 64


def test_compare_csv_tells_the_networks_apart():
    reports = [api.evaluate(arch="a100_2to4", workload=w, pattern="2:4") for w in ("mlp", "cnn")]
    rows = list(csv.DictReader(io.StringIO(report.render_reports(reports, "csv"))))
    totals = [r for r in rows if r["name"] == "total"]
    assert len({tuple(v for k, v in r.items() if k in ("checkpoint", "source", "workload", "network"))
                for r in totals}) == 2


def test_report_csv_cells_holding_an_error_band_are_machine_readable():
    from dataclasses import make_dataclass

    row = make_dataclass("Row", [("label", str), ("error_band", object)])
    band = ErrorBand(latency_low=-0.1, latency_high=0.2, speedup_low=None, speedup_high=None, basis="x", prior=True)
    cell = next(csv.DictReader(io.StringIO(records_csv([row("a", band)]))))["error_band"]
    assert json.loads(cell)["latency_low"] == -0.1


def test_a_tiny_elementwise_op_under_eager_pytorch_is_labelled_overhead_bound():
    rep = api.evaluate(arch="a100_2to4", workload="mlp", pattern="dense", software="pytorch-eager")
    relu = next(e for e in rep.estimates if e.layer.startswith("relu"))
    assert relu.bound == "overhead"


def test_the_kernel_stack_does_not_charge_gemm_library_host_time_to_elementwise_ops():
    lib = api.evaluate(arch="h100_2to4", workload="mlp", pattern="dense", software="kernel")
    graph = api.evaluate(arch="h100_2to4", workload="mlp", pattern="dense", software="pytorch-graph")
    gap = (load_arch("h100_2to4").with_software("kernel").spec.launch_gap_s
           - load_arch("h100_2to4").with_software("pytorch-graph").spec.launch_gap_s)
    for a, b in zip(lib.estimates, graph.estimates):
        if a.layer.startswith("relu"):
            assert a.latency_s <= b.latency_s + gap + 1e-9, (a.layer, a.latency_s, b.latency_s)


def test_refusing_a_huge_nm_gemm_names_the_real_reason():
    with pytest.raises(SimSparseError) as err:
        api.evaluate(arch="h100_2to4", gemm="1,100000,100002", pattern="2:4")
    assert "N:M" not in str(err.value).split(";")[-1]


def test_an_nm_target_that_contradicts_the_sparsity_is_refused(tmp_path):
    with pytest.raises(SimSparseError):
        api.train(method="nm-mask-decay", nm="2:4", model="mlp", data="synthetic", sparsity=0.9, steps=1,
                  out=tmp_path / "x.pt", progress=False)


@pytest.mark.parametrize("arch, kernel", [("a100_2to4", "2:4"), ("cpu_host", "nm")])
def test_a_forced_kernel_runs_the_masked_layers_and_leaves_a_layer_without_a_mask_dense(tmp_path, arch, kernel):
    from simsparse.graph.catalog import load_workload
    from simsparse.masks import native
    from simsparse.masks.synthetic import two_four_checkerboard

    path = tmp_path / "partial.pt"        # the classifier kept dense, as the N:M recipes keep it
    masks = {"fc1.weight": two_four_checkerboard(256, 64), "fc2.weight": two_four_checkerboard(256, 256)}
    native.save(path, masks=masks, geometry=load_workload("mlp"), meta={"method": "nm"})
    rep = api.evaluate(arch=arch, mask=str(path), kernel=kernel, allow_partial=True)
    layers = {e.layer: e for e in rep.estimates}
    assert layers["fc2.weight"].format == kernel
    assert layers["fc3.weight"].format == "dense" and any("no mask" in n for n in layers["fc3.weight"].notes)
