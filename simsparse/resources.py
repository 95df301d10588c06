"""Where the shipped data lives: `accelerators/` and `workloads/`.

In a source checkout (editable install) they sit at the repository root; a wheel installs
them as `simsparse/accelerators` and `simsparse/workloads` (see pyproject's package-dir).
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder of shipped data called `name` ("accelerators" or "workloads")."""
    for candidate in (_PKG.parent / name, _PKG / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"simsparse data folder {name!r} is missing from the installation")


def shipped_yaml(folder: str, name: str) -> Path | None:
    """Path of `folder/name.yaml` among the shipped data, or None."""
    base = data_dir(folder.split("/")[0])
    sub = folder.split("/", 1)[1] if "/" in folder else ""
    path = (base / sub / f"{name}.yaml") if sub else (base / f"{name}.yaml")
    return path if path.is_file() else None


def shipped_names(folder: str) -> list[str]:
    base = data_dir(folder.split("/")[0])
    sub = folder.split("/", 1)[1] if "/" in folder else ""
    d = base / sub if sub else base
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []
