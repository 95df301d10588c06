"""The conformance suite every hardware kind passes, and the shared reference masks.

In the manner of scikit-learn's `check_estimator`: `check_arch_kind(kind)` runs every check in
`CHECKS` on an instance of the kind (by default its first shipped YAML spec) and raises
AssertionError naming the check, the arch and the case that failed. A new kind gets all of
this for free; it only declares its capabilities on its model class (`kernels`, `unstructured`,
`engines_agree_rel`, see `simsparse.archs`).

    from simsparse.testing import check_arch_kind
    check_arch_kind("my_kind")                         # or check_arch_kind("my_kind", arch="x.yaml")

Checks: a dense mask costs exactly the dense baseline; a dense mask issues all MACs; plans are
deterministic and picklable; plans read only the measured Pattern, never the mask array; a
synthetic layer carrying only its closed-form Pattern (no mask drawn, `masks.closed_form`) plans
as its drawn mask does, and a huge one plans at all; units are non-negative; the analytic and
cycle engines agree within the tolerance the kind declares; more nonzeros never make a kind faster where it claims
unstructured support; the declared kernels are honoured.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, fields, replace
from typing import Callable

import numpy as np

from simsparse.archs import ArchModel, arch_data, kind_class, load_arch, shipped_arch_names
from simsparse.engines import engines_of, estimate
from simsparse.errors import PatternError
from simsparse.graph.lower import gemm_work
from simsparse.graph.synthetic import materialise, synthetic_gemm_work
from simsparse.masks.synthetic import make_matrix, two_four_checkerboard
from simsparse.records import Estimate, Gemm, LayerWork

# (m, n, k) of the GEMMs every check runs: compute-bound on every shipped kind, small enough to
# simulate in well under a second
CASES = ((4096, 1024, 1024), (512, 768, 3072))


def reference_masks(n: int, k: int) -> dict[str, np.ndarray]:
    """Named `[n, k]` masks of the structures simsparse models (seeded, GEMM orientation)."""
    return {
        "dense": np.ones((n, k), dtype=bool),
        "2:4": two_four_checkerboard(n, k),
        "1:8": make_matrix(n, k, "1:8", seed=1),
        "fanin": make_matrix(n, k, "fanin=0.1", seed=2),
        "unstructured": make_matrix(n, k, "density=0.2", seed=3),
        "channels": make_matrix(n, k, "channels=0.5", seed=4),
    }


def nested_masks(n: int, k: int, densities: tuple[float, ...] = (0.05, 0.2, 0.5, 0.9),
                 seed: int = 5) -> list[np.ndarray]:
    """Unstructured masks of rising density, each holding every nonzero of the one before."""
    scores = np.random.default_rng(seed).random((n, k))
    return [scores < d for d in densities]


@dataclass(frozen=True)
class Subject:
    """The instance a kind is checked on."""

    kind: str
    model: ArchModel
    dtype: str

    def work(self, m: int, n: int, k: int, mask: np.ndarray | None, name: str = "layer") -> LayerWork:
        return gemm_work(name=name, gemm=Gemm(m=m, n=n, k=k, dtype=self.dtype), mask=mask)

    def estimate(self, work: LayerWork, engine: str, *, dense: bool = False) -> Estimate:
        return estimate(self.model.plan(work, dense=dense), self.model, engine)


def subject(kind: str, arch: str | None = None) -> Subject:
    """An instance of `kind`: `arch` (name or path) or the kind's first shipped YAML spec."""
    if arch is None:
        specs = {name: arch_data(name) for name in shipped_arch_names()}
        shipped = [name for name, (data, source) in specs.items()
                   if source.endswith(".yaml") and data.get("kind") == kind]
        if not shipped:
            raise AssertionError(f"arch kind {kind!r} has no shipped YAML spec to check; add one to accelerators/")
        arch = shipped[0]
    model = load_arch(arch)
    assert isinstance(model, kind_class(kind)), f"arch {arch} is a {model.kind}, not a {kind}"
    return Subject(kind=kind, model=model, dtype=model.default_dtype())


