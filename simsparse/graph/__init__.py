"""Layer geometry: the workload catalog, tracing an nn.Module, GEMM lowering, mask binding and
the channel-coupling graph. One job per module (import the one you need):

- `catalog`   built-in workloads (workloads/models/*.yaml): load_workload, list_workloads, --regenerate
- `tracing`   trace(model, example_inputs, *, name) -> Workload (torch function mode + forward hooks;
              meta-device models work too); `from simsparse.graph import trace` gives this function
- `hf`        hf_workload(config, *, name, seq | decode+context) -> Workload from a config.json alone
- `resolve`   workload_from_spec("torchvision:NAME" | "hf:DIR" | "module:pkg.mod:factory");
              geometry_for_checkpoint (the order `evaluate --mask` looks for geometry in)
- `catalog`   also write_workload(workload, path): a traced Workload as a workload YAML
- `lower`     lower(workload, *, batch) -> [(Op, Gemm | None)]; gemm_work(...), masked_work(...),
              plain_work(...) and layer_works(...) -> LayerWork with its measured Pattern;
              shrunk_gemm (the one shrunk-GEMM formula)
- `bind`      bind(maskset, workload) -> BindResult (masks matched to ops by name; run once per evaluate)
- `coupling`  build(workload) -> networkx.DiGraph of channel coupling; shrink(masks, workload) -> Workload
- `synthetic` synthetic_masks(workload, pattern, *, seed) -> {op name: mask}; synthetic_works(...) and
              synthetic_gemm_work(...) -> LayerWork with a closed-form Pattern (no mask drawn);
              materialise(work) draws the mask where the values are needed

This package imports nothing at import time, so that loading a catalog entry does not import
torch; its one export, `trace` (the function of `tracing`), is imported on first use (PEP 562).
"""

from __future__ import annotations

import importlib


def __getattr__(name: str):
    if name == "trace":   # graph.tracing imports torch: only callers of trace pay it
        return importlib.import_module("simsparse.graph.tracing").trace
    raise AttributeError(f"module 'simsparse.graph' has no attribute {name!r}")
