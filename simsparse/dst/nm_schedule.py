"""Pure schedules of the N:M methods (METHODS.md, "N:M with decaying masks").

Timeline of a run of T steps (0-based `step`):
    [0, t0)    dense warm-up        t0 = round(dense_warmup_fraction · T)
    [t0, t1)   the sparse span      decay (MDGF), structure frames (SDGF), SR-STE
    [t1, T)    hard-mask fine-tune  t1 = T − round(finetune_fraction · T); the mask is frozen

Mask decay α (MDGF), with s = step − t0 and the decay length D = decay_fraction · (t1 − t0):
    piecewise:    α = max(1 − k·w_d, 0), k = s // refresh_steps (the refresh count), forced to 0
                  from k = 16 on (Kao et al. 2022); default w_d = 1/16, refresh_steps = D / 16
    linear:       α = max(1 − c·s, 0); default c = 1 / D
    exponential:  α = e^(−c·s), set to 0 once below ALPHA_FLOOR; default c = ln(1/ALPHA_FLOOR) / D
α = 1 before t0 and α = 0 from t1 on. Scaling choice: the papers use c ≈ 1e-4–2e-4 per step on runs
of 10^5 steps or more (α reaches 0 after ~2–5 % of training); on short runs that would be a handful
of steps, so the default expresses the decay as a fraction of the sparse span instead. An explicit
`decay_coef` is taken as is (per step, or w_d per refresh for piecewise).

Structure decay (SDGF): M fixed, the sparse span cut into F equal frames; frame 0 uses (M−1):M,
frame i ≥ 1 uses max(N, M/2^i):M, F = ceil(log2(M/N)) + 1 (consecutive duplicates merged, which
only happens when N = M − 1). 1:8 → 7:8, 4:8, 2:8, 1:8; 2:4 → 3:4, 2:4.
"""

from __future__ import annotations

import math

from simsparse.masks.eligibility import check_nm
from simsparse.errors import SpecError

DECAY_SCHEDULES = ("piecewise", "linear", "exponential")
PIECEWISE_MAX_REFRESHES = 16  # α is forced to 0 after this many refreshes (Kao et al. 2022)
ALPHA_FLOOR = 1e-3            # exponential decay: below this α is set to 0 (the mask becomes hard)


def sparse_span(total_steps: int, *, dense_warmup_fraction: float, finetune_fraction: float) -> tuple[int, int]:
    """(t0, t1): first step of the sparse span and first step of the hard-mask fine-tune."""
    t0 = int(round(dense_warmup_fraction * total_steps))
    t1 = total_steps - int(round(finetune_fraction * total_steps))
    if t1 <= t0:
        raise SpecError(f"dense_warmup_fraction {dense_warmup_fraction} + finetune_fraction {finetune_fraction} "
                        f"leave no sparse steps out of {total_steps}; lower them or train longer")
    return t0, t1


def decay_steps(*, start_step: int, end_step: int, decay_fraction: float) -> int:
    """Length D (steps, ≥ 1) over which the default α schedules go from 1 to 0."""
    return max(1, int(round(decay_fraction * (end_step - start_step))))


def default_refresh_steps(schedule: str, *, n_decay_steps: int) -> int:
    """Steps between mask refreshes when the recipe gives none: D/16 for piecewise, else every step."""
    if schedule == "piecewise":
        return max(1, n_decay_steps // PIECEWISE_MAX_REFRESHES)
    return 1


def default_decay_coef(schedule: str, *, n_decay_steps: int, refresh_steps: int) -> float:
    """c (per step) or w_d (per refresh, piecewise) so that α reaches 0 after D steps."""
    if schedule == "piecewise":
        refreshes = max(1, min(PIECEWISE_MAX_REFRESHES, n_decay_steps // max(1, refresh_steps)))
        return 1.0 / refreshes
    if schedule == "linear":
        return 1.0 / n_decay_steps
    if schedule == "exponential":
        return math.log(1.0 / ALPHA_FLOOR) / n_decay_steps
    raise SpecError(f"unknown mask-decay schedule {schedule!r}; known: {', '.join(DECAY_SCHEDULES)}")


def decay_alpha(step: int, *, schedule: str, start_step: int, end_step: int, coef: float,
                refresh_steps: int) -> float:
    """α_t of pruning-mask decay: 1 in the warm-up, decaying in [t0, t1), 0 from t1 on."""
    if step < start_step:
        return 1.0
    if step >= end_step:
        return 0.0
    s = step - start_step
    if schedule == "piecewise":
        k = s // max(1, refresh_steps)
        return 0.0 if k >= PIECEWISE_MAX_REFRESHES else max(1.0 - k * coef, 0.0)
    if schedule == "linear":
        return max(1.0 - coef * s, 0.0)
    if schedule == "exponential":
        exponent = coef * s
        return 0.0 if exponent >= math.log(1.0 / ALPHA_FLOOR) - 1e-9 else math.exp(-exponent)
    raise SpecError(f"unknown mask-decay schedule {schedule!r}; known: {', '.join(DECAY_SCHEDULES)}")


def structure_decay_frames(n: int, m: int) -> list[tuple[int, int]]:
    """The N:M of each frame of sparse structure decay, ending at the target n:m."""
    check_nm(n, m)
    if n == m:
        return [(m, m)]
    count = math.ceil(math.log2(m / n)) + 1
    frames: list[tuple[int, int]] = []
    for i in range(count):
        frame_n = m - 1 if i == 0 else max(n, m // 2 ** i)
        if not frames or frames[-1][0] != frame_n:
            frames.append((frame_n, m))
    if frames[-1][0] != n:  # guard for odd M: the last frame is always the target
        frames.append((n, m))
    return frames


def structure_decay_nm(step: int, *, n: int, m: int, start_step: int, end_step: int) -> tuple[int, int]:
    """N:M in force at `step`: M:M (dense) in the warm-up, the frame's N:M in the span, n:m after."""
    if step < start_step:
        return (m, m)
    if step >= end_step:
        return (n, m)
    frames = structure_decay_frames(n, m)
    index = (step - start_step) * len(frames) // (end_step - start_step)
    return frames[min(index, len(frames) - 1)]


def is_refresh_step(step: int, *, start_step: int, end_step: int, refresh_steps: int) -> bool:
    """Masks are recomputed from the dense weights every refresh_steps steps inside [t0, t1)."""
    return start_step <= step < end_step and (step - start_step) % max(1, refresh_steps) == 0