# ----------------------------------------------------------------------------- the checks


def check_dense_mask_costs_exactly_the_dense_baseline(s: Subject) -> None:
    for engine in engines_of(s.kind):
        for m, n, k in CASES:
            work = s.work(m, n, k, np.ones((n, k), dtype=bool))
            masked, dense = s.estimate(work, engine), s.estimate(work, engine, dense=True)
            where = f"{s.model.name} {engine} {m}x{n}x{k}"
            assert masked.latency_s == dense.latency_s, f"{where}: all-ones mask {masked.latency_s} s vs dense {dense.latency_s} s"
            assert masked.flops_executed == dense.flops_executed, f"{where}: all-ones mask issues other work"


def check_dense_mask_issues_all_macs(s: Subject) -> None:
    for m, n, k in CASES:
        for dense in (False, True):
            plan = s.model.plan(s.work(m, n, k, np.ones((n, k), dtype=bool)), dense=dense)
            where = f"{s.model.name} {m}x{n}x{k} dense={dense}"
            assert plan.macs_dense == m * n * k, f"{where}: macs_dense {plan.macs_dense}"
            assert plan.macs_effective == plan.macs_dense, f"{where}: a dense mask needs every MAC"
            assert plan.macs_issued >= plan.macs_dense, f"{where}: issues {plan.macs_issued} < {plan.macs_dense} MACs"


def check_plan_is_deterministic_and_picklable(s: Subject) -> None:
    m, n, k = CASES[1]
    for name, mask in reference_masks(n, k).items():
        work = s.work(m, n, k, mask)
        first, second = s.model.plan(work), s.model.plan(work)
        assert pickle.dumps(first) == pickle.dumps(second), f"{s.model.name} {name}: two plans of one layer differ"
        back = pickle.loads(pickle.dumps(first))
        for engine in engines_of(s.kind):
            assert estimate(back, s.model, engine) == estimate(first, s.model, engine), \
                f"{s.model.name} {name} {engine}: a pickled plan estimates differently"


def check_plans_need_only_the_measured_pattern(s: Subject) -> None:
    m, n, k = CASES[1]
    for name, mask in reference_masks(n, k).items():
        work = s.work(m, n, k, mask)
        pattern_only = replace(work, mask=None)     # what a synthetic pattern of a huge GEMM will be
        assert pickle.dumps(s.model.plan(pattern_only)) == pickle.dumps(s.model.plan(work)), \
            f"{s.model.name} {name}: the plan reads the mask array, not only its Pattern"


def check_closed_form_layers_plan_as_their_drawn_masks(s: Subject) -> None:
    m, n, k = CASES[1]
    for pattern in ("2:4", "1:8", "fanin=0.1", "channels=0.5"):
        closed = synthetic_gemm_work(m=m, n=n, k=k, pattern=pattern, dtype=s.dtype, seed=1)
        assert closed.mask is None and closed.pattern.source == "closed-form", f"{pattern}: a mask was drawn"
        a, b = s.model.plan(closed), s.model.plan(materialise(closed))
        where = f"{s.model.name} {pattern}"
        assert a.format == b.format, f"{where}: the closed-form Pattern runs {a.format}, the drawn mask {b.format}"
        assert (a.macs_effective, a.macs_issued) == (b.macs_effective, b.macs_issued), f"{where}: other work"
    side = 16_384                                      # a drawn mask would be 256 M booleans
    huge = synthetic_gemm_work(m=1, n=side, k=side, pattern="2:4", dtype=s.dtype)
    plan = s.model.plan(huge)
    assert huge.mask is None and plan.macs_effective == side * side // 2, f"{s.model.name}: huge 2:4 GEMM"


def _non_negative(e: Estimate, where: str) -> None:
    for f in fields(e):
        v = getattr(e, f.name)
        if isinstance(v, (int, float)):
            assert math.isfinite(v) and v >= 0, f"{where}: {f.name} = {v}"
    assert all(b >= 0 for b in e.bytes_by_level.values()), f"{where}: negative bytes {dict(e.bytes_by_level)}"


