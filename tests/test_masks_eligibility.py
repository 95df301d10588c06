"""masks.eligibility: which layers a piece of N:M hardware can run, and why not (no torch)."""

import pytest

from simsparse.errors import SpecError, UnknownNameError
from simsparse.masks.eligibility import NM_SUPPORT, check_pattern_supported, gemm_nm_eligibility, nm_eligibility


def test_sparse_tensor_cores_skip_the_three_channel_stem_and_a_ten_class_classifier_as_asp_does():
    stem = nm_eligibility(weight_shape=(64, 3, 7, 7), pattern=(2, 4), support="sparse_tensor_core")
    head = nm_eligibility(weight_shape=(10, 2048), pattern=(2, 4), support="sparse_tensor_core")
    assert not stem.eligible and "3 input channels are not a multiple of 16" in stem.reason
    assert not head.eligible and "10 output rows are not a multiple of 8" in head.reason


def test_sparse_tensor_cores_run_resnet_bottleneck_convs_and_the_imagenet_classifier():
    for shape in [(64, 64, 3, 3), (256, 64, 1, 1), (1000, 2048)]:
        verdict = nm_eligibility(weight_shape=shape, pattern=(2, 4), support="sparse_tensor_core")
        assert verdict.eligible and verdict.reason == "" and verdict.layout == "channels"


def test_sparse_tensor_cores_run_2_to_4_only():
    verdict = nm_eligibility(weight_shape=(64, 64), pattern=(1, 8), support="sparse_tensor_core")
    assert not verdict.eligible and "2:4 only" in verdict.reason
    with pytest.raises(SpecError, match="1:8 does not run on sparse_tensor_core"):
        check_pattern_supported((1, 8), "sparse_tensor_core")


def test_flat_groups_need_only_the_weight_count_to_split_into_groups_of_m():
    assert nm_eligibility(weight_shape=(64, 3, 7, 7), pattern=(2, 4), support="flat").eligible   # k = 147, wraps
    odd = nm_eligibility(weight_shape=(3, 5), pattern=(2, 4), support="flat")
    assert not odd.eligible and "15 weights" in odd.reason


def test_an_accelerator_that_pads_the_reduction_runs_every_layer():
    for shape in [(64, 3, 7, 7), (10, 2048), (3, 5)]:
        assert nm_eligibility(weight_shape=shape, pattern=(1, 8), support="nm_accelerator").eligible


def test_grouped_convs_count_their_channels_per_group():
    depthwise = nm_eligibility(weight_shape=(64, 1, 3, 3), pattern=(2, 4), support="sparse_tensor_core", groups=64)
    assert not depthwise.eligible and "1 input channels" in depthwise.reason


def test_a_gemm_is_judged_as_the_linear_layer_it_is():
    assert gemm_nm_eligibility(n=1000, k=2048, pattern=(2, 4), support="sparse_tensor_core").eligible
    assert not gemm_nm_eligibility(n=1000, k=2050, pattern=(2, 4), support="sparse_tensor_core").eligible


def test_dense_is_always_eligible_and_unknown_hardware_lists_the_known_names():
    assert nm_eligibility(weight_shape=(10, 3), pattern=(4, 4), support="sparse_tensor_core").eligible
    with pytest.raises(UnknownNameError, match="sparse_tensor_core"):
        nm_eligibility(weight_shape=(8, 16), pattern=(2, 4), support="tpu")
    assert set(NM_SUPPORT.names()) == {"flat", "nm_accelerator", "sparse_tensor_core"}


def test_the_rule_imports_neither_torch_nor_the_trainer():
    import subprocess
    import sys
    code = "import sys, simsparse.masks.eligibility; print(any(m == 'torch' or m.startswith('simsparse.dst') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
