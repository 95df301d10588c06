"""`simsparse report`: report.md says what `compare` says, every figure it embeds exists, the Markdown
renders to tables and images, missing figures are "n/a" (never invented), bad input is one line
with exit 2 and no report.md, and the committed validation summary is current.

The checkpoints are tiny native ones on the shipped `mlp` geometry (fc1 256x64, fc2 256x256,
fc3 10x256), one per DST family's structure, so the whole module runs in seconds."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from types import SimpleNamespace

import markdown
import numpy as np
import pytest

from simsparse import api, plots, report_data, report_md
from simsparse.api import reporting
from simsparse.cli import main
from simsparse.graph.catalog import load_workload
from simsparse.kernels import measure as kernel_measure
from simsparse.masks import native
from simsparse.errors import SimSparseError
from simsparse.records import Estimate

from ckpt_factory import fanin_mask, nm_mask

ARCHS = ["a100_2to4", "vegeta_like", "cpu_host"]


def _masks(kind: str) -> dict[str, np.ndarray]:
    if kind == "nm":
        fc1, fc2 = nm_mask(256, 64, n=2, m=4, seed=1), nm_mask(256, 256, n=2, m=4, seed=2)
    elif kind == "fanin":
        fc1, fc2 = fanin_mask(256, 64, k=8, seed=1), fanin_mask(256, 256, k=26, seed=2)
    else:  # channels: a third of fc1's neurons removed, and the matching inputs of fc2
        fc1, fc2 = np.ones((256, 64), bool), np.random.default_rng(3).random((256, 256)) < 0.3
        fc1[::3] = False
        fc2[:, ::3] = False
    return {"fc1.weight": fc1, "fc2.weight": fc2, "fc3.weight": np.ones((10, 256), bool)}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpts")
    geometry = load_workload("mlp")
    paths = []
    for kind, acc in (("nm", 0.91), ("fanin", 0.93), ("channels", 0.88)):
        path = d / f"{kind}.pt"
        native.save(path, masks=_masks(kind), geometry=geometry, meta={"method": kind, "test_accuracy": acc, "steps": 5})
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def written(ckpts, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", *ckpts, "--arch", *ARCHS, "--batch", "1,8", "--no-measure", "--out", str(out)]) == 0
    return out


def _si(text: str) -> float:
    scale = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "m": 1e-3, "µ": 1e-6, "n": 1e-9}
    num, _, unit = text.partition(" ")
    prefix = unit[:-1] if unit.endswith(("s", "B", "J")) and len(unit) > 1 else ("" if unit in ("s", "B", "J") else unit)
    return float(num) * scale[prefix]


def _table_after(md: str, heading: str) -> list[dict[str, str]]:
    lines = md.split(heading, 1)[1].splitlines()
    rows = [l for l in lines if l.startswith("|")]
    block = []
    for l in lines:
        if l.startswith("|"):
            block.append(l)
        elif block:
            break
    header = [c.strip() for c in block[0].strip("|").split(" | ")]
    return [dict(zip(header, (c.strip() for c in r.strip("|").split(" | ")))) for r in block[2:]] if rows else []


def test_report_numbers_equal_what_compare_prints(ckpts, written, capsys):
    rows = _table_after((written / "report.md").read_text(), "## Summary: trained networks × arch × batch")
    assert len(rows) == len(ckpts) * len(ARCHS) * 2
    for batch in (1, 8):
        capsys.readouterr()
        assert main(["compare", *ckpts, "--arch", *ARCHS, "--batch", str(batch), "--format", "json"]) == 0
        for r in json.loads(capsys.readouterr().out)["reports"]:
            label = r["provenance"]["checkpoint"].rsplit("/", 1)[1].removesuffix(".pt")
            md = next(x for x in rows if (x["network"], x["arch"], x["batch"]) == (label, r["arch"], str(batch)))
            assert float(md["density (FLOP-weighted)"]) == pytest.approx(r["total"]["density"], abs=5e-4)
            assert float(md["speedup"].rstrip("×")) == pytest.approx(r["speedup_vs_dense"], abs=5e-4)
            for col, value in (("latency", r["total"]["latency_s"]), ("dense latency", r["dense_total"]["latency_s"]),
                               ("FLOPs executed", r["total"]["flops_executed"])):
                assert _si(md[col]) == pytest.approx(value, rel=5e-4), col


def test_every_embedded_image_exists_and_is_a_png(written):
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (written / "report.md").read_text())
    assert {"pareto.png", "heatmap.png", "layers.png", "roofline.png"} <= set(images)
    for name in images:
        assert (written / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_markdown_renders_every_table_and_image(written):
    text = (written / "report.md").read_text()
    html = markdown.markdown(text, extensions=["tables"])
    assert html.count("<table>") == text.count("\n|---|") >= 4     # summary, networks, per-layer, provenance
    assert html.count("<img") == len(re.findall(r"!\[", text))
    for heading in ("Findings", "Summary: trained networks", "Figures", "Measured beside modelled",
                    "How each number was obtained"):
        assert f"<h2>{heading}" in html


def test_each_figure_has_a_title_and_a_one_sentence_caption(written):
    text = (written / "report.md").read_text()
    for title, image, caption in re.findall(r"### (.+)\n\n!\[[^\]]*\]\(([^)]+)\)\n\n\*(.+)\*\n", text):
        assert title and image.endswith(".png")
        assert caption.endswith(".") and caption.count(". ") == 0, caption


def test_the_data_behind_the_report_is_written_beside_it(ckpts, written):
    data = json.loads((written / "report.json").read_text())
    assert len(data["rows"]) == len(ckpts) * len(ARCHS) * 2
    assert (written / "summary.csv").read_text().count("\n") == len(data["rows"]) + 1
    assert data["validation"]["groups"], "the committed validation summary is cited"


def test_figures_a_build_does_not_model_are_na_not_invented(ckpts, written):
    rows = {(r["network"], r["arch"], r["batch"]): r
            for r in _table_after((written / "report.md").read_text(), "## Summary: trained networks × arch × batch")}
    gpu, systolic = rows[("nm", "a100_2to4", "8")], rows[("nm", "vegeta_like", "8")]
    assert gpu["energy"] == "not modelled" and systolic["energy"].endswith("J)")
    assert re.fullmatch(r"[-+]\d+ % … [-+]\d+ %( \(prior\))?", gpu["error band"]), gpu["error band"]
    assert systolic["error band"] == "n/a"                 # no validation residuals for the N:M kind


def test_structure_found_is_measured_from_the_masks(written):
    rows = {r["network"]: r for r in _table_after((written / "report.md").read_text(),
                                                  "## Networks and the structure training produced")}
    assert rows["nm"]["tightest N:M per layer"].startswith("2:4")
    assert rows["fanin"]["constant fan-in"] == "2/2"
    assert rows["channels"]["channels removed (out / in)"] == "86 / 86"


def test_bad_input_is_one_line_exit_2_and_no_report(ckpts, tmp_path, capsys):
    cases = [[ckpts[0], "--arch", "a100_2to4", "--batch", "1,x"], [str(tmp_path / "no.pt"), "--arch", "a100_2to4"],
             [ckpts[0], "--arch", "no_such_arch"], [ckpts[0], ckpts[0], "--arch", "a100_2to4"],
             [ckpts[0], "--arch", "a100_2to4", "--focus", "nope"]]
    for i, args in enumerate(cases):
        out = tmp_path / f"out{i}"
        assert main(["report", *args, "--out", str(out)]) == 2, args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error" in err, err
        assert not (out / "report.md").exists()


def test_a_failure_while_drawing_leaves_no_report_md(ckpts, tmp_path, monkeypatch):
    (tmp_path / "report.md").write_text("an old report")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots, "roofline_plot", broken)
    with pytest.raises(RuntimeError):
        api.report(checkpoints=ckpts[:1], archs=["a100_2to4"], batches=[1], measure=False, out=tmp_path)
    assert not (tmp_path / "report.md").exists()


def test_rows_carry_the_software_stack_and_error_band_of_the_report(ckpts):
    r = api.evaluate(arch="a100_2to4", mask=ckpts[0], batch=8, software="pytorch-eager")
    net = report_data.what_if_network(family="N:M", pattern="2:4", workload="mlp")
    row = report_data.row_of(net, r, batch=8, kind="gpu_sparse_tensor_core")
    assert row.software == "pytorch-eager" and row.error_band is r.total.error_band is not None
    assert report_md.band_text(row.error_band).count("%") == 2


def test_layer_rows_show_the_ranked_formats_and_the_shrunk_shapes_of_a_channel_pruned_network(ckpts):
    r = api.evaluate(arch="a100_2to4", mask=ckpts[2], batch=8)   # a third of fc1's neurons removed
    layers = {row.layer: row for row in report_data.layer_rows(r)}
    assert layers["fc1.weight"].shrunk == "256x64 -> 170x64" and layers["fc2.weight"].shrunk == "256x256 -> 256x170"
    assert layers["fc3.weight"].shrunk is None and report_data.residual_policy_of(r) == "prune-skip"
    alts = layers["fc2.weight"].alternatives
    assert alts == dict(next(e for e in r.estimates if e.layer == "fc2.weight").alternatives) and "csr" in alts
    assert report_md.alternatives_text(alts).startswith("dense ")
    unshrunk = api.evaluate(arch="a100_2to4", mask=ckpts[2], batch=8, shrink=False)
    assert report_data.residual_policy_of(unshrunk) is None
    assert all(row.shrunk is None for row in report_data.layer_rows(unshrunk))


def test_an_unknown_software_stack_is_refused_with_one_line_and_no_report(ckpts, tmp_path, capsys):
    assert main(["report", ckpts[0], "--arch", "a100_2to4", "--software", "jax", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--software" in err or "jax" in err, err
    assert not (tmp_path / "report.md").exists()


def test_roofline_peaks_come_from_the_spec_and_the_roof_is_the_level_the_stack_reads(ckpts):
    cold = api.report(checkpoints=ckpts[:1], archs=["a100_2to4"], batches=[8], measure=False,
                      software="pytorch-graph").roofline                  # a captured model: cold L2, HBM roof
    assert cold.peak_flops_per_s == pytest.approx(312e12, rel=0.01)       # A100 fp16 dense, datasheet
    assert cold.sparse_peak_flops_per_s == pytest.approx(2 * cold.peak_flops_per_s)
    assert (cold.memory_level, cold.bandwidth_bytes_per_s) == ("HBM", pytest.approx(2.039e12))
    assert {p.layer for p in cold.points} == {"fc1.weight", "fc2.weight", "fc3.weight"}
    warm = api.report(checkpoints=ckpts[:1], archs=["a100_2to4"], batches=[8], measure=False).roofline
    assert (warm.memory_level, warm.bandwidth_bytes_per_s) == ("L2", pytest.approx(5120 * 1.41e9))  # kernel stack
    assert {p.layer for p in warm.points} == {"fc1.weight", "fc2.weight", "fc3.weight"}


def test_kernels_timed_here_sit_beside_the_cpu_model_of_the_same_gemm(ckpts):
    # allow_noisy: this checks which kernels are paired with which model, on a machine of any load
    data = api.report(checkpoints=ckpts[:1], archs=["cpu_host"], batches=[1], measure_layers=1, allow_noisy=True)
    kernels = {m.kernel for m in data.measured}
    assert {"dense", "nm"} <= kernels
    for m in data.measured:
        assert (m.m, m.n, m.k, m.pattern) == (1, 256, 256, "2:4") and m.measured_s > 0 and m.modelled_s > 0
        assert m.noise >= 0


def test_a_channel_pruned_layer_is_timed_and_modelled_with_the_shrunk_kernel_on_its_own_mask(ckpts):
    data = api.report(checkpoints=[ckpts[2]], archs=["cpu_host"], batches=[1], measure_layers=2, allow_noisy=True)
    shrunk = [m for m in data.measured if m.kernel == "shrunk"]
    assert shrunk and all(m.pattern.startswith("channels=") and m.modelled_s > 0 for m in shrunk)


def test_kernels_are_timed_on_the_shape_their_mask_describes_not_the_shrunk_one(ckpts, monkeypatch):
    # the channels network is shrunk before the archs run it (fc1 256x64 -> 170x64, fc2 256x256 -> 256x170);
    # its masks (and so the measured patterns) describe the layers as trained
    timed = SimpleNamespace(median_s=1e-5, iqr_s=0.0, threads=1, load_avg_1min=0.0, noise=0.0, noisy="")
    monkeypatch.setattr(reporting, "measure", lambda **kw: SimpleNamespace(results=[timed]))
    data = api.report(checkpoints=[ckpts[2]], archs=["cpu_host"], batches=[1], measure_layers=2)
    shapes = {m.layer: (m.n, m.k) for m in data.measured}
    assert shapes == {"fc1.weight": (256, 64), "fc2.weight": (256, 256)}


def test_noisy_timings_are_refused_with_one_line_unless_allowed_then_marked(ckpts, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(kernel_measure, "problem", lambda **kw: "it got 40% of the CPU time it asked for")
    args = ["report", ckpts[0], "--arch", "cpu_host", "--batch", "1", "--max-wait", "0", "--out", str(tmp_path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--allow-noisy" in err and not (tmp_path / "report.md").exists()
    assert main([*args, "--allow-noisy"]) == 0
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["measured"] and all(m["noisy"].startswith("it got 40%") for m in data["measured"])
    assert "(noisy: it got 40%" in (tmp_path / "report.md").read_text()


def test_findings_are_five_lines_computed_from_the_rows(ckpts):
    data = api.report(checkpoints=ckpts, archs=["vegeta_like"], batches=[1], measure=False)
    lines = report_md.findings(data)
    best = max(data.rows, key=lambda r: r.speedup)
    assert len(lines) == 5
    assert f"vegeta_like {best.label} {best.speedup:.2f}×" in lines[2]


def test_the_committed_validation_summary_is_current():
    """Fails when a model change moves the published-validation figures: rerun
    `PYTHONPATH=. python benchmarks/bench_report_validation.py --write`."""
    committed = json.loads(report_data.validation_summary_path().read_text())
    assert report_data.validation_summary(api.validate(device="published")) == committed


@pytest.mark.parametrize("text", ["1_0", "６４", "1,99999999999", "1,,2", "", "1,x"])
def test_report_batches_are_read_by_the_strict_parser(text):
    with pytest.raises(SimSparseError, match="--batch"):
        api.parse_batches(text)


def test_report_batches_keep_their_order_without_repeats():
    assert api.parse_batches("256,1,256") == (256, 1) and api.parse_batches([8, 1]) == (8, 1)
