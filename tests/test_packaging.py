"""Packaging: every code package is listed for the wheel, and shipped data is found by name."""

import tomllib
from pathlib import Path

from simsparse.resources import data_dir

ROOT = Path(__file__).resolve().parents[1]


def test_every_code_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "simsparse").rglob("__init__.py")}
    assert found <= listed, f"add to pyproject packages: {sorted(found - listed)}"


def test_shipped_data_folders_are_found():
    assert (data_dir("accelerators") / "a100_2to4.yaml").is_file()
    assert (data_dir("workloads") / "models" / "resnet50.yaml").is_file()


def test_torch_stays_pinned_to_the_cpu_build_range():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch>=2.3,<2.14" in deps
