"""Layer geometry: the workload catalog, tracing an nn.Module, GEMM lowering, mask binding and
the channel-coupling graph. One job per module (import the one you need):

- `catalog`   built-in workloads (workloads/models/*.yaml): load_workload, list_workloads, --regenerate
- `trace`     trace(model, example_inputs, *, name) -> Workload (torch function mode + forward hooks)
- `lower`     lower(workload, *, batch) -> [(Op, Gemm | None)]; gemm_work(...) and layer_works(...) ->
              LayerWork with its measured Pattern; shrunk_gemm (the one shrunk-GEMM formula)
- `bind`      bind(maskset, workload) -> BindResult (masks matched to ops by name; run once per evaluate)
- `coupling`  build(workload) -> networkx.DiGraph of channel coupling; shrink(masks, workload) -> Workload
- `synthetic` synthetic_masks(workload, pattern, *, seed) -> {op name: mask}; synthetic_gemm_work(...)

This package imports nothing itself, so that loading a catalog entry does not import torch.
"""
