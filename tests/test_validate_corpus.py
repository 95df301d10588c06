"""`validate --csv`: columns, types and ranges are checked; a bad file is one line and exit 2."""

import pytest

from simsparse.cli import main
from simsparse.errors import SimSparseError
from simsparse.validate.corpus import read_corpus, shape_set_folds

TORCH_HEADER = "id,gpu,dtype,m,n,k,sparse_backend,dense_us,sparse_us,speedup,harness"
KERNEL_HEADER = "id,gpu,dtype,m,n,k,dense_library,sparse_library,dense_us,sparse_us,speedup,shapes_from,source"
TORCH_ROW = "T1,A100,fp16,3072,768,3072,cusparselt,76.1,51.5,1.48,pytorch"
KERNEL_ROW = "K1,H100 PCIe,fp8_e4m3,64,2048,2048,cuBLASLt,cuSPARSELt 0.8.1,14.3,16.3,0.878,Llama3.2-1B,https://x"


def write(tmp_path, text: str, name: str = "rows.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_torch_level_csv_is_read_with_times_in_seconds(tmp_path):
    corpus, rows = read_corpus(write(tmp_path, f"{TORCH_HEADER}\n{TORCH_ROW}\n"))
    assert corpus.schema == "torch" and corpus.rows == 1 and corpus.role == "user"
    r = rows[0]
    assert (r.m, r.n, r.k, r.backend, r.software) == (3072, 768, 3072, "cusparselt", "pytorch-eager")
    assert r.dense_s == pytest.approx(76.1e-6) and r.sparse_s == pytest.approx(51.5e-6) and r.speedup == 1.48


def test_a_kernel_csv_is_detected_by_its_header_and_is_device_time_only(tmp_path):
    corpus, rows = read_corpus(write(tmp_path, f"{KERNEL_HEADER}\n{KERNEL_ROW}\n"))
    assert corpus.schema == "kernel"
    r = rows[0]
    assert (r.backend, r.software, r.shape_set, r.dtype) == ("cusparselt", "kernel", "Llama3.2-1B", "fp8_e4m3")


def test_comment_rows_and_blank_lines_are_skipped(tmp_path):
    _, rows = read_corpus(write(tmp_path, f"{TORCH_HEADER}\n\n#X,A100,fp16,1,1,1,cutlass,1,1,1,pytorch\n{TORCH_ROW}\n"))
    assert [r.id for r in rows] == ["T1"]


def test_a_torch_row_may_publish_only_a_speedup(tmp_path):
    _, rows = read_corpus(write(tmp_path, f"{TORCH_HEADER}\nT1,H100,fp16,64,64,64,cusparselt,,,1.21,kernel\n"))
    assert rows[0].dense_s is None and rows[0].sparse_s is None and rows[0].software == "kernel"


BAD_FILES = {
    "empty": ("", "is empty"),
    "blank lines only": ("\n\n", "is empty"),
    "header only": (f"{TORCH_HEADER}\n", "no measured rows"),
    "unknown columns": ("a,b,c\n1,2,3\n", "neither sparse_backend"),
    "missing column": ("id,gpu,dtype,m,n,sparse_backend,dense_us,sparse_us,speedup\nX,A100,fp16,1,2,cutlass,1,1,1\n",
                       "missing column(s) k"),
    "repeated column": ("id,id,sparse_backend\n", "repeats a column"),
    "nan time": (TORCH_ROW.replace("76.1", "nan"), "dense_us = 'nan'"),
    "zero time": (TORCH_ROW.replace("51.5", "0"), "sparse_us = '0'"),
    "negative time": (TORCH_ROW.replace("51.5", "-51.5"), "sparse_us = '-51.5'"),
    "infinite time": (TORCH_ROW.replace("76.1", "inf"), "dense_us = 'inf'"),
    "negative speedup": (TORCH_ROW.replace("1.48", "-1.48"), "speedup = '-1.48'"),
    "unknown dtype": (TORCH_ROW.replace("fp16", "fp12"), "dtype = 'fp12' is unknown"),
    "zero dimension": (TORCH_ROW.replace("3072,768", "0,768", 1), "m = '0'"),
    "fractional dimension": (TORCH_ROW.replace("3072,768", "30.5,768", 1), "m = '30.5'"),
    "full-width digits": (TORCH_ROW.replace("3072,768", "３０７２,768", 1), "m = '３０７２'"),
    "underscore digits": (TORCH_ROW.replace("76.1", "7_6.1"), "dense_us = '7_6.1'"),
    "empty gpu": (TORCH_ROW.replace("A100", ""), "gpu is empty"),
    "unknown harness": (TORCH_ROW.replace("pytorch", "graphs"), "harness = 'graphs'"),
    "short row": (TORCH_ROW.rsplit(",", 2)[0], "fields where the header has 11"),
    "repeated id": (f"{TORCH_ROW}\n{TORCH_ROW}", "repeated"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_refused_naming_what_is_wrong(tmp_path, case):
    body, fragment = BAD_FILES[case]
    text = body if case in ("empty", "blank lines only", "unknown columns", "missing column", "repeated column",
                            "header only") else f"{TORCH_HEADER}\n{body}\n"
    with pytest.raises(SimSparseError) as err:
        read_corpus(write(tmp_path, text))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_kernel_row_needs_both_times(tmp_path):
    with pytest.raises(SimSparseError, match="dense_us = ''"):
        read_corpus(write(tmp_path, f"{KERNEL_HEADER}\n{KERNEL_ROW.replace('14.3', '')}\n"))


def test_binary_and_missing_files_are_refused(tmp_path):
    bad = tmp_path / "bin.csv"
    bad.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(SimSparseError, match="UTF-8"):
        read_corpus(bad)
    with pytest.raises(SimSparseError, match="no such file"):
        read_corpus(tmp_path / "absent.csv")


@pytest.mark.parametrize("case", ["header only", "nan time", "negative time", "unknown dtype"])
def test_validate_csv_refuses_a_bad_file_with_one_line_and_exit_2(tmp_path, capsys, case):
    body, fragment = BAD_FILES[case]
    text = body if case == "header only" else f"{TORCH_HEADER}\n{body}\n"
    code = main(["validate", "--device", "published", "--csv", str(write(tmp_path, text)), "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and fragment in err and len(err.strip().splitlines()) == 1


def test_shape_set_folds_hold_out_one_shape_set_each(tmp_path):
    rows = "\n".join(KERNEL_ROW.replace("K1", f"K{i}").replace("Llama3.2-1B", s)
                     for i, s in enumerate(("A", "B", "A", "C")))
    _, parsed = read_corpus(write(tmp_path, f"{KERNEL_HEADER}\n{rows}\n"))
    folds = shape_set_folds(parsed)
    assert [f.held_out for f in folds] == ["A", "B", "C"]
    assert [r.id for r in folds[0].test] == ["K0", "K2"] and [r.id for r in folds[0].train] == ["K1", "K3"]
