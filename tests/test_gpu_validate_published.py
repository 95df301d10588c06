"""`validate --device published`: every shipped corpus, per corpus x GPU x dtype, nothing dropped."""

from __future__ import annotations

import pytest

from simsparse.errors import SpecError
from simsparse.validate import gpu_predict, published, render

TORCH_HEADER = "id,gpu,dtype,m,n,k,sparse_backend,dense_us,sparse_us,speedup,harness"
KERNEL_HEADER = "id,gpu,dtype,m,n,k,dense_library,sparse_library,dense_us,sparse_us,speedup,shapes_from,source"


def csv_file(tmp_path, header: str, *rows: str):
    path = tmp_path / "rows.csv"
    path.write_text("\n".join((header,) + rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dev():
    return published.run(corpora=["a100_2to4_dev"])


def test_every_dev_row_is_predicted_with_its_own_backend(dev):
    assert len(dev.points) == 9 and not dev.not_evaluated
    assert {p.kernel for p in dev.points} == {"cusparselt", "cutlass"}
    assert all(p.format == "2:4" and p.arch == "a100_2to4" and p.software == "pytorch-eager" for p in dev.points)
    d = render.to_dict(dev)
    assert {"mape", "spearman", "n", "mape_speedup", "mape_dense_time", "mape_sparse_time", "sign_agreement"} <= set(d["summary"])
    assert {"predicted_speedup", "measured_speedup", "predicted_dense_s", "measured_s", "error"} <= set(d["points"][0])


def test_dev_rows_meet_the_accuracy_targets(dev):
    s = dev.summary
    assert s.metric == "speedup" and s.mape == s.mape_speedup
    assert s.mape_speedup <= 0.10 and s.mape_time <= 0.15 and s.sign_errors == 0


def test_the_default_run_reads_every_shipped_corpus():
    names = [lc.corpus.name for lc in published.load()]
    assert names == ["a100_2to4_dev", "gpu_2to4_heldout", "gpu_kernel_dev"]


def test_every_kernel_corpus_row_is_evaluated_or_reported_with_its_reason():
    report = published.run(corpora=["gpu_kernel_dev"])
    assert len(report.points) + len(report.not_evaluated) == report.corpora[0].rows == 480
    assert all(r.reason for r in report.not_evaluated)
    entries = render.to_dict(report)["not_evaluated"]
    assert sum(e["n"] for e in entries) == len(report.not_evaluated)


def test_kernel_rows_are_predicted_under_the_kernel_stack_without_host_overhead(tmp_path):
    kernel = published.run(csv_path=csv_file(tmp_path, KERNEL_HEADER,
                                             "K1,A100,fp16,64,2048,2048,cuBLASLt,cuSPARSELt 0.8.1,14,16,0.88,L,x"))
    torch_level = published.run(csv_path=csv_file(tmp_path, TORCH_HEADER,
                                                  "T1,A100,fp16,64,2048,2048,cusparselt,14,16,0.88,pytorch"))
    (k,), (t,) = kernel.points, torch_level.points
    assert k.software == "kernel" and k.shape_set == "L" and k.predicted_s < t.predicted_s
    assert any("kernel software stack" in n for n in kernel.notes)
    assert any("pytorch-eager software stack" in n for n in torch_level.notes)


def test_rows_the_model_cannot_evaluate_are_counted_with_their_reason(tmp_path, monkeypatch):
    monkeypatch.setitem(gpu_predict.GPU_ARCHS, "Z100", "z100_2to4")
    path = csv_file(tmp_path, TORCH_HEADER,
                    "A,A100,fp16,64,256,256,cusparselt,10,9,1.1,pytorch",
                    "B,B999,fp16,64,256,256,cusparselt,10,9,1.1,pytorch",
                    "C,Z100,fp16,64,256,256,cusparselt,10,9,1.1,pytorch",
                    "D,A100,fp8_e4m3,64,256,256,cusparselt,10,9,1.1,pytorch",
                    "E,A100,fp16,64,256,256,magicsparse,10,9,1.1,pytorch")
    report = published.run(csv_path=path)
    reasons = {r.id: r.reason for r in report.not_evaluated}
    assert [p.id for p in report.points] == ["A"] and report.summary.n == 1
    assert "no arch spec is mapped to GPU 'B999'" in reasons["B"]
    assert "z100_2to4 for Z100 is not shipped yet" in reasons["C"]
    assert "does not model dtype fp8" in reasons["D"]
    assert "no sparse back end 'magicsparse'" in reasons["E"]
    assert "not evaluated: 1 rows of rows (B999 fp16)" in render.to_table(report)


def test_rows_are_summarised_per_corpus_and_per_gpu_and_dtype(tmp_path):
    path = csv_file(tmp_path, TORCH_HEADER,
                    "A,A100,fp16,4096,4096,4096,cusparselt,600,500,1.2,kernel",
                    "B,A100,bf16,4096,4096,4096,cusparselt,600,500,1.2,kernel",
                    "C,H100,fp16,4096,4096,4096,cusparselt,250,200,1.25,kernel",
                    "D,A100,fp16,8192,4096,4096,cusparselt,1200,900,1.33,kernel")
    report = published.run(csv_path=path)
    keys = [(g.by, g.key, g.summary.n) for g in report.groups]
    assert keys == [(("source",), ("rows",), 4),
                    (published.GROUP_BY, ("rows", "A100", "fp16", "a100_2to4"), 2),
                    (published.GROUP_BY, ("rows", "A100", "bf16", "a100_2to4"), 1),
                    (published.GROUP_BY, ("rows", "H100", "fp16", "h100_2to4"), 1)]


def test_a_gpu_can_be_mapped_to_a_spec_explicitly_and_the_report_says_so(tmp_path):
    path = csv_file(tmp_path, TORCH_HEADER, "A,B999,fp16,64,256,256,cusparselt,10,9,1.1,kernel")
    report = published.run(csv_path=path, gpu_archs={"B999": "a100_2to4"})
    assert report.points[0].arch == "a100_2to4"
    assert any("B999" in n and "mapped explicitly" in n for n in report.notes)


def test_a_broken_override_is_an_error_not_a_skipped_row():
    with pytest.raises(SpecError):
        published.run(corpora=["a100_2to4_dev"], overrides=("software.launch_gap_s=-1",))


def test_the_fit_times_rows_exactly_as_the_analytic_engine_predicts_them():
    from simsparse.archs import load_arch
    from simsparse.validate import gpu_fit

    rows = [r for r in gpu_fit.dev_rows("h100_pcie_2to4") if r.m in (64, 4096)][:12]
    fast = gpu_fit.row_times(load_arch("h100_pcie_2to4"), rows)
    (loaded,) = published.load(["gpu_kernel_dev"])
    points = published.evaluate(published.LoadedCorpus(corpus=loaded.corpus, rows=tuple(rows)),
                                predictor=gpu_predict.GpuPredictor(engine="analytic"))[0]
    assert [(p.predicted_dense_s, p.predicted_s) for p in points] == pytest.approx([tuple(t) for t in fast], rel=1e-12)


def test_every_spec_is_fitted_on_dev_rows_only():
    from simsparse.validate import gpu_fit

    dev_ids = {r.id for lc in published.load([n for n, (_, role) in published.CORPORA.items() if role == "dev"])
               for r in lc.rows}
    for arch in ("a100_pcie_2to4", "h100_pcie_2to4", "a100_2to4"):
        rows = gpu_fit.dev_rows(arch)
        assert rows and {r.id for r in rows} <= dev_ids
