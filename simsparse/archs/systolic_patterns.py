"""Which execution pattern an N:M systolic array uses for a layer's mask.

Candidates: dense; every supported N:M pattern whose N covers the mask's measured envelope
(every group of M along k holds <= N nonzeros); and, when the spec enables it, VEGETA-style
row-wise N:M, where each output row takes the smallest supported N covering its own group
maxima (rows above every choice run dense, all-zero rows are skipped), and rows of equal N
run as one sub-GEMM (the output-channel permutation is free; for grouped convs, whose masks
stack the groups' rows, a tier's rows are spread evenly over the groups). The winner has the fewest
cycles by the model's cost (the closed form with its stalls, or SCALE-Sim's scratchpads under
`memory.reuse: scalesim`), then the fewest compute cycles, weight slots and metadata bits;
slots - nnz is reported as the zeros a looser pattern carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from simsparse.archs.systolic_folds import Pass, compute_cycles
from simsparse.archs.systolic_spec import RowWise, SystolicSpec
from simsparse.errors import GeometryError
from simsparse.records import LayerWork


@dataclass(frozen=True)
class Choice:
    """An execution pattern for one layer: its label and the sub-GEMMs the array runs."""

    label: str
    passes: tuple[Pass, ...]
    notes: tuple[str, ...] = ()

    @property
    def weight_slots(self) -> int:
        return sum(p.n * p.k_c for p in self.passes)

    @property
    def metadata_bits(self) -> float:
        return sum(p.n * p.k_c * p.metadata_bits_per_value for p in self.passes)


def compressed_k(k: int, n: int, m: int) -> int:
    """Reduction slots after N:M compression: n per full group of m, min(n, rest) for a last
    partial group (its values cannot share slots with another group's index range)."""
    return (k // m) * n + min(n, k % m)


def envelope(work: LayerWork, m: int) -> int:
    """Smallest N such that every group of m along k holds <= N nonzeros (the measured Pattern's)."""
    return int(_measured(work.pattern.nm_envelope, m, work))


def _measured(table, m: int, work: LayerWork):
    if m not in table:
        raise GeometryError(f"layer {work.name}: its Pattern has no N:M statistics for groups of {m}; "
                            f"masks.patterns measures M in {', '.join(map(str, sorted(table)))}: "
                            "use one of those in the spec")
    return table[m]


def dense_choice(work: LayerWork, notes: tuple[str, ...] = ()) -> Choice:
    g = work.gemm
    return Choice(label="dense", passes=(Pass("dense", g.m, g.n, g.k, g.k, 0.0),), notes=notes)


def live_columns(work: LayerWork) -> int:
    """Reduction columns holding a weight in some row: the activations an N:M pass must fetch
    (the Pattern's columns less its all-zero ones; a grouped conv's stacked groups share them)."""
    return work.pattern.cols - work.pattern.zero_cols


def _uniform_choices(work: LayerWork, spec: SystolicSpec) -> tuple[list[Choice], dict[int, int]]:
    g = work.gemm
    envs: dict[int, int] = {}
    out = []
    live = live_columns(work) if spec.patterns else g.k
    for pat in spec.patterns:
        if pat.m not in envs:
            envs[pat.m] = envelope(work, pat.m)
        if envs[pat.m] <= pat.n:
            p = Pass(pat.label, g.m, g.n, live, compressed_k(g.k, pat.n, pat.m), pat.metadata_bits_per_value)
            out.append(Choice(label=pat.label, passes=(p,)))
    return out, envs


def row_wise_choice(work: LayerWork, rw: RowWise) -> Choice:
    """Rows grouped by their own N (smallest choice covering the row's group maximum)."""
    g = work.gemm
    row_max = _measured(work.pattern.row_group_max_histogram, rw.m, work)   # {row's group max: rows}
    choices = np.asarray(rw.n_choices + (rw.m,))
    rows_by_n: dict[int, int] = {}
    for value, rows in row_max.items():
        idx = int(np.searchsorted(choices, value, side="left"))
        n_val = 0 if value == 0 else int(choices[min(idx, choices.size - 1)])
        rows_by_n[n_val] = rows_by_n.get(n_val, 0) + rows
    passes = []
    groups = work.pattern.rows // max(1, g.n)    # grouped convs stack their groups' rows
    for n_val in sorted(rows_by_n):
        rows = -(-rows_by_n[n_val] // groups)
        if n_val == 0:
            continue
        if n_val == rw.m:
            passes.append(Pass("dense", g.m, rows, g.k, g.k, 0.0))
        else:
            k_c = compressed_k(g.k, n_val, rw.m)
            passes.append(Pass(f"{n_val}:{rw.m}", g.m, rows, g.k, k_c,
                               rw.metadata_bits_per_value + rw.row_code_bits / k_c))
    tiers = ", ".join(f"{p.label} x{p.n} rows" for p in passes) or "all rows empty"
    skipped = rows_by_n.get(0, 0)
    note = f"row-wise N:{rw.m} tiers: {tiers}" + (f"; {skipped} empty rows skipped" if skipped else "")
    return Choice(label=f"row-wise:{rw.m}", passes=tuple(passes), notes=(note,))


def _cost_key(c: Choice, spec: SystolicSpec) -> tuple:
    cycles = sum(compute_cycles(p, rows=spec.rows, cols=spec.cols, dataflow=spec.dataflow) for p in c.passes)
    return cycles, c.weight_slots, c.metadata_bits


def choose(work: LayerWork, spec: SystolicSpec, *, nnz: float,
           cost: Callable[[Choice], float] | None = None) -> Choice:
    """The pattern this layer runs in (see module docstring), with notes saying why.

    `cost` (total cycles of a candidate, stalls included) ranks the candidates first, so a
    compressed pattern whose metadata traffic makes a memory-bound layer slower loses to dense;
    compute cycles, weight slots and metadata bits break ties.
    """
    g = work.gemm
    shape = (work.pattern.rows, work.pattern.cols)
    if shape not in ((g.n, g.k), (g.n * g.count, g.k)):
        raise GeometryError(f"layer {work.name}: mask shape {shape} does not match the GEMM "
                            f"[n, k] = [{g.n}, {g.k}] (x{g.count} groups); give the mask in GEMM orientation "
                            "(out, Cin*kh*kw)")
    uniform, envs = _uniform_choices(work, spec)
    candidates = [dense_choice(work)] + uniform
    if spec.row_wise is not None:
        candidates.append(row_wise_choice(work, spec.row_wise))
    if cost is None:
        best = min(candidates, key=lambda c: _cost_key(c, spec))
    else:
        best = min(candidates, key=lambda c: (cost(c),) + _cost_key(c, spec))
    env_text = ", ".join(f"{n}:{m}" for m, n in sorted(envs.items()))
    slots = best.weight_slots
    if best.label == "dense" and not uniform and spec.row_wise is None:
        supported = ", ".join(p.label for p in spec.patterns) or "none"
        note = (f"mask fits no supported pattern ({supported}); measured envelope {env_text or 'n/a'}; "
                "runs dense")
    elif best.label == "dense":
        note = f"runs dense: no supported pattern is faster (envelope {env_text or 'n/a'})"
    else:
        note = f"runs {best.label}" + (f" (envelope {env_text})" if env_text else "")
    note += f"; {slots - nnz:g} of {slots} weight slots hold zeros"
    return Choice(label=best.label, passes=best.passes, notes=(note,) + best.notes)
