"""`simsparse demo` (the README's main job) runs end to end and leaves its reports behind."""

import json

from simsparse.cli import main


def test_demo_trains_compares_and_writes_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "6"]) == 0
    text = capsys.readouterr().out
    assert "[4/4]" in text and "speedup" in text
    data = json.loads((out / "compare.json").read_text())
    assert len(data["reports"]) == 4 * 3  # 4 checkpoints x 3 archs
    assert (out / "compare.csv").is_file() and (out / "speedup.png").is_file()
    assert {p.name for p in out.glob("*.pt")} == {"rigl.pt", "srigl.pt", "nm-structure-decay-2to4.pt", "chase.pt"}
