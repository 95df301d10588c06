"""Layer geometry: the workload catalog, tracing an nn.Module, GEMM lowering, mask binding and
the channel-coupling graph. One job per module:

- `catalog`   built-in workloads (workloads/models/*.yaml): load_workload, list_workloads, --regenerate
- `trace`     trace(model, example_inputs, *, name) -> Workload (torch function mode + forward hooks)
- `lower`     lower(workload, *, batch) -> [(Op, Gemm | None)]; layer_works(...) -> [LayerWork]
- `bind`      bind(maskset, workload) -> BindResult (masks matched to ops by name)
- `coupling`  build(workload) -> networkx.DiGraph of channel coupling; shrink(masks, workload) -> Workload
- `synthetic` synthetic_masks(workload, pattern, *, seed) -> {op name: weight-shaped bool mask}

Submodules are imported on first use so that loading a catalog entry does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_workload": "catalog", "list_workloads": "catalog",
    "trace": "trace", "trace_model": "trace",
    "lower": "lower", "layer_works": "lower",
    "bind": "bind", "BindResult": "bind",
    "build": "coupling", "shrink": "coupling", "channel_groups": "coupling",
    "synthetic_masks": "synthetic",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"simsparse.graph.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'simsparse.graph' has no attribute {name!r}")
