"""Kernel-scheduling physics of the GPU model: stream-K tails, cluster multicast, PyTorch's
fixed CUTLASS tile and cuSPARSELt's per-call plan set-up."""

from __future__ import annotations

import pytest

from simsparse.archs import load_arch
from simsparse.archs.gpu_call import closed_form_latency_s, config_timing, library_call
from simsparse.archs.gpu_kernel import KernelCall, time_config
from simsparse.records import Gemm


def _timing(overrides, *, m, n, k):
    spec = load_arch("h100_2to4", overrides=overrides).spec
    lib = spec.dense
    call = KernelCall(rows=n, cols=m, k=k, count=1, dtype="fp16", sparse=False)
    return spec, time_config(spec, lib, call, lib.tiles[2], 1)   # the 128x128 tile


def test_stream_k_spreads_the_partial_last_wave_over_all_sms():
    # 128x128 tiles, 1.5 waves worth: without stream-K the tail wave idles half the SMs
    base = ["software.dense.l2_multicast=1.0"]
    spec, plain = _timing(base + ["software.dense.stream_k=false"], m=128 * 6, n=128 * 33, k=8192)
    _, streamk = _timing(base + ["software.dense.stream_k=true"], m=128 * 6, n=128 * 33, k=8192)
    assert plain.last_wave is not None and streamk.last_wave is None
    assert streamk.full_waves == pytest.approx(plain.tiles / plain.slots)
    assert streamk.kernel_clk < plain.kernel_clk
    assert streamk.reduction_s > 0.0          # the tail's fix-up traffic is paid
    ideal_clk = plain.tiles * plain.tile_compute_clk / spec.sms   # perfectly balanced tensor cores
    assert streamk.kernel_clk >= ideal_clk


def test_cluster_multicast_divides_l2_egress_and_never_slows_a_kernel():
    _, one = _timing(["software.dense.l2_multicast=1.0"], m=8192, n=8192, k=4096)
    _, two = _timing(["software.dense.l2_multicast=2.0"], m=8192, n=8192, k=4096)
    assert two.tile_l2_bytes == pytest.approx(one.tile_l2_bytes / 2.0)
    assert two.l2_bytes < one.l2_bytes and two.kernel_clk <= one.kernel_clk


def test_pytorch_cutlass_backend_keeps_its_one_tile_for_a_single_token():
    a100 = load_arch("a100_2to4", overrides=["software.backend=cutlass"]).with_software("pytorch-eager")
    call = library_call(a100.spec, a100.spec.sparse_library, Gemm(m=1, n=4096, k=4096), sparse=True)
    assert (call.tile.rows, call.tile.cols) == (128, 128) and call.split_k == 1
    # the padded token rows still occupy a whole 128-column tile: 32 tiles x 128 x 128 x K / 2 MACs
    assert config_timing(a100.spec, call).macs_issued == 32 * 128 * 128 * 4096 / 2


def test_cusparselt_plan_setup_bounds_a_decode_call_from_below_in_eager_pytorch():
    a100 = load_arch("a100_2to4").with_software("pytorch-eager")
    lib = a100.spec.sparse_library
    small = library_call(a100.spec, lib, Gemm(m=1, n=1024, k=4096), sparse=True)
    assert small.split_k == 1
    assert closed_form_latency_s(a100.spec, small) == pytest.approx(lib.host_overhead_s)