def check_units_are_non_negative(s: Subject) -> None:
    m, n, k = CASES[1]
    memory = LayerWork(name="norm", kind="memory", op_kind="norm", bytes_moved=m * n * 2, elements=m * n,
                       dtype=s.dtype)
    for engine in engines_of(s.kind):
        for name, mask in reference_masks(n, k).items():
            for dense in (False, True):
                e = s.estimate(s.work(m, n, k, mask), engine, dense=dense)
                where = f"{s.model.name} {engine} {name} dense={dense}"
                _non_negative(e, where)
                assert e.latency_s > 0 and e.flops_dense > 0, f"{where}: a GEMM takes no time or work"
        _non_negative(s.estimate(memory, engine), f"{s.model.name} {engine} memory op")


def check_engines_agree_within_the_declared_tolerance(s: Subject) -> None:
    have = engines_of(s.kind)
    if not {"analytic", "cycle"} <= set(have):
        return
    tol = type(s.model).engines_agree_rel
    for m, n, k in CASES:
        for label, mask in (("dense", None), ("2:4", two_four_checkerboard(n, k))):
            work = s.work(m, n, k, mask)
            plan = s.model.plan(work)
            a, c = estimate(plan, s.model, "analytic"), estimate(plan, s.model, "cycle")
            assert abs(c.latency_s - a.latency_s) <= tol * a.latency_s, \
                (f"{s.model.name} {m}x{n}x{k} {label}: cycle {c.latency_s} s vs analytic {a.latency_s} s "
                 f"(declared tolerance {tol:.0%})")
            assert c.flops_executed == a.flops_executed, f"{s.model.name}: engines disagree on the work"


def check_more_nonzeros_are_never_faster(s: Subject) -> None:
    if not type(s.model).unstructured:
        return
    for m, n, k in CASES:
        for engine in engines_of(s.kind):
            times = [s.estimate(s.work(m, n, k, mask), engine).latency_s for mask in nested_masks(n, k)]
            assert all(a <= b for a, b in zip(times, times[1:])), \
                f"{s.model.name} {engine} {m}x{n}x{k}: latency falls as nonzeros are added: {times}"


def check_declared_kernels_are_honoured(s: Subject) -> None:
    m, n, k = CASES[1]
    cls = type(s.model)
    work = s.work(m, n, k, reference_masks(n, k)["fanin"])
    for kernel in cls.kernels:
        try:
            plan = s.model.plan(work, kernel=kernel)
        except PatternError:
            continue                                   # the kernel does not suit this mask: said so
        assert plan.format == kernel, f"{s.model.name}: forced kernel {kernel} planned as {plan.format}"
    try:
        s.model.plan(work, kernel="no-such-kernel")
    except Exception as exc:  # noqa: BLE001 - any clear error is a refusal
        assert "kernel" in str(exc), f"{s.model.name}: an unknown kernel is refused without naming it: {exc}"
    else:
        raise AssertionError(f"{s.model.name}: plan(kernel='no-such-kernel') was accepted")


CHECKS: tuple[Callable[[Subject], None], ...] = (
    check_dense_mask_costs_exactly_the_dense_baseline,
    check_dense_mask_issues_all_macs,
    check_plan_is_deterministic_and_picklable,
    check_plans_need_only_the_measured_pattern,
    check_closed_form_layers_plan_as_their_drawn_masks,
    check_units_are_non_negative,
    check_engines_agree_within_the_declared_tolerance,
    check_more_nonzeros_are_never_faster,
    check_declared_kernels_are_honoured,
)


def check_arch_kind(kind: str, *, arch: str | None = None) -> None:
    """Run every check of `CHECKS` on `kind` (instance `arch`, default its first shipped spec)."""
    s = subject(kind, arch)
    for check in CHECKS:
        check(s)
