"""`simsparse demo [--quick]`: the main job end to end, a scripted tour of `api` (it sits beside the
CLI, above api, and calls nothing else but report_md to print the closing lines).

1. Train one network of each DST family on the built-in synthetic task (the `cnn` of
   simsparse/models, 3×16×16 inputs, 10 classes): dense; RigL (unstructured); SRigL (constant
   fan-in with neuron ablation); N:M 2:4 by mask decay and by structure decay; Chase (channel
   removal), 90 % sparse where the method allows. Each family's structure is visible in its
   masks: SRigL's rows hold equal counts, N:M layers fit 2:4, Chase removes whole channels.
2. `api.report`: every checkpoint on the A100 and H100 2:4 GPU models, the VEGETA-like N:M
   accelerator and this CPU at batch 1 and 256; a what-if on ResNet-50 and a Llama-3.2-1B decode
   step with each family's synthetic pattern; the largest layers timed here with real kernels
   beside the CPU model (timings from a busy machine kept, with their noise); report.md with its
   figures and data files in `out`.
3. Print where the report is and five findings computed from the results.
`--quick` trains a narrower network for fewer steps and runs one what-if workload.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from simsparse import api, report_md
from simsparse.errors import SimSparseError

RUNS = (
    ("dense", {"method": "dense", "sparsity": 0.0}),
    ("rigl", {"method": "rigl", "sparsity": 0.9}),
    ("srigl", {"method": "srigl", "sparsity": 0.9}),
    ("nm-mask-decay", {"method": "nm-mask-decay", "sparsity": 0.5, "nm": "2:4"}),
    ("nm-structure-decay", {"method": "nm-structure-decay", "sparsity": 0.5, "nm": "2:4"}),
    ("chase", {"method": "chase", "sparsity": 0.9}),
)
ARCHS = ("a100_2to4", "h100_2to4", "vegeta_like", "cpu_host")
BATCHES = (1, 256)
# the tour keeps timings from a busy machine, each marked with its noise in report.md, rather than
# fail after training (`simsparse report` refuses them unless --allow-noisy), and waits only briefly
# for quiet CPUs before each kernel: on a shared machine the load rarely drops within `measure`'s 30 s
DEMO_MAX_WAIT_S = 2.0


@dataclass(frozen=True)
class Size:
    steps: int
    width: int                      # cnn channels of the first stage
    what_if: tuple[str, ...]        # shipped workloads evaluated with each family's synthetic pattern
    measure_layers: int             # largest layers of each sparse network timed on this CPU


FULL = Size(steps=150, width=32, what_if=("resnet50", "llama3_2_1b_decode_2048"), measure_layers=2)
QUICK = Size(steps=40, width=16, what_if=("llama3_2_1b_decode_2048",), measure_layers=1)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def train_runs(*, out: Path, size: Size, progress: bool) -> list[Path]:
    """Train every run on one torch thread: the network is too small for a second to pay, and on a
    shared machine OpenMP's spinning threads cost several times the work (measured: 40 steps in
    2-4 s on one thread, 11-27 s on two, at a load of 5 on 2 cores)."""
    import torch  # the trainer's dependency; imported here only to set its thread count

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    paths = []
    try:
        for name, kw in RUNS:
            path = out / f"{name}.pt"
            res = api.train(model="cnn", model_options={"width": size.width}, data="synthetic", steps=size.steps,
                            batch_size=64, out=path, seed=0, progress=progress, **kw)
            _say(f"  {name:20s} test accuracy {res.test_accuracy:.3f}  density {res.density:.3f}  "
                 f"train FLOPs {res.train_flops_relative:.2f}x dense")
            paths.append(path)
    finally:
        torch.set_num_threads(before)
    return paths


def run(*, out: Path, quick: bool = False, steps: int | None = None, progress: bool | None = None,
        software: str | None = None) -> None:
    size = QUICK if quick else FULL
    if steps is not None:
        size = Size(steps=steps, width=size.width, what_if=size.what_if, measure_layers=size.measure_layers)
    progress = sys.stderr.isatty() if progress is None else progress
    if out.exists() and not out.is_dir():
        raise SimSparseError(f"--out {out}: is a file; give a folder for the checkpoints and the report")
    api.software_stacks(archs=ARCHS, software=software)   # a bad --software fails now, not after training
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    _say(f"[1/2] training {len(RUNS)} networks (cnn of width {size.width} on synthetic data, {size.steps} steps each)")
    paths = train_runs(out=out, size=size, progress=progress)
    t1, c1 = time.perf_counter(), time.process_time()
    _say(f"      {t1 - t0:.0f} s wall, {c1 - c0:.0f} s CPU")
    _say(f"[2/2] report: {len(paths)} networks on {', '.join(ARCHS)} at batch {' and '.join(map(str, BATCHES))}; "
         f"what-if {', '.join(size.what_if)}; kernels timed on this CPU")
    data = api.report(checkpoints=[str(p) for p in paths], archs=ARCHS, batches=BATCHES, what_if=size.what_if, software=software,
                      measure_layers=size.measure_layers, title="simsparse demo: DST methods on sparse hardware",
                      out=out, progress=progress, allow_noisy=True, max_wait_s=DEMO_MAX_WAIT_S)
    _say(f"      {time.perf_counter() - t1:.0f} s wall, {time.process_time() - c1:.0f} s CPU")
    _say(report_md.closing_lines(data, out))
    _say(f"demo took {time.perf_counter() - t0:.0f} s wall, {time.process_time() - c0:.0f} s CPU in this process")
