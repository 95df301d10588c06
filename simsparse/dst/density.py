"""Layer-wise density distributions: `uniform` and `erk` (Erdős–Rényi-Kernel).

ERK (Evci et al. 2020, as in METHODS.md): the raw score of a layer is the sum of its weight
tensor's dims divided by their product; densities are ε·score with one global ε solved so that
the total number of nonzeros equals the budget density·Σ numel. A layer whose density would
exceed 1 is made dense and ε is re-solved over the remaining layers.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping

from simsparse.errors import SimSparseError
from simsparse.registry import Registry

DISTRIBUTIONS: Registry[Callable[..., dict[str, float]]] = Registry("density distribution")


def _check_density(density: float) -> None:
    if not 0.0 < density <= 1.0:
        raise SimSparseError(f"density {density!r} is outside (0, 1]; use a sparsity in [0, 1)")


@DISTRIBUTIONS.register("uniform")
def uniform_densities(shapes: Mapping[str, tuple[int, ...]], *, density: float) -> dict[str, float]:
    """Every layer gets the same density."""
    _check_density(density)
    return {fqn: float(density) for fqn in shapes}


@DISTRIBUTIONS.register("erk")
def erk_densities(shapes: Mapping[str, tuple[int, ...]], *, density: float) -> dict[str, float]:
    """ERK densities whose nnz sum to density·Σ numel (layers capped at 1, ε re-solved)."""
    _check_density(density)
    sizes = {fqn: math.prod(s) for fqn, s in shapes.items()}
    scores = {fqn: sum(s) / math.prod(s) for fqn, s in shapes.items()}
    budget = density * sum(sizes.values())
    dense: set[str] = set()
    while True:
        free = [f for f in shapes if f not in dense]
        if not free:
            return {f: 1.0 for f in shapes}
        left = budget - sum(sizes[f] for f in dense)
        eps = left / sum(scores[f] * sizes[f] for f in free)
        over = [f for f in free if eps * scores[f] > 1.0]
        if not over:
            break
        dense.update(over)
    return {f: (1.0 if f in dense else eps * scores[f]) for f in shapes}


def layer_densities(shapes: Mapping[str, tuple[int, ...]], *, density: float, distribution: str) -> dict[str, float]:
    """Densities per fully-qualified weight name under the named distribution."""
    return DISTRIBUTIONS.get(distribution)(shapes, density=density)


def layer_nnz(numel: int, density: float) -> int:
    """Nonzeros a layer of `numel` weights holds at `density` (at least one)."""
    return max(1, min(numel, int(round(density * numel))))
