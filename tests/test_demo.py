"""`simsparse demo` (the README's main job) runs end to end: six DST runs, their report with every
figure, the measured CPU kernels, and five findings printed at the end."""

import json
import re

from simsparse.cli import main
from simsparse.demo import ARCHS, BATCHES, RUNS


def test_demo_trains_every_family_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--steps", "3"]) == 0
    text = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in text
    closing = text.split(f"report: {out / 'report.md'}", 1)[1].splitlines()
    assert len([line for line in closing if line.startswith("  ")]) == 5
    assert {p.name for p in out.glob("*.pt")} == {f"{name}.pt" for name, _ in RUNS}
    data = json.loads((out / "report.json").read_text())
    trained = [r for r in data["rows"] if not r["synthetic"]]
    assert len(trained) == len(RUNS) * len(ARCHS) * len(BATCHES)
    assert {r["kind"] for r in data["rows"]} == {"gpu_sparse_tensor_core", "nm_systolic", "cpu_simd"}
    assert any(r["synthetic"] for r in data["rows"]) and data["measured"]
    md = (out / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(images) >= 4 and all((out / name).is_file() for name in images)


def test_an_unknown_software_stack_is_refused_before_any_training(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--software", "no-such-stack"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-stack" in err
    assert not out.exists()
