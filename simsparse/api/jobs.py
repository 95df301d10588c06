"""`api` for the commands around the estimate: sweeps, training (and its --explain), kernel timing,
validation and calibration, and the arch / workload listings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from simsparse import dse
from simsparse.api.core import _path, evaluate
from simsparse.archs import load_arch, shipped_arch_names
from simsparse.errors import SimSparseError
from simsparse.graph.catalog import list_workloads as catalog_workloads
from simsparse.parse import parse_count, parse_float, parse_gemm, parse_nm, parse_seed
from simsparse.validate.records import ValidationReport

if TYPE_CHECKING:  # annotations only: these modules import torch or scipy
    from simsparse.dst.explain import TrainingPlan
    from simsparse.dst.job import TrainResult
    from simsparse.validate.calibrate import CalibrationResult


def sweep(*, sweep_file: str | Path, out: str | Path, executor: str = "local", resume: bool = False,
          progress: bool = False) -> list[dict]:
    """`simsparse sweep`: every point of the grid through `evaluate`, one CSV row each."""
    return dse.run(sweep=_path(sweep_file, what="sweep file"), out=_path(out, what="--out"), executor=executor, resume=resume, progress=progress,
                   evaluate=evaluate)


# ----------------------------------------------------------------------------- training


def _nm_pair(nm: str | tuple[int, int] | None) -> tuple[int, int] | None:
    if nm is None:
        return None
    return parse_nm(f"{nm[0]}:{nm[1]}" if isinstance(nm, tuple) and len(nm) == 2 else nm)


def _training_numbers(*, sparsity: float, steps: int | None, epochs: int | None, seed: int,
                      batch_size: int | None, lr: float | None = None, world_size: int = 1,
                      save_every: int | None = None) -> dict[str, Any]:
    """The numeric training arguments, checked by the one strict parser (the CLI's flags use the same)."""
    def count(value: Any, what: str) -> int | None:
        return None if value is None else parse_count(value, what=what)

    return {"sparsity": parse_float(sparsity, what="--sparsity", min=0.0, max=1.0),
            "steps": count(steps, "--steps"), "epochs": count(epochs, "--epochs"), "seed": parse_seed(seed),
            "batch_size": count(batch_size, "--batch-size"),
            "lr": None if lr is None else parse_float(lr, what="--lr", min=0.0, min_exclusive=True, max=1e6),
            "world_size": parse_count(world_size, what="--world-size"), "save_every": count(save_every, "--save-every")}


def train(*, method: str, model: str, data: str, sparsity: float, out: str | Path, nm: str | None = None,
          steps: int | None = None, epochs: int | None = None, recipe: str | None = None, seed: int = 0,
          batch_size: int | None = None, lr: float | None = None, no_ablation: bool = False,
          distribution: str | None = None, world_size: int = 1, recipe_overrides: Sequence[str] = (),
          save_every: int | None = None, resume_from: str | Path | None = None, progress: bool = True,
          model_options: Mapping[str, Any] | None = None) -> TrainResult:
    """`simsparse train`: a DST run written as a native checkpoint (`nm` as "N:M", e.g. "1:8")."""
    from simsparse.dst.train import run  # the trainer imports torch

    numbers = _training_numbers(sparsity=sparsity, steps=steps, epochs=epochs, seed=seed, batch_size=batch_size,
                                lr=lr, world_size=world_size, save_every=save_every)
    return run(method=method, model=model, data=data, nm=_nm_pair(nm), recipe=recipe, out=_path(out, what="--out"),
               no_ablation=no_ablation, distribution=distribution, progress=progress,
               recipe_overrides=tuple(recipe_overrides), model_options=model_options,
               resume_from=_path(resume_from, what="--resume"), **numbers)


def explain_training(*, method: str, model: str, data: str, sparsity: float, nm: str | None = None,
                     steps: int | None = None, epochs: int | None = None, recipe: str | None = None,
                     recipe_overrides: Sequence[str] = (), seed: int = 0, batch_size: int | None = None,
                     no_ablation: bool = False, distribution: str | None = None,
                     model_options: Mapping[str, Any] | None = None) -> TrainingPlan:
    """`simsparse train --explain`: the update schedule `train` would follow with these arguments,
    without training (dst.explain)."""
    from simsparse.dst.explain import explain  # the trainer imports torch

    numbers = _training_numbers(sparsity=sparsity, steps=steps, epochs=epochs, seed=seed, batch_size=batch_size)
    for unused in ("lr", "world_size", "save_every"):
        numbers.pop(unused)
    return explain(method=method, model=model, data=data, nm=_nm_pair(nm), recipe=recipe,
                   recipe_overrides=tuple(recipe_overrides), no_ablation=no_ablation, distribution=distribution,
                   model_options=model_options, **numbers)


# ----------------------------------------------------------------------------- measure, validate, calibrate


def measure(*, device: str, gemm: str | tuple[int, int, int] | None = None, pattern: str | None = None,
            suite: str | None = None, kernel: str | None = None, threads: int | None = None, cache: str = "warm",
            progress: bool = False, allow_noisy: bool = False, max_noise: float | None = None,
            max_wait_s: float | None = None):
    """`simsparse measure`: time real kernels on one GEMM or a named suite (returns a MeasureResult).
    On a busy machine it waits up to `max_wait_s`, then refuses timings noisier than `max_noise`
    (IQR/median) unless `allow_noisy` (None: the harness's defaults, kernels/contention.py)."""
    if (gemm is None) == (suite is None):
        raise SimSparseError("measure needs exactly one of --gemm M,N,K (with --pattern) or --suite NAME")
    gemm_mnk = parse_gemm(gemm) if gemm is not None else None   # bad input refused before torch is imported
    threads = None if threads is None else parse_count(threads, what="--threads")
    noise = _noise_limits(max_noise=max_noise, max_wait_s=max_wait_s)
    from simsparse.kernels import measure as kernel_measure  # torch and numba kernels: only when timing

    return kernel_measure.run(device=device, gemm=gemm_mnk, pattern=pattern, suite=suite, kernel=kernel,
                              threads=threads, cache=cache, progress=progress, allow_noisy=allow_noisy, **noise)


def _noise_limits(*, max_noise: float | None, max_wait_s: float | None) -> dict[str, float | None]:
    return {"max_noise": None if max_noise is None else parse_float(max_noise, what="--max-noise", min=0.0,
                                                                   min_exclusive=True),
            "max_wait_s": None if max_wait_s is None else parse_float(max_wait_s, what="--max-wait", min=0.0)}


VALIDATE_DEVICES = ("published", "cpu", "cuda")


def validate(*, device: str, engine: str = "analytic", csv_path: str | Path | None = None,
             corpora: Sequence[str] | None = None, gpu_archs: Mapping[str, str] | None = None,
             calibration: str = "fresh", progress: bool = False, allow_noisy: bool = False,
             max_noise: float | None = None, max_wait_s: float | None = None,
             software: str | None = None) -> ValidationReport:
    """`simsparse validate`: the model beside measurements. published: every shipped corpus (or
    `corpora`, or the one CSV `csv_path`), each row under the software stack it was measured with
    (`software`: only the rows of that stack); cpu: kernels timed here (`calibration`
    fresh|stored), load-aware as `measure` (`allow_noisy`, `max_noise`, `max_wait_s`); cuda: kernels
    timed on this GPU. `gpu_archs` maps GPU names to arch specs explicitly."""
    if device not in VALIDATE_DEVICES:
        raise SimSparseError(f"unknown device {device!r}; use one of {', '.join(VALIDATE_DEVICES)}")
    if device != "published" and (csv_path is not None or corpora or software):
        raise SimSparseError("--csv, --corpus and --software apply to --device published only")
    noise = _noise_limits(max_noise=max_noise, max_wait_s=max_wait_s)
    csv_file = _path(csv_path, what="--csv")      # before scipy is imported: bad input answers at once
    if device != "cpu" and (allow_noisy or max_noise is not None or max_wait_s is not None):
        raise SimSparseError("--allow-noisy, --max-noise and --max-wait apply to --device cpu only "
                             "(the timings taken on this machine's CPUs)")
    if device == "published":
        from simsparse.validate import published  # scipy.stats (Spearman): only validate pays it

        return published.run(corpora=corpora, csv_path=csv_file, engine=engine,
                             gpu_archs=gpu_archs, software=software)
    if device == "cuda":
        from simsparse.validate import cuda  # torch (CUDA) kernels

        return cuda.run(progress=progress, engine=engine, gpu_archs=gpu_archs)
    if engine != "analytic" or gpu_archs:
        raise SimSparseError("validate --device cpu runs the analytic engine on this machine; "
                             "--engine cycle and --gpu-arch apply to the GPU devices")
    from simsparse.validate import cpu  # torch and numba kernels, scipy

    return cpu.run(progress=progress, calibration=calibration, allow_noisy=allow_noisy, **noise)


def calibrate(*, device: str = "cpu", progress: bool = False, save: bool = True) -> CalibrationResult:
    """`simsparse calibrate`: fit the CPU model's kernel parameters here and store them for cpu_host."""
    from simsparse.validate import calibrate as cpu_calibration  # torch and numba kernels, scipy

    return cpu_calibration.run(device=device, progress=progress, save=save)


# ----------------------------------------------------------------------------- catalogs


def list_archs() -> list[dict]:
    rows = []
    for name in shipped_arch_names():
        try:
            model = load_arch(name)
            rows.append({"name": name, "kind": model.kind, "dtypes": list(model.supported_dtypes()),
                         "source": model.source})
        except SimSparseError as exc:  # a spec that does not load is listed with its problem
            rows.append({"name": name, "kind": "?", "dtypes": [], "source": str(exc)})
    return rows


def list_workloads() -> list[dict]:
    return [{"name": name, "params": params, "dense_macs_per_sample": macs}
            for name, params, macs in catalog_workloads()]
