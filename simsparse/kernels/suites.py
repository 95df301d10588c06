"""Named measurement suites: lists of cases (one GEMM, one pattern, the kernels to time on it).

A case is y[m, n] = x[m, k] @ W[n, k]^T; m = batch rows, n = out features, k = in features.
Other modules (calibration, validation) register their own suites in `SUITES` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from simsparse.registry import Registry

BATCHES = (1, 4, 16, 64, 256)
SRIGL_SHAPES = ((3072, 768), (768, 3072))      # (n, k): 768 -> 3072 and 3072 -> 768 (ViT-B MLP)
SRIGL_SPARSITIES = (0.80, 0.90, 0.95, 0.99)


@dataclass(frozen=True)
class Case:
    m: int
    n: int
    k: int
    pattern: str                 # simsparse.masks.synthetic pattern string
    kernels: tuple[str, ...]     # kernels to time on it (all must accept the pattern)


SUITES: Registry[Callable[[], tuple[Case, ...]]] = Registry("measurement suite")


def fan_in_for(k: int, sparsity: float) -> int:
    """Constant fan-in that gives `sparsity` over k inputs (at least 1)."""
    return max(1, round(k * (1.0 - sparsity)))


@SUITES.register("srigl")
def srigl_suite() -> tuple[Case, ...]:
    """SRigL's CPU figure: constant fan-in, 80/90/95/99 %, both ViT-B MLP GEMMs, batch 1..256."""
    return tuple(Case(m=b, n=n, k=k, pattern=f"fanin={fan_in_for(k, s)}", kernels=("dense", "csr", "condensed"))
                 for (n, k) in SRIGL_SHAPES for s in SRIGL_SPARSITIES for b in BATCHES)


@SUITES.register("nm")
def nm_suite() -> tuple[Case, ...]:
    """N:M masks (2:4, 1:4, 2:8) on a square 1024 GEMM, batch 1..256."""
    return tuple(Case(m=b, n=1024, k=1024, pattern=p, kernels=("dense", "csr", "nm"))
                 for p in ("2:4", "1:4", "2:8") for b in BATCHES)


@SUITES.register("channels")
def channels_suite() -> tuple[Case, ...]:
    """Channel-removed masks (Chase-like): 50 % and 25 % of output channels kept."""
    return tuple(Case(m=b, n=n, k=k, pattern=p, kernels=("dense", "shrunk", "csr"))
                 for (n, k) in SRIGL_SHAPES for p in ("channels=0.5", "channels=0.25") for b in BATCHES)


@SUITES.register("smoke")
def smoke_suite() -> tuple[Case, ...]:
    """Tiny shapes, every kernel once: checks the plumbing in seconds (tests, CI)."""
    return (Case(m=1, n=64, k=96, pattern="fanin=8", kernels=("dense", "csr", "condensed")),
            Case(m=3, n=64, k=96, pattern="2:4", kernels=("dense", "nm", "condensed")),
            Case(m=5, n=64, k=96, pattern="channels=0.5", kernels=("dense", "shrunk")))


def suite_cases(name: str) -> tuple[Case, ...]:
    """The cases of a registered suite (UnknownNameError listing the suites otherwise)."""
    return SUITES.get(name)()
