"""Layer geometry: the workload catalog, tracing an nn.Module, GEMM lowering, mask binding and
the channel-coupling graph. One job per module:

- `catalog`   built-in workloads (workloads/models/*.yaml): load_workload, list_workloads, --regenerate
- `tracing`   trace(model, example_inputs, *, name) -> Workload (torch function mode + forward hooks);
              `from simsparse.graph import trace` gives this function (meta-device models work too)
- `hf`        hf_workload(config, *, name, seq | decode+context) -> Workload from a config.json alone
- `resolve`   workload_from_spec("torchvision:NAME" | "hf:DIR" | "module:pkg.mod:factory");
              geometry_for_checkpoint (the order `evaluate --mask` looks for geometry in)
- `catalog`   also write_workload(workload, path): a traced Workload as a workload YAML
- `lower`     lower(workload, *, batch) -> [(Op, Gemm | None)]; layer_works(...) -> [LayerWork]
- `bind`      bind(maskset, workload) -> BindResult (masks matched to ops by name)
- `coupling`  build(workload) -> networkx.DiGraph of channel coupling; shrink(masks, workload) -> Workload
- `synthetic` synthetic_masks(workload, pattern, *, seed) -> {op name: weight-shaped bool mask}

Submodules are imported on first use so that loading a catalog entry does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_workload": "catalog", "list_workloads": "catalog", "write_workload": "catalog",
    "hf_workload": "hf", "workload_from_spec": "resolve", "synthetic_works": "synthetic",
    "trace": "tracing", "trace_model": "tracing",
    "lower": "lower", "layer_works": "lower",
    "bind": "bind", "BindResult": "bind",
    "build": "coupling", "shrink": "coupling", "channel_groups": "coupling",
    "synthetic_masks": "synthetic",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"simsparse.graph.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'simsparse.graph' has no attribute {name!r}")
