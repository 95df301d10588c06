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


def _shipped_folder(folder: str) -> Path:
    """The shipped folder `folder` ("accelerators", "workloads/models", ...)."""
    top, _, sub = folder.partition("/")
    return data_dir(top) / sub if sub else data_dir(top)


def shipped_yaml(folder: str, name: str) -> Path | None:
    """Path of `folder/name.yaml` among the shipped data, or None."""
    path = _shipped_folder(folder) / f"{name}.yaml"
    return path if path.is_file() else None


def shipped_names(folder: str) -> list[str]:
    """Names of the YAML files in the shipped `folder` (sorted; [] when it is absent)."""
    d = _shipped_folder(folder)
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []
