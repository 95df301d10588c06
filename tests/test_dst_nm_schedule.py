"""Pure N:M schedules: mask-decay α (piecewise / linear / exponential), structure-decay frames, phases."""

import math

import pytest

from simsparse.dst.nm_schedule import (
    ALPHA_FLOOR, decay_alpha, decay_steps, default_decay_coef, default_refresh_steps, is_refresh_step,
    sparse_span, structure_decay_frames, structure_decay_nm,
)
from simsparse.errors import SpecError


def test_sparse_span_cuts_warmup_and_finetune():
    assert sparse_span(1000, dense_warmup_fraction=0.1, finetune_fraction=0.2) == (100, 800)
    assert sparse_span(7, dense_warmup_fraction=0.0, finetune_fraction=0.0) == (0, 7)


def test_sparse_span_without_sparse_steps_is_a_spec_error():
    with pytest.raises(SpecError, match="no sparse steps"):
        sparse_span(10, dense_warmup_fraction=0.6, finetune_fraction=0.4)


def test_linear_alpha_goes_from_one_to_zero_over_the_decay_length():
    kw = dict(schedule="linear", start_step=10, end_step=110, coef=1 / 20, refresh_steps=1)
    assert decay_alpha(9, **kw) == 1.0                   # dense warm-up
    assert decay_alpha(10, **kw) == 1.0
    assert decay_alpha(20, **kw) == pytest.approx(0.5)
    assert decay_alpha(30, **kw) == 0.0
    assert decay_alpha(109, **kw) == 0.0
    assert decay_alpha(110, **kw) == 0.0                 # fine-tune: hard mask


def test_piecewise_alpha_steps_once_per_refresh():
    kw = dict(schedule="piecewise", start_step=0, end_step=1000, coef=0.1, refresh_steps=5)
    values = [decay_alpha(t, **kw) for t in range(0, 60)]
    assert values[0:5] == [1.0] * 5
    assert values[5:10] == [pytest.approx(0.9)] * 5
    assert values[45] == pytest.approx(0.1)
    assert values[50] == 0.0 and values[59] == 0.0


def test_piecewise_alpha_is_forced_to_zero_after_sixteen_refreshes():
    kw = dict(schedule="piecewise", start_step=0, end_step=1000, coef=0.05, refresh_steps=3)
    assert decay_alpha(15 * 3, **kw) == pytest.approx(1 - 15 * 0.05)
    assert decay_alpha(16 * 3, **kw) == 0.0


def test_exponential_alpha_follows_e_to_the_minus_ct_until_the_floor():
    kw = dict(schedule="exponential", start_step=4, end_step=10_000, coef=2e-4, refresh_steps=1)
    assert decay_alpha(4 + 1000, **kw) == pytest.approx(math.exp(-0.2))
    t_floor = math.ceil(math.log(1 / ALPHA_FLOOR) / 2e-4)
    assert decay_alpha(4 + t_floor + 1, **kw) == 0.0


@pytest.mark.parametrize("schedule", ["piecewise", "linear", "exponential"])
def test_default_coefficients_reach_zero_after_the_decay_length(schedule):
    n_decay = decay_steps(start_step=0, end_step=400, decay_fraction=0.2)
    assert n_decay == 80
    refresh = default_refresh_steps(schedule, n_decay_steps=n_decay)
    coef = default_decay_coef(schedule, n_decay_steps=n_decay, refresh_steps=refresh)
    kw = dict(schedule=schedule, start_step=0, end_step=400, coef=coef, refresh_steps=refresh)
    assert decay_alpha(n_decay - refresh - 1, **kw) > 0.0
    assert decay_alpha(n_decay, **kw) == 0.0
    alphas = [decay_alpha(t, **kw) for t in range(400)]
    assert all(a >= b for a, b in zip(alphas, alphas[1:]))  # monotone


@pytest.mark.parametrize("nm, frames", [
    ((1, 8), [(7, 8), (4, 8), (2, 8), (1, 8)]),
    ((2, 4), [(3, 4), (2, 4)]),
    ((1, 16), [(15, 16), (8, 16), (4, 16), (2, 16), (1, 16)]),
    ((2, 8), [(7, 8), (4, 8), (2, 8)]),
    ((4, 4), [(4, 4)]),
])
def test_structure_decay_frames(nm, frames):
    assert structure_decay_frames(*nm) == frames


def test_structure_decay_cuts_the_span_into_equal_frames():
    kw = dict(n=1, m=8, start_step=8, end_step=48)
    seq = [structure_decay_nm(t, **kw) for t in range(0, 56)]
    assert seq[:8] == [(8, 8)] * 8                       # dense warm-up
    assert seq[8:18] == [(7, 8)] * 10
    assert seq[18:28] == [(4, 8)] * 10
    assert seq[28:38] == [(2, 8)] * 10
    assert seq[38:56] == [(1, 8)] * 18                   # last frame, then fine-tune at the target


def test_refresh_steps_fall_on_the_grid_inside_the_span():
    hits = [t for t in range(30) if is_refresh_step(t, start_step=5, end_step=20, refresh_steps=4)]
    assert hits == [5, 9, 13, 17]
