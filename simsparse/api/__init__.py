"""The only place that wires steps together, for every command: inspect, evaluate, compare, trace,
shrink, report, sweep, train (and its --explain), measure, validate, calibrate, archs, workloads
(the demo is a scripted tour of these). Every function takes keyword-only arguments and returns records or plain
data; rendering is report.py's (and validate/render.py's) job, argument parsing cli.py's.

The pipeline of `evaluate` (DESIGN.md §2): masks (masks.io) -> bound once to the geometry
(graph.resolve finds it, graph.bind binds) -> layer works with their Patterns (graph.lower
measures them; graph.synthetic gives closed-form ones for synthetic patterns, no mask drawn) ->
per layer `model.plan(work, dense=...)` (archs: every kind plans from the Pattern alone) ->
`engines.estimate(plan, model, engine)` -> `Report`. `run_model` is that last part for any list
of works.

The package's modules: `core` (one network: inspect, trace, evaluate, compare, shrink),
`jobs` (sweep, train, measure, validate, calibrate, listings), `reporting` (report).

Commands that need torch, numba or scipy (reading checkpoints, tracing, training, timing kernels,
validating against them) import their module inside the function, each with its reason, so that
`simsparse archs` or an `evaluate --gemm` do not pay seconds of imports they never use.
"""

from __future__ import annotations

from simsparse.api.core import (SCALESIM_MAX_ROWS, InspectResult, compare, estimate_works, evaluate, inspect,
                                load_masks, mask_works, parse_batches, run_model, shrink, software_stacks,
                                token_rates, trace)
from simsparse.api.jobs import (VALIDATE_DEVICES, calibrate, explain_training, list_archs, list_workloads, measure,
                                sweep, train, validate)
from simsparse.api.reporting import MEASURE_THREADS, report
from simsparse.archs import load_arch
from simsparse.parse import parse_gemm

__all__ = ["SCALESIM_MAX_ROWS", "InspectResult", "compare", "estimate_works", "evaluate", "inspect", "load_masks",
           "mask_works", "parse_batches", "run_model", "shrink", "software_stacks", "token_rates", "trace", "VALIDATE_DEVICES", "calibrate",
           "explain_training", "list_archs", "list_workloads", "measure", "sweep", "train", "validate",
           "MEASURE_THREADS", "report", "load_arch", "parse_gemm"]
