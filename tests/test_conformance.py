"""Every registered arch kind passes the conformance suite (simsparse.testing), check by check."""

import itertools
from dataclasses import replace

import pytest

from simsparse import testing
from simsparse.archs import kind_names
from simsparse.testing import CHECKS, subject


# every kind on its first shipped spec, plus instances that take other paths through their kind
INSTANCES = [(kind, None) for kind in kind_names()] + [("gpu_sparse_tensor_core", "rtx2080ti")]


@pytest.fixture(scope="module")
def subjects():
    return {kind: subject(kind) for kind in kind_names()} | {arch: subject(kind, arch) for kind, arch in INSTANCES
                                                             if arch}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("kind,arch", INSTANCES, ids=lambda v: v or "")
def test_every_arch_kind_passes_the_conformance_check(subjects, kind, arch, check):
    check(subjects[arch or kind])


# ----------------------------------------------------------------------------- the suite can fail


def _subject_of(cls, base):
    model = cls(name=base.model.name, spec=base.model.spec, source=base.model.source)
    return replace(base, model=model)


def test_the_suite_catches_engines_that_disagree_beyond_the_declared_tolerance(subjects):
    base = subjects["cpu_simd"]

    class Strict(type(base.model)):
        engines_agree_rel = 0.0

    with pytest.raises(AssertionError, match="declared tolerance"):
        testing.check_engines_agree_within_the_declared_tolerance(_subject_of(Strict, base))


def test_the_suite_catches_a_kind_that_skips_macs_of_a_dense_mask(subjects):
    base = subjects["gpu_sparse_tensor_core"]

    class Skipping(type(base.model)):
        def plan(self, work, *, dense=False, kernel=None):
            plan = super().plan(work, dense=dense, kernel=kernel)
            return plan if dense else replace(plan, macs_issued=plan.macs_issued // 2)

    with pytest.raises(AssertionError, match="issues"):
        testing.check_dense_mask_issues_all_macs(_subject_of(Skipping, base))


def test_the_suite_catches_a_plan_that_changes_from_call_to_call(subjects):
    base = subjects["nm_systolic"]
    calls = itertools.count()

    class Drifting(type(base.model)):
        def plan(self, work, *, dense=False, kernel=None):
            plan = super().plan(work, dense=dense, kernel=kernel)
            return replace(plan, notes=plan.notes + (f"call {next(calls)}",))

    with pytest.raises(AssertionError, match="differ"):
        testing.check_plan_is_deterministic_and_picklable(_subject_of(Drifting, base))


def test_the_suite_catches_a_kind_that_reads_the_mask_array(subjects):
    base = subjects["gpu_sparse_tensor_core"]

    class Peeking(type(base.model)):
        def plan(self, work, *, dense=False, kernel=None):
            plan = super().plan(work, dense=dense, kernel=kernel)
            return replace(plan, notes=plan.notes + (f"mask sum {work.mask.sum() if work.mask is not None else 0}",))

    with pytest.raises(AssertionError, match="reads the mask"):
        testing.check_plans_need_only_the_measured_pattern(_subject_of(Peeking, base))


def test_the_suite_catches_a_kind_that_runs_a_pattern_only_layer_dense(subjects):
    base = subjects["gpu_sparse_tensor_core"]

    class MaskOnly(type(base.model)):        # treats a layer without a mask array as dense
        def plan(self, work, *, dense=False, kernel=None):
            return super().plan(work, dense=dense or work.mask is None, kernel=kernel)

    with pytest.raises(AssertionError, match="closed-form Pattern runs dense"):
        testing.check_closed_form_layers_plan_as_their_drawn_masks(_subject_of(MaskOnly, base))


def test_the_suite_catches_a_kind_that_gets_faster_with_more_nonzeros(subjects):
    base = subjects["cpu_simd"]

    class Backwards(type(base.model)):
        def plan(self, work, *, dense=False, kernel=None):
            plan = super().plan(work, dense=dense, kernel=kernel)
            if work.pattern is None or dense:
                return plan
            faster = 1.0 - work.pattern.density           # fewer cycles the denser the mask
            phases = tuple(replace(p, cycles=p.cycles.scaled(faster)) for p in plan.payload.phases)
            return replace(plan, payload=replace(plan.payload, phases=phases))

    with pytest.raises(AssertionError, match="latency falls"):
        testing.check_more_nonzeros_are_never_faster(_subject_of(Backwards, base))
