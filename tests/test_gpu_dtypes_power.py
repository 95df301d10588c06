"""fp8 and int8 on the GPU model, the board power limit and the warm L2 of repeated calls."""

from __future__ import annotations

import pytest

from simsparse import api
from simsparse.archs import load_arch
from simsparse.archs.gpu_call import config_timing, library_call
from simsparse.errors import SimSparseError
from simsparse.records import Gemm
from simsparse.validate.corpus import MODEL_DTYPES

# dense tensor peaks (T(FL)OP/s) the datasheets quote; None: the tensor cores have no such dtype
DATASHEET_TFLOPS = {
    "a100_2to4": {"fp16": 312, "int8": 624, "fp8": None},
    "a100_pcie_2to4": {"fp16": 312, "int8": 624, "fp8": None},
    "h100_pcie_2to4": {"fp16": 756, "int8": 1513, "fp8": 1513},
    "h100_2to4": {"fp16": 989, "int8": 1979, "fp8": 1979},
    "h200_2to4": {"fp16": 989, "int8": 1979, "fp8": 1979},
    "b200_2to4": {"fp16": 2250, "int8": 4500, "fp8": 4500},
    "rtx4090_2to4": {"fp16": 165.2, "int8": 660.6, "fp8": 330.3},    # fp8 with fp32 accumulate: half the int8 rate
    "rtx3090_2to4": {"fp16": 71, "int8": 284, "fp8": None},
    "rtx2080ti": {"fp16": 53.8, "int8": 215.2, "fp8": None},
}


def peak_tflops(arch: str, dtype: str) -> float:
    spec = load_arch(arch).spec
    return 2 * spec.sms * spec.dense_fma_per_clk_per_sm[dtype] * spec.clock_hz / 1e12


@pytest.mark.parametrize("arch", sorted(DATASHEET_TFLOPS))
def test_every_gpu_runs_each_dtype_at_its_datasheet_rate(arch):
    for dtype, tflops in DATASHEET_TFLOPS[arch].items():
        if tflops is None:
            assert dtype not in load_arch(arch).supported_dtypes()
        else:
            assert peak_tflops(arch, dtype) == pytest.approx(tflops, rel=0.01)


def test_fp8_issues_twice_the_fp16_rate_only_where_the_datasheet_says_so():
    for arch, peaks in DATASHEET_TFLOPS.items():
        if peaks["fp8"] is None:
            continue
        spec = load_arch(arch).spec
        ratio = spec.dense_fma_per_clk_per_sm["fp8"] / spec.dense_fma_per_clk_per_sm["fp16"]
        assert ratio == pytest.approx(peaks["fp8"] / peaks["fp16"], rel=0.01) == 2.0
    h100, ada = load_arch("h100_2to4").spec, load_arch("rtx4090_2to4").spec
    assert h100.dense_fma_per_clk_per_sm["fp8"] == h100.dense_fma_per_clk_per_sm["int8"]      # Hopper: fp8 = int8
    assert ada.dense_fma_per_clk_per_sm["fp8"] == ada.dense_fma_per_clk_per_sm["int8"] // 2   # Ada: half of int8


def test_fp8_on_a_gpu_without_fp8_tensor_cores_is_refused_naming_its_dtypes():
    with pytest.raises(SimSparseError, match="does not model dtype fp8.*fp16, bf16, tf32, int8"):
        api.evaluate(arch="a100_2to4", gemm="64,2048,2048", pattern="2:4", dtype="fp8")


def test_both_fp8_formats_of_the_corpora_run_as_fp8():
    assert MODEL_DTYPES["fp8_e4m3"] == MODEL_DTYPES["fp8_e5m2"] == "fp8"


def test_int8_gemms_write_what_their_library_outputs():
    spec = load_arch("a100_pcie_2to4").spec                       # the kernel stack, as the corpus was timed
    gemm = Gemm(m=4096, n=4096, k=4096, dtype="int8")
    dense = config_timing(spec, library_call(spec, spec.dense, gemm, sparse=False))
    sparse = config_timing(spec, library_call(spec, spec.sparse_library, gemm, sparse=True))
    assert dense.split_k == 1 and sparse.split_k == 1
    assert dense.tile_store_bytes == dense.tile.rows * dense.tile.cols * 4        # cuBLASLt: int32 accumulators
    assert sparse.tile_store_bytes == sparse.tile.rows * sparse.tile.cols * 2      # cuSPARSELt: bf16
    eager = load_arch("a100_pcie_2to4").with_software("pytorch-eager").spec
    eager_sparse = config_timing(eager, library_call(eager, eager.sparse_library, gemm, sparse=True))
    assert eager_sparse.tile_store_bytes == eager_sparse.tile.rows * eager_sparse.tile.cols * 1   # int8 out


def _clock(arch: str, m: int, n: int = 8192, k: int = 8192, *, sparse: bool = False) -> float:
    spec = load_arch(arch).spec
    lib = spec.sparse_library if sparse else spec.dense
    return config_timing(spec, library_call(spec, lib, Gemm(m=m, n=n, k=k), sparse=sparse)).clock_hz


def test_a_large_gemm_runs_below_the_peak_clock_on_a_300_watt_board_and_a_skinny_one_at_it():
    peak = load_arch("a100_pcie_2to4").spec.clock_hz
    assert _clock("a100_pcie_2to4", 16384) < peak
    assert _clock("a100_pcie_2to4", 16, n=2048, k=2048) == peak


def test_the_400_watt_board_sustains_a_higher_clock_than_the_300_watt_board():
    assert _clock("a100_2to4", 16384, sparse=True) > _clock("a100_pcie_2to4", 16384, sparse=True)


def test_without_a_power_block_the_clock_is_the_peak_clock(tmp_path):
    from simsparse.resources import data_dir

    text = (data_dir("accelerators") / "a100_pcie_2to4.yaml").read_text()
    start, end = text.index("\npower:"), text.index("\nsoftware:")
    path = tmp_path / "no_power.yaml"
    path.write_text(text[:start] + text[end:])
    spec = load_arch(str(path)).spec
    assert spec.power is None
    t = config_timing(spec, library_call(spec, spec.dense, Gemm(m=16384, n=8192, k=8192), sparse=False))
    assert t.clock_hz == spec.clock_hz


def test_a_repeated_call_finds_its_small_operands_in_a_warm_l2():
    warm = load_arch("h100_pcie_2to4")
    cold = load_arch("h100_pcie_2to4", ["software.profiles.kernel.warm_l2=false"])
    gemm = Gemm(m=64, n=4096, k=4096)
    times = {}
    for name, model in (("warm", warm), ("cold", cold)):
        spec = model.spec
        t = config_timing(spec, library_call(spec, spec.dense, gemm, sparse=False))
        times[name] = t
    assert times["warm"].hbm_bytes < times["cold"].hbm_bytes
    assert times["warm"].kernel_clk / times["warm"].clock_hz <= times["cold"].kernel_clk / times["cold"].clock_hz
