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
              plain_work(...) and layer_works(...) -> LayerWork with its measured Pattern
- `bind`      bind(maskset, workload) -> BindResult (masks matched to ops by name; run once per evaluate)
- `coupling`  channel_groups(workload) (channel spaces, open or not and why), pair_groups (the trainer's
              removable pairs), build(workload) -> networkx.DiGraph of channel coupling
- `shrink`    plan(workload, removals, policy=, strict=) -> NetworkShrink: the one shrink rule (channel
              groups, residual policy, depthwise groups; whole heads via `shrink_heads`) and the shrunk Workload
- `shrink_works` shrunk_works / shrink_network(works, workload, ...) -> the shrunk LayerWorks (masks restricted
              to the kept rows/columns, `LayerWork.shrink`); label(estimate, ...); standalone(lone GEMM)
- `shrink_state` shrink_state(state_dict, NetworkShrink) -> the physically shrunk state_dict; check_removable
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
