"""The GPU kind's CUDA-core formats (archs/gpu_cuda_core.py): condensed, csr, blocked-ell and fp32
SIMT SGEMM, ranked with 2:4 / dense by the closed form."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simsparse import api
from simsparse.archs import arch_data, kind_class, load_arch
from simsparse.archs.gpu import GpuPlan
from simsparse.archs.gpu_cuda_core import CudaCorePlan
from simsparse.engines import estimate
from simsparse.errors import PatternError, SpecError
from simsparse.graph.lower import gemm_work
from simsparse.graph.synthetic import synthetic_gemm_work
from simsparse.masks.synthetic import make_matrix, two_four_checkerboard
from simsparse.records import Gemm
from simsparse.report import render_reports

HIGHEST = ("cuda_cores.fp32_matmul_precision=highest",)


@pytest.fixture(scope="module")
def a100_fp32():
    return load_arch("a100_2to4", HIGHEST)


def latency(model, work, *, kernel=None, dense=False, engine="analytic") -> float:
    return estimate(model.plan(work, kernel=kernel, dense=dense), model, engine).latency_s


def work(mask: np.ndarray, m: int, dtype: str = "fp32"):
    n, k = mask.shape
    return gemm_work(name="fc.weight", gemm=Gemm(m=m, n=n, k=k, dtype=dtype), mask=mask)


def fanin(m: int, fan: int, dtype: str = "fp32", n: int = 768, k: int = 3072):
    return synthetic_gemm_work(m=m, n=n, k=k, pattern=f"fanin={fan}", dtype=dtype)


def block_mask(n: int, k: int, b: int = 16, keep: float = 0.25, seed: int = 0) -> np.ndarray:
    blocks = np.random.default_rng(seed).random((n // b, k // b)) < keep
    return np.kron(blocks, np.ones((b, b), dtype=bool)).astype(bool)


@pytest.mark.parametrize("arch,overrides", [("a100_2to4", ()), ("a100_2to4", HIGHEST), ("h100_2to4", HIGHEST),
                                            ("rtx2080ti", ())])
@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
@pytest.mark.parametrize("m", [1, 256, 4096])
def test_a_dense_mask_costs_exactly_the_dense_baseline_on_every_format_choice(arch, overrides, dtype, m):
    model = load_arch(arch, overrides)
    w = work(np.ones((768, 1024), dtype=bool), m=m, dtype=dtype)
    assert latency(model, w) == latency(model, w, dense=True)
    assert model.plan(w).format == "dense"


@settings(max_examples=25, deadline=None)
@given(m=st.sampled_from([1, 7, 64, 256, 2048]), fan=st.integers(1, 3070), dtype=st.sampled_from(["fp16", "fp32"]))
def test_condensed_never_costs_less_at_a_larger_fan_in(a100_fp32, m, fan, dtype):
    smaller = latency(a100_fp32, fanin(m, fan, dtype), kernel="condensed")
    assert latency(a100_fp32, fanin(m, fan + 1, dtype), kernel="condensed") >= smaller


def test_condensed_at_batch_one_waits_one_l2_round_trip_per_fan_in_step(a100_fp32):
    cc = a100_fp32.spec.cuda_cores
    chains = a100_fp32.plan(fanin(1, 308), kernel="condensed").payload.chains
    assert chains.steps == 308 and chains.warps == 768      # one warp per row, one lane busy
    assert chains.step_clk == cc.l2_latency_clk + cc.fma_latency_clk


MASKS = {
    "fanin": lambda: make_matrix(768, 1024, "fanin=0.1", seed=1),
    "rigl": lambda: make_matrix(768, 1024, "density=0.05", seed=2),
    "channels": lambda: make_matrix(768, 1024, "channels=0.5", seed=3),
    "blocks": lambda: block_mask(768, 1024),
}


@pytest.mark.parametrize("name", sorted(MASKS))
@pytest.mark.parametrize("dtype", ["fp16", "fp32"])
@pytest.mark.parametrize("m", [1, 256, 4096])
def test_the_choice_is_never_slower_than_any_single_format(a100_fp32, name, dtype, m):
    w = work(MASKS[name](), m=m, dtype=dtype)
    chosen = latency(a100_fp32, w)
    forced = {}
    for kernel in type(a100_fp32).kernels:
        try:
            forced[kernel] = latency(a100_fp32, w, kernel=kernel)
        except PatternError:
            continue
    assert forced and chosen <= min(forced.values()), (a100_fp32.plan(w).format, forced)


def test_csr_cost_grows_with_nnz(a100_fp32):
    times = [latency(a100_fp32, work(make_matrix(768, 1024, f"density={d}", seed=0), m=64), kernel="csr")
             for d in (0.01, 0.05, 0.2, 0.5)]
    assert times == sorted(times) and times[0] < times[-1]


def test_forcing_csr_on_a_2to4_mask_runs_csr_and_reports_the_models_own_choice(a100):
    w = work(two_four_checkerboard(768, 1024), m=256, dtype="fp16")
    plan = a100.plan(w, kernel="csr")
    assert plan.format == "csr" and isinstance(plan.payload, CudaCorePlan)
    assert any("kernel csr forced" in n and "own choice is 2:4" in n for n in plan.notes)
    assert set(plan.alternatives) >= {"csr", "2:4"}


def test_the_json_report_lists_each_alternative_with_its_time():
    r = api.evaluate(arch="a100_2to4", gemm="256,768,3072", pattern="fanin=31", dtype="fp32", overrides=HIGHEST)
    layer = json.loads(render_reports([r], "json"))["layers"][0]
    assert layer["format"] == "condensed"
    assert set(layer["alternatives"]) == {"dense", "condensed", "csr"}
    assert layer["alternatives"]["condensed"] == min(layer["alternatives"].values())
    assert any(n.startswith("format choice") for n in layer["notes"])


def test_ablated_rows_are_dropped_by_condensed_and_csr(a100_fp32):
    mask = make_matrix(768, 1024, "fanin=64", seed=4)
    mask[::3] = False                                   # a third of the neurons ablated
    w = work(mask, m=64)
    active = 768 - len(range(0, 768, 3))
    condensed = a100_fp32.plan(w, kernel="condensed")
    assert condensed.payload.chains.warps == active * 2 and condensed.macs_issued == 64 * active * 64
    assert any("drops 256 ablated" in n for n in condensed.notes)
    assert a100_fp32.plan(w, kernel="csr").payload.chains.warps == active


def test_a_rigl_mask_runs_condensed_padded_to_its_largest_fan_in(a100_fp32):
    mask = make_matrix(768, 1024, "density=0.1", seed=5)
    plan = a100_fp32.plan(work(mask, m=256), kernel="condensed")
    widest = int(mask.sum(axis=1).max())
    assert plan.payload.chains.steps == -(-widest // 4) * 4
    assert plan.macs_issued > 256 * mask.sum() and any("padded to the max" in n for n in plan.notes)


def test_fp32_runs_on_the_cuda_cores_only_under_precision_highest_or_without_tf32(a100, a100_fp32):
    w = work(np.ones((256, 512), dtype=bool), m=128)
    assert isinstance(a100.plan(w, dense=True).payload, GpuPlan)               # TF32 tensor cores
    assert a100_fp32.plan(w, dense=True).payload.kernel == "sgemm"
    assert load_arch("rtx2080ti").plan(w, dense=True).payload.kernel == "sgemm"    # Turing has no TF32


def test_blocked_ell_runs_only_masks_with_empty_blocks_on_tensor_cores(a100, a100_fp32):
    blocky = a100.plan(work(block_mask(768, 1024), m=512, dtype="fp16"), kernel="blocked-ell")
    assert blocky.format == "blocked-ell" and blocky.padded.k < 1024
    with pytest.raises(PatternError, match="empty blocks"):
        a100.plan(work(make_matrix(768, 1024, "density=0.2", seed=6), m=512, dtype="fp16"), kernel="blocked-ell")
    with pytest.raises(PatternError, match="tensor cores"):
        a100_fp32.plan(work(block_mask(768, 1024), m=512), kernel="blocked-ell")


def test_a_spec_without_a_cuda_cores_block_offers_only_the_tensor_core_formats_and_says_so():
    data, source = arch_data("a100_2to4")
    data = copy.deepcopy(data)
    del data["cuda_cores"]
    for stack in data["software"]["profiles"].values():      # the stacks' host times of the block go with it
        stack.pop("cuda_cores", None)
    model = kind_class("gpu_sparse_tensor_core").from_data(data, source=source)
    plan = model.plan(work(make_matrix(768, 1024, "fanin=0.2", seed=7), m=256, dtype="fp16"))
    assert plan.format == "dense" and any("no cuda_cores block" in n for n in plan.notes)
    with pytest.raises(PatternError, match="cuda_cores"):
        model.plan(work(make_matrix(768, 1024, "fanin=0.01", seed=7), m=256, dtype="fp16"), kernel="condensed")


def test_the_cuda_cores_block_is_validated_naming_the_field():
    with pytest.raises(SpecError, match="cuda_cores.l2_latency_clk"):
        load_arch("a100_2to4", ("cuda_cores.l2_latency_clk=-3",))


@pytest.mark.parametrize("kernel,m", [("condensed", 256), ("condensed", 4096), ("csr", 64)])
def test_the_cycle_engine_replays_the_closed_form_of_warp_chains(a100_fp32, kernel, m):
    w = fanin(m, 154)
    analytic, cycle = latency(a100_fp32, w, kernel=kernel), latency(a100_fp32, w, kernel=kernel, engine="cycle")
    assert cycle == pytest.approx(analytic, rel=0.1)


@pytest.mark.parametrize("software", ["kernel", "pytorch-eager"])
@pytest.mark.parametrize("fmt", ["condensed", "csr", "blocked-ell"])
def test_a_cuda_core_estimate_names_its_software_stack(a100, fmt, software):
    model = a100.with_software(software)
    w = work(block_mask(768, 1024), m=512, dtype="fp16")
    for engine in ("analytic", "cycle"):
        assert estimate(model.plan(w, kernel=fmt), model, engine).software == software


def test_a_grouped_layer_stores_each_groups_blocked_ell_indices_once(a100):
    single = block_mask(768, 1024, seed=3)
    one = a100.plan(work(single, m=512, dtype="fp16"), kernel="blocked-ell")
    grouped = gemm_work(name="conv.weight", gemm=Gemm(m=512, n=768, k=1024, dtype="fp16", count=4),
                        mask=np.vstack([single] * 4), op_kind="conv")
    four = a100.plan(grouped, kernel="blocked-ell")
    assert four.metadata_bytes == pytest.approx(4 * one.metadata_bytes)
