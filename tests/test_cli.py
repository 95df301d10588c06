"""The command line contract (README "Using it"): JSON keys, exit codes, one-line errors, no half-written files."""

import csv
import io
import json

import pytest

from simsparse import api, report
from simsparse.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_evaluate_gemm_json_has_the_contract_keys(capsys):
    code, out, _ = run(capsys, "evaluate", "--gemm", "3072,768,3072", "--pattern", "2:4", "--arch", "a100_2to4",
                       "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert {"arch", "engine", "dtype", "layers", "total", "dense_total", "speedup_vs_dense"} <= set(data)
    layer = data["layers"][0]
    for key in ("name", "m", "n", "k", "format", "density", "flops_dense", "flops_effective", "flops_executed",
                "bytes", "cycles", "latency_s", "bound"):
        assert key in layer
    assert layer["format"] == "2:4"
    assert data["speedup_vs_dense"] > 1.0


def test_a_dense_pattern_is_exactly_as_fast_as_dense(capsys):
    code, out, _ = run(capsys, "evaluate", "--gemm", "512,512,512", "--pattern", "dense", "--arch", "h100_2to4",
                       "--format", "json")
    assert code == 0 and json.loads(out)["speedup_vs_dense"] == pytest.approx(1.0)


def test_evaluate_workload_with_pattern_covers_every_layer(capsys):
    code, out, _ = run(capsys, "evaluate", "--workload", "wrn22_2", "--pattern", "2:4", "--arch", "a100_2to4",
                       "--batch", "8", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert any(l["format"] == "2:4" for l in data["layers"])
    assert data["total"]["flops_dense"] == pytest.approx(sum(l["flops_dense"] for l in data["layers"]))


def test_csv_output_has_a_header_and_a_total_row(capsys):
    code, out, _ = run(capsys, "evaluate", "--gemm", "64,64,64", "--pattern", "2:4", "--arch", "systolic_32x32",
                       "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("arch,") and lines[-1].split(",")[3] == "total"


def test_csv_output_keeps_the_notes_of_each_layer(capsys):
    code, out, _ = run(capsys, "evaluate", "--gemm", "1,4096,4096", "--pattern", "2:4", "--arch", "a100_2to4",
                       "--software", "pytorch-eager", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and "dense would be faster" in rows[0]["notes"] and rows[-1]["notes"] == ""


def test_compare_table_names_each_reports_dtype():
    reports = [api.evaluate(arch=arch, gemm="64,64,64", pattern="2:4") for arch in ("a100_2to4", "systolic_32x32")]
    header, _, first, second = report.compare_table(reports).splitlines()
    assert header.split()[:3] == ["checkpoint", "arch", "dtype"]
    assert first.split()[2] == "fp16" and second.split()[2] == "int8"


@pytest.mark.parametrize("argv, fragment", [
    (["evaluate", "--gemm", "1,2", "--pattern", "2:4", "--arch", "a100_2to4"], "M,N,K"),
    (["evaluate", "--gemm", "8,8,8", "--pattern", "3:2", "--arch", "a100_2to4"], "N:M"),
    (["evaluate", "--gemm", "8,8,8", "--arch", "no_such_arch"], "unknown arch 'no_such_arch'; known:"),
    (["evaluate", "--workload", "no_such_net", "--pattern", "2:4", "--arch", "a100_2to4"], "no_such_net"),
    (["evaluate", "--gemm", "8,8,8", "--arch", "a100_2to4", "--set", "compute.sms=-3"], "compute.sms"),
    (["evaluate", "--gemm", "8,8,8", "--arch", "a100_2to4", "--set", "compute.nope=1"], "no field compute.nope"),
    (["evaluate", "--arch", "a100_2to4"], "needs"),
    (["inspect", "/no/such/file.pt"], "file.pt"),
])
def test_bad_input_is_one_line_and_exit_code_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_unknown_subcommand_is_a_usage_error(capsys):
    assert main(["frobnicate"]) == 2


def test_invalid_spec_file_names_file_field_and_value(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    text = (__import__("simsparse.resources", fromlist=["data_dir"]).data_dir("accelerators") / "a100_2to4.yaml").read_text()
    spec.write_text(text.replace("sms: 108", "sms: zero"))
    code, _, err = run(capsys, "evaluate", "--gemm", "8,8,8", "--arch", str(spec))
    assert code == 2 and "bad.yaml" in err and "compute.sms" in err and "zero" in err


def test_out_folder_gets_json_and_csv(tmp_path, capsys):
    out = tmp_path / "rep"
    code, _, _ = run(capsys, "evaluate", "--gemm", "64,64,64", "--pattern", "2:4", "--arch", "a100_2to4",
                     "--out", str(out))
    assert code == 0
    assert json.loads((out / "report.json").read_text())["arch"] == "a100_2to4"
    assert (out / "report.csv").read_text().startswith("arch,")


def test_failed_evaluate_writes_nothing(tmp_path, capsys):
    out = tmp_path / "rep"
    code, _, _ = run(capsys, "evaluate", "--gemm", "64,64,64", "--pattern", "9:4", "--arch", "a100_2to4",
                     "--out", str(out))
    assert code == 2 and not out.exists()


def test_archs_and_workloads_list_the_built_ins(capsys):
    code, out, _ = run(capsys, "archs", "--format", "json")
    names = {a["name"] for a in json.loads(out)["archs"]}
    assert code == 0 and {"a100_2to4", "h100_2to4", "systolic_32x32", "cpu_host"} <= names
    code, out, _ = run(capsys, "workloads", "--format", "json")
    assert code == 0 and "resnet50" in {w["name"] for w in json.loads(out)["workloads"]}


def test_validate_published_reports_points_and_summary_with_mape_as_a_fraction(capsys):
    code, out, _ = run(capsys, "validate", "--device", "published", "--corpus", "a100_2to4_dev", "--format", "json")
    data = json.loads(out)
    assert code == 0 and len(data["points"]) == data["summary"]["n"] > 0
    assert {"mape", "spearman", "n"} <= set(data["summary"])
    assert 0.0 < data["summary"]["mape"] < 0.1          # a fraction (1.7 %), not a percentage


@pytest.mark.parametrize("argv, fragment", [
    (["--device", "cpu", "--engine", "cycle"], "analytic engine"),
    (["--device", "cpu", "--csv", "rows.csv"], "--device published only"),
    (["--corpus", "nope"], "known: a100_2to4_dev"),
])
def test_validate_options_that_do_not_apply_are_refused_before_measuring(capsys, argv, fragment):
    code, out, err = run(capsys, "validate", *argv)
    assert code == 2 and out == "" and fragment in err and len(err.strip().splitlines()) == 1


def test_validate_gpu_arch_needs_gpu_equals_arch(capsys):
    code, _, err = run(capsys, "validate", "--corpus", "a100_2to4_dev", "--gpu-arch", "A100")
    assert code == 2 and "GPU=ARCH" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, fragment", [
    (["--method", "nope", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.9", "--steps", "2"], "nope"),
    (["--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "1.5", "--steps", "2"], "sparsity"),
    (["--method", "srste", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.5", "--steps", "2"], "--nm"),
    (["--method", "srste", "--nm", "2-4", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.5", "--steps", "2"], "N:M"),
])
def test_train_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, fragment):
    code, _, err = run(capsys, "train", *argv, "--out", str(tmp_path / "x.pt"))
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.pt").exists()


def test_compare_two_checkpoints_on_two_archs_with_a_plot(tmp_path, capsys):
    import ckpt_factory as cf
    from simsparse.graph.tracing import trace
    import torch

    class Two(torch.nn.Module):  # the factory's fc1 [16, 32] and fc2 [8, 16], with a forward to trace
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(32, 16), torch.nn.Linear(16, 8)

        def forward(self, x):
            return self.fc2(torch.relu(self.fc1(x)))

    geometry = trace(Two(), (torch.zeros(1, 32),), name="tiny")
    cf.make_native(tmp_path / "a.pt", geometry=geometry)
    cf.make_native(tmp_path / "b.pt", geometry=geometry)
    code, out, err = run(capsys, "compare", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--arch", "a100_2to4",
                         "systolic_32x32", "--format", "json", "--plot", str(tmp_path / "plots"))
    assert code == 0, err
    assert len(json.loads(out)["reports"]) == 4
    assert (tmp_path / "plots" / "speedup.png").is_file()
