"""The one strict parser: ASCII digits only, no degenerate values, `2:4` never a number."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simsparse.cli import main
from simsparse.errors import PatternError, SimSparseError
from simsparse.parse import (check_pattern_fits, parse_batch, parse_float, parse_gemm, parse_int, parse_nm,
                             parse_pattern, parse_seed)


@given(st.integers(-10**12, 10**12))
def test_every_plain_decimal_integer_reads_back_as_itself(n):
    assert parse_int(str(n)) == n


@pytest.mark.parametrize("text", ["", "  ", "1_0", "６４", "1e3", "0x10", "1.0", "1 0", "٣", "--1", "+-1"])
def test_integers_other_than_plain_ascii_decimal_are_refused(text):
    with pytest.raises(SimSparseError):
        parse_int(text)


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1_0.5", "１.５", "", "1e", ".", "0x1p3"])
def test_non_finite_or_non_ascii_floats_are_refused(text):
    with pytest.raises(SimSparseError):
        parse_float(text)


def test_float_bounds_can_exclude_the_minimum():
    assert parse_float("1e-3", min=0.0, min_exclusive=True) == pytest.approx(1e-3)
    with pytest.raises(SimSparseError, match="> 0"):
        parse_float("0", min=0.0, min_exclusive=True)


@pytest.mark.parametrize("text", ["６４,２５６,２５６", "64,256", "64,256,256,1", "0,8,8", "-1,8,8", "1_0,8,8", "8,,8", ""])
def test_gemm_shapes_need_three_positive_ascii_integers(text):
    with pytest.raises(SimSparseError):
        parse_gemm(text)


def test_gemm_shape_allows_spaces_around_its_numbers():
    assert parse_gemm(" 64, 256 ,256") == (64, 256, 256)


@pytest.mark.parametrize("text", ["-1", "4294967296", "1.5", "seed"])
def test_seeds_are_integers_from_zero_to_two_to_the_32(text):
    with pytest.raises(SimSparseError, match="--seed"):
        parse_seed(text)


def test_batch_is_a_positive_integer_and_1e12_is_not_one():
    assert parse_batch("64") == 64
    for text in ("0", "-3", "1e12", "1.0"):
        with pytest.raises(SimSparseError, match="--batch"):
            parse_batch(text)


@pytest.mark.parametrize("text", ["", " ", "２:４", "fanin=0", "fanin=-1", "fanin=1.0", "0:4", "5:4", "2:0", "1:2:3",
                                  "+2:4", "2:+4", "density=0", "density=nan", "density=inf", "channels=1.5",
                                  "fanin=1_0", "2 :4", "blocks=4", "fanin=", "=4"])
def test_degenerate_or_non_ascii_patterns_are_refused(text):
    with pytest.raises(PatternError):
        parse_pattern(text)


def test_nm_is_a_pattern_never_a_sexagesimal_number():
    spec = parse_pattern("2:4")
    assert (spec.kind, spec.n, spec.m) == ("nm", 2, 4)
    assert parse_nm("1:8") == (1, 8)


@settings(max_examples=300)
@given(st.text(max_size=12))
def test_any_text_is_a_pattern_or_a_pattern_error(text):
    try:
        spec = parse_pattern(text)
    except PatternError:
        return
    assert parse_pattern(spec.text) == spec


def test_m_larger_than_the_reduction_is_refused_before_any_mask_exists():
    with pytest.raises(PatternError, match="exceeds the reduction"):
        check_pattern_fits(parse_pattern("1:100000000"), reduction=256)
    with pytest.raises(PatternError, match="exceeds the reduction"):
        check_pattern_fits(parse_pattern("fanin=300"), reduction=256)
    check_pattern_fits(parse_pattern("2:4"), reduction=4)


@pytest.mark.parametrize("argv", [
    ["evaluate", "--gemm", "64,256,256", "--pattern", "", "--arch", "a100_2to4"],
    ["evaluate", "--gemm", "64,256,256", "--pattern", "２:４", "--arch", "a100_2to4"],
    ["evaluate", "--gemm", "６４,２５６,２５６", "--pattern", "2:4", "--arch", "a100_2to4"],
    ["evaluate", "--gemm", "1_0,64,64", "--pattern", "2:4", "--arch", "a100_2to4"],
    ["evaluate", "--gemm", "64,256,256", "--pattern", "fanin=0", "--arch", "a100_2to4"],
    ["evaluate", "--gemm", "64,256,256", "--pattern", "1:100000000", "--arch", "a100_2to4"],
    ["evaluate", "--gemm", "64,256,256", "--pattern", "2:4", "--arch", "a100_2to4", "--seed", "-1"],
    ["evaluate", "--gemm", "64,256,256", "--pattern", "2:4", "--arch", "a100_2to4", "--batch", "0"],
    ["measure", "--gemm", "8,64,64", "--pattern", "2:4", "--threads", "0"],
    ["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.9", "--steps", "2",
     "--world-size", "0", "--out", "x.pt"],
    ["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.9", "--steps", "2",
     "--lr", "-1", "--out", "x.pt"],
    ["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.9", "--steps", "2",
     "--lr", "inf", "--out", "x.pt"],
    ["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.9", "--steps", "2",
     "--batch-size", "-5", "--out", "x.pt"],
    ["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.9", "--steps", "2",
     "--seed", "-1", "--out", "x.pt"],
])
def test_user_mistakes_in_arguments_are_one_line_and_exit_2(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and err.strip()
