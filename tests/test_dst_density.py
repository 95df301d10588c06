"""Layer-wise density distributions (uniform, ERK) and the shared schedules."""

import math

import pytest

from simsparse.dst.density import erk_densities, layer_densities, uniform_densities
from simsparse.dst.schedule import (cosine_drop_fraction, cubic_channel_sparsity, effective_interval,
                                    is_update_step, cosine_anneal)
from simsparse.errors import SimSparseError, UnknownNameError

SHAPES = {"conv1.weight": (16, 3, 3, 3), "conv2.weight": (32, 16, 3, 3), "fc1.weight": (256, 512),
          "fc2.weight": (10, 256)}


def _nnz(dens):
    return sum(dens[f] * math.prod(s) for f, s in SHAPES.items())


@pytest.mark.parametrize("density", [0.05, 0.1, 0.3, 0.6])
def test_erk_total_nonzeros_equal_the_budget(density):
    dens = erk_densities(SHAPES, density=density)
    budget = density * sum(math.prod(s) for s in SHAPES.values())
    assert _nnz(dens) == pytest.approx(budget, rel=1e-9)
    assert all(0 < d <= 1 for d in dens.values())


def test_erk_densities_follow_sum_over_product_of_dims_below_the_cap():
    dens = erk_densities(SHAPES, density=0.1)
    free = [f for f, d in dens.items() if d < 1.0]
    ratios = {f: dens[f] / (sum(SHAPES[f]) / math.prod(SHAPES[f])) for f in free}
    eps = next(iter(ratios.values()))
    assert all(r == pytest.approx(eps) for r in ratios.values())


def test_erk_makes_small_layers_dense_and_resolves_epsilon():
    dens = erk_densities(SHAPES, density=0.3)
    assert dens["conv1.weight"] == 1.0          # 3x3x3 stem would exceed 1
    assert _nnz(dens) == pytest.approx(0.3 * sum(math.prod(s) for s in SHAPES.values()))


def test_uniform_gives_every_layer_the_same_density():
    assert set(uniform_densities(SHAPES, density=0.2).values()) == {0.2}


def test_unknown_distribution_and_bad_density_are_user_errors():
    with pytest.raises(UnknownNameError, match="erk"):
        layer_densities(SHAPES, density=0.1, distribution="ek")
    with pytest.raises(SimSparseError):
        erk_densities(SHAPES, density=0.0)


def test_cosine_drop_fraction_starts_at_alpha_and_ends_at_zero():
    assert cosine_drop_fraction(0, alpha=0.3, t_end_step=100) == pytest.approx(0.3)
    assert cosine_drop_fraction(50, alpha=0.3, t_end_step=100) == pytest.approx(0.15)
    assert cosine_drop_fraction(100, alpha=0.3, t_end_step=100) == 0.0


def test_update_steps_are_every_interval_before_t_end_and_never_step_zero():
    steps = [t for t in range(100) if is_update_step(t, interval=10, t_end_step=75)]
    assert steps == [10, 20, 30, 40, 50, 60, 70]


def test_effective_interval_shrinks_for_short_runs_but_never_grows():
    assert effective_interval(100, t_end_step=225, min_updates=20) == 10
    assert effective_interval(100, t_end_step=100_000, min_updates=20) == 100


def test_cubic_channel_schedule_and_soft_memory_bound_end_points():
    assert cubic_channel_sparsity(0, final=0.4, stop_step=80) == 0.0
    assert cubic_channel_sparsity(40, final=0.4, stop_step=80) == pytest.approx(0.4 * (1 - 0.5 ** 3))
    assert cubic_channel_sparsity(200, final=0.4, stop_step=80) == pytest.approx(0.4)
    assert cosine_anneal(0, start=0.15, end=0.105, period=80) == pytest.approx(0.15)
    assert cosine_anneal(40, start=0.15, end=0.105, period=80) == pytest.approx(0.1275)
    assert cosine_anneal(90, start=0.15, end=0.105, period=80) == pytest.approx(0.105)
