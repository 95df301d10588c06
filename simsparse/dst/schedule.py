"""Schedules shared by the DST methods. `step` is the 0-based index of the current optimizer step.

Scaling to small runs (documented in workloads/recipes/*.yaml): the papers' update interval ΔT
(100 steps on CIFAR, ~1000 on ImageNet) assumes 10^4–10^5 steps; `effective_interval` shrinks ΔT
so that at least `min_updates` mask updates happen before T_end, and never grows it.
"""

from __future__ import annotations

import math


def effective_interval(interval: int, *, t_end_step: int, min_updates: int) -> int:
    """ΔT used for this run: the recipe's ΔT, shrunk so ≥ min_updates updates fit before T_end."""
    if min_updates <= 0:
        return max(1, interval)
    return max(1, min(interval, t_end_step // (min_updates + 1)))


def is_update_step(step: int, *, interval: int, t_end_step: int) -> bool:
    """Mask updates happen every ΔT steps (never at step 0) strictly before T_end."""
    return 0 < step < t_end_step and step % interval == 0


def cosine_drop_fraction(step: int, *, alpha: float, t_end_step: int) -> float:
    """RigL's drop fraction f(t) = α/2·(1 + cos(π t / T_end)); 0 from T_end on."""
    if step >= t_end_step:
        return 0.0
    return alpha / 2.0 * (1.0 + math.cos(math.pi * step / t_end_step))


def cubic_channel_sparsity(step: int, *, final: float, stop_step: int) -> float:
    """Chase's target channel sparsity S(t) = S_c·(1 − (1 − t/T)^3), held at S_c after T."""
    frac = min(1.0, max(0.0, step / max(1, stop_step)))
    return final * (1.0 - (1.0 - frac) ** 3)


def cosine_anneal(step: int, *, start: float, end: float, period: int) -> float:
    """start → end along a half cosine over `period` steps, `end` afterwards (torch's CosineAnnealingLR)."""
    frac = min(1.0, max(0.0, step / max(1, period)))
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * frac))


def lr_factor(step: int, *, kind: str, warmup_fraction: float, total_steps: int,
              restarts: tuple[int, ...] = ()) -> float:
    """Multiplier of the base lr: linear warm-up, then cosine to 0, constant, or step (×0.1 at 50 %, 75 %).

    The schedule starts over at every step in `restarts`: each cycle [start, next start) runs the whole
    schedule (warm-up included) over its own length, as ASP's fine-tune repeats the dense schedule.
    """
    bounds = [0, *sorted(r for r in set(restarts) if 0 < r < total_steps), max(1, total_steps)]
    start = max(b for b in bounds[:-1] if b <= step) if step >= 0 else 0
    length = bounds[bounds.index(start) + 1] - start
    local = step - start
    warm = int(warmup_fraction * length)
    if local < warm:
        return (local + 1) / warm
    frac = (local - warm) / max(1, length - warm)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))
    if kind == "step":
        return 0.1 ** (int(frac >= 0.5) + int(frac >= 0.75))
    return 1.0
