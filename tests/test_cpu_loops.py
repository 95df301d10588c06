"""Loop-model details of the cpu_simd model that calibration relies on (archs/cpu_loops.py)."""

from dataclasses import replace

import pytest

from simsparse.archs import load_arch
from simsparse.archs.cpu_cost import latency_breakdown
from simsparse.engines import estimate
from simsparse.graph.lower import gemm_work
from simsparse.masks.synthetic import make_matrix
from simsparse.records import Gemm, LayerWork
from simsparse.validate.calibrate import Predictor, fit
from simsparse.validate.cpu_timing import cpu_point


def work(m: int, n: int, k: int, pattern: str) -> LayerWork:
    mask = make_matrix(n, k, pattern, seed=0)
    return gemm_work(name="fc", gemm=Gemm(m=m, n=n, k=k, dtype="fp32"), mask=mask)


def latency(model, w, kernel):
    return estimate(model.plan(w, kernel=kernel), model, "analytic").latency_s


def test_gather_loop_streams_are_slower_when_their_efficiency_drops():
    # batch-1 nm (a gather-dot per row) on a layer whose values outgrow the caches: memory-bound on
    # the gather loop. condensed reads its 64-row slices as plain vectors: not a gather-loop stream.
    fast = load_arch("spr_socket", ["software.threads=1", "memory.gather_loop_efficiency=1.0",
                                    "memory.cache_state=cold"])
    slow = load_arch("spr_socket", ["software.threads=1", "memory.gather_loop_efficiency=0.25",
                                    "memory.cache_state=cold"])
    assert latency(slow, work(1, 2048, 2048, "2:4"), "nm") > 1.5 * latency(fast, work(1, 2048, 2048, "2:4"), "nm")
    w = work(1, 2048, 2048, "fanin=1024")
    assert latency(slow, w, "condensed") == pytest.approx(latency(fast, w, "condensed"))


def test_batched_csr_costs_more_per_nonzero_once_x_rows_leave_l1():
    model = load_arch("spr_socket", ["software.threads=1"])
    # same nonzeros and batch, x^T 16 KiB (L1) vs 4 MiB (beyond L2): the gathered rows cost more
    small = latency(model, work(16, 4096, 256, "fanin=64"), "csr")
    large = latency(model, work(16, 256, 65536, "fanin=1024"), "csr")
    assert large > small


def test_strided_output_stores_make_small_fan_in_rows_cost_more_than_their_nonzeros():
    model = load_arch("spr_socket", ["software.threads=1"])
    few_rows = latency(model, work(64, 256, 1024, "fanin=64"), "condensed")      # 16 K nonzeros
    many_rows = latency(model, work(64, 2048, 1024, "fanin=8"), "condensed")     # 16 K nonzeros
    assert many_rows > few_rows


def test_kernel_parallel_eff_overrides_the_spec_value():
    model = load_arch("spr_socket", ["software.threads=2"])
    w = work(64, 2048, 2048, "fanin=205")
    plan = model.plan(w, kernel="condensed")
    spec = model.spec
    good = replace(spec, kernels={**spec.kernels, "condensed": replace(spec.kernels["condensed"], parallel_eff=1.0)})
    poor = replace(spec, kernels={**spec.kernels, "condensed": replace(spec.kernels["condensed"], parallel_eff=0.5)})
    assert latency_breakdown(plan.payload, poor).latency_s > latency_breakdown(plan.payload, good).latency_s


def test_fit_leaves_batched_eff_at_one():
    model = load_arch("spr_socket", ["software.threads=2"])
    pts = [cpu_point(kernel="condensed", m=m, n=512, k=512, pattern="fanin=51", threads=t)
           for m in (1, 16) for t in (1, 2)]
    pred = Predictor(model)
    pts = [replace(p, measured_s=1.3 * pred.predict_s(p)) for p in pts]
    fitted, _ = fit(pts, model)
    assert abs(fitted["condensed"].batched_eff - 1.0) < 1e-6


def test_numba_kernels_vector_work_uses_the_jit_lanes_not_the_isa_lanes():
    # LLVM vectorises numba's loops with 256-bit vectors on AVX-512 Intel targets: the blocked
    # condensed loop does twice the vector ops of a 512-bit one; MKL's dense GEMM is unaffected
    wide = load_arch("spr_socket", ["software.threads=1", "simd.jit_fp32_lanes=16"])
    narrow = load_arch("spr_socket", ["software.threads=1", "simd.jit_fp32_lanes=8"])
    w = work(64, 512, 512, "fanin=64")
    assert latency(narrow, w, "condensed") > latency(wide, w, "condensed")
    assert latency(narrow, w, "dense") == pytest.approx(latency(wide, w, "dense"))
