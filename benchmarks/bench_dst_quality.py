"""DST quality benchmark (not a test): accuracy and train FLOPs of every method, ≥ 3 seeds, two tasks.

    PYTHONPATH=. python benchmarks/bench_dst_quality.py [--seeds 3] [--steps 500] [--tasks mlp:synthetic cnn:synthetic]
                                           [--workers 2] [--threads 1]

Tasks: the project's MLP 768-256-256-10 on `synthetic` (3x16x16, 10 classes), and the VGG-like `cnn`
(width 16, 2 stages: 3->16->32 channels, classifier 32->10) on the same synthetic images. Both are
tasks where 90 % sparsity costs accuracy (digits is too easy: every method reaches ~0.99).

Every run uses its shipped recipe (same SGD, lr 0.1 cosine, batch 128), with one exception, held
equal on purpose so that a claim compares training rules and not layer sets:
- RigL runs with `first_layer=sparse`. Its reference, Google's RigL, keeps the stem dense, but SRigL's
  and Chase's references do not. On the MLP a dense fc1 would be 77 % of the weights.
- nm-mask-decay and nm-structure-decay run on SR-STE's layer set (`first_layer=sparse`; the
  classifier stays dense in all three). Their reference, PGF, keeps the stem dense too.
Chase runs its shipped recipe (S_c 0.4).

The script prints mean ± std test accuracy, train FLOPs relative to dense, final density, and the
channels removed or neurons ablated. It then says whether each paper claim holds. A difference
"holds" when it lies within two standard errors of the paired per-seed differences, and never
closer than 1 point:
- SRigL ≈ RigL at 90 %;
- decay ≥ SR-STE at 1:8 (both decays);
- Chase ≈ RigL, with channels removed.
Ablation at 99 % has its own benchmark, benchmarks/bench_dst_ablation.py.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

import torch

import simsparse

MODEL_OPTIONS = {"mlp": {}, "cnn": {"width": 16, "depth": 2}}
SPARSE_STEM = ("first_layer=sparse",)
# (label, method, sparsity, nm, recipe overrides, no_ablation)
CASES = [
    ("dense", "dense", 0.0, None, (), False),
    ("rigl", "rigl", 0.9, None, SPARSE_STEM, False),
    ("srigl", "srigl", 0.9, None, (), False),
    ("srigl --no-ablation", "srigl", 0.9, None, (), True),
    ("chase", "chase", 0.9, None, (), False),
    ("srste 1:8", "srste", 0.0, (1, 8), (), False),
    ("nm-mask-decay 1:8", "nm-mask-decay", 0.0, (1, 8), SPARSE_STEM, False),
    ("nm-structure-decay 1:8", "nm-structure-decay", 0.0, (1, 8), SPARSE_STEM, False),
]


def _one_run(task: tuple) -> dict:
    """Train one (task, case, seed) in a worker process."""
    (model, data), case, seed, steps, folder, threads = task
    label, method, sparsity, nm, overrides, no_ablation = case
    torch.set_num_threads(threads)
    from simsparse.dst.train import run
    t0 = time.perf_counter()
    res = run(method=method, model=model, model_options=MODEL_OPTIONS.get(model, {}), data=data, sparsity=sparsity,
              nm=nm, steps=steps, seed=seed, out=Path(folder) / f"{model}-{data}-{label.replace(' ', '_')}-{seed}.pt",
              progress=False, recipe_overrides=overrides, no_ablation=no_ablation)
    return {"task": f"{model}:{data}", "label": label, "seed": seed, "acc": res.test_accuracy,
            "flops": res.train_flops_relative, "density": res.density,
            "removed": sum(len(v) for v in res.removed_channels.values()),
            "ablated": sum(len(v) for v in res.ablated_neurons.values()), "wall_s": time.perf_counter() - t0}


def _paired(acc: dict, a: str, b: str, seeds: list[int]) -> tuple[float, float]:
    """Mean and tolerance (2 s.e., at least 0.01) of the per-seed differences a − b."""
    d = [acc[(a, s)] - acc[(b, s)] for s in seeds]
    se = statistics.stdev(d) / len(d) ** 0.5 if len(d) > 1 else 0.0
    return statistics.mean(d), max(0.01, 2 * se)


def claims(rows: list[dict]) -> list[str]:
    acc = {(r["label"], r["seed"]): r["acc"] for r in rows}
    seeds = sorted({r["seed"] for r in rows})
    removed = statistics.mean(r["removed"] for r in rows if r["label"] == "chase")
    lines = []
    d, tol = _paired(acc, "srigl", "rigl", seeds)
    lines.append(f"SRigL ≈ RigL at 90 %: {'holds' if abs(d) <= tol else 'does not hold'} (Δ {d:+.4f}, tolerance {tol:.4f})")
    for dec in ("nm-mask-decay 1:8", "nm-structure-decay 1:8"):
        d, tol = _paired(acc, dec, "srste 1:8", seeds)
        lines.append(f"{dec} ≥ SR-STE 1:8: {'holds' if d >= -tol else 'does not hold'} (Δ {d:+.4f}, tolerance {tol:.4f})")
    d, tol = _paired(acc, "chase", "rigl", seeds)
    lines.append(f"Chase ≈ RigL with channels removed: {'holds' if d >= -tol and removed > 0 else 'does not hold'} "
                 f"(Δ {d:+.4f}, tolerance {tol:.4f}, {removed:.0f} channels removed)")
    return lines


def print_task(task: str, rows: list[dict]) -> None:
    print(f"\n## {task} ({MODEL_OPTIONS.get(task.split(':')[0], {})})")
    print(f"{'method':26s} {'test acc':>15s} {'train FLOPs':>11s} {'density':>8s} {'removed':>8s} {'ablated':>8s} {'s/run':>6s}")
    for case in CASES:
        sel = [r for r in rows if r["label"] == case[0]]
        accs = [r["acc"] for r in sel]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        mean = {k: statistics.mean(r[k] for r in sel) for k in ("flops", "density", "removed", "ablated", "wall_s")}
        print(f"{case[0]:26s} {statistics.mean(accs):7.4f} ± {sd:.4f} {mean['flops']:11.3f} {mean['density']:8.3f} "
              f"{mean['removed']:8.1f} {mean['ablated']:8.1f} {mean['wall_s']:6.1f}")
    print("# claims (paired per seed)")
    for line in claims(rows):
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--tasks", nargs="+", default=["mlp:synthetic", "cnn:synthetic"], help="MODEL:DATA pairs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    args = ap.parse_args()
    tasks = [tuple(t.split(":", 1)) for t in args.tasks]
    print(f"# steps={args.steps} seeds={args.seeds} workers={args.workers}x{args.threads} threads; "
          f"code {Path(simsparse.__file__).parent} (run from a worktree with PYTHONPATH=.)")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(task, case, seed, args.steps, tmp, args.threads)
                for task in tasks for seed in range(args.seeds) for case in CASES]
        with mp.get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(_one_run, jobs, chunksize=1)
    for model, data in tasks:
        print_task(f"{model}:{data}", [r for r in results if r["task"] == f"{model}:{data}"])
    print(f"\n# total wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
