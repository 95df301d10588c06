"""`simsparse measure` end to end through the CLI (one tiny GEMM, one kernel)."""

import json

import pytest
import torch

from simsparse.cli import main


def test_measure_prints_json_results_for_one_gemm(capsys):
    code = main(["measure", "--device", "cpu", "--gemm", "2,16,32", "--pattern", "2:4", "--kernel", "nm",
                 "--threads", "1", "--format", "json", "--allow-noisy", "--max-wait", "0"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = data["results"]
    assert (row["kernel"], row["m"], row["n"], row["k"], row["pattern"], row["threads"]) == ("nm", 2, 16, 32, "2:4", 1)
    assert row["median_s"] > 0 and row["iqr_s"] >= 0


def test_measure_with_an_unsuited_kernel_exits_2_with_one_line(capsys):
    code = main(["measure", "--device", "cpu", "--gemm", "1,16,32", "--pattern", "dense", "--kernel", "nm",
                 "--max-wait", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "N:M" in err and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_measure_on_cuda_without_cuda_exits_2(capsys):
    code = main(["measure", "--device", "cuda", "--gemm", "1,64,64", "--pattern", "2:4"])
    assert code == 2 and "CUDA is not available here" in capsys.readouterr().err


def test_measure_csv_has_a_header_and_one_line_per_kernel(capsys):
    code = main(["measure", "--device", "cpu", "--gemm", "1,16,32", "--pattern", "fanin=4", "--kernel", "condensed",
                 "--threads", "1", "--format", "csv", "--allow-noisy", "--max-wait", "0"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and lines[0].startswith("kernel,m,n,k,pattern") and len(lines) == 2
    assert lines[1].startswith("condensed,1,16,32,fanin=4")
