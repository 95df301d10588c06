"""Geometry of any `nn.Module` by running it once on a batch of one.

A `TorchFunctionMode` sees every torch function the model calls (F.conv2d, F.linear,
torch.matmul, F.layer_norm, tensor `+`, ...); forward hooks keep the module scope so ops get
stable names. GEMM ops are keyed by the fully-qualified weight name (`layer1.0.conv1.weight`);
other ops by module path (`layer1.0.bn1`), or module path + function (`layer1.0.iadd`), with
`:1`, `:2` suffixes when a scope calls the same thing again. Every op records the ops whose
outputs it reads (`inputs`), so the channel-coupling graph can be built from a trace.

nn.MultiheadAttention (and F.scaled_dot_product_attention) is decomposed into in-projection
(`in_proj_weight`, one linear op), Q·K^T (`<scope>.qk`, matmul, count = heads), softmax,
A·V (`<scope>.av`) and `out_proj.weight`. For cross-attention with different query and key
lengths the in-projection's `tokens` is round((Lq + 2·Lk)/3), so its MACs stay exact to rounding. Views/reshapes and dropout pass through unrecorded.
Element counts and shapes are per sample (the example inputs are sliced to batch 1).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from simsparse.errors import GeometryError
from simsparse.graph.trace_ops import OpBuilder
from simsparse.records import Workload


class _Mode(TorchFunctionMode):
    def __init__(self, on_call: Callable[[Callable, tuple, dict, Any], None]) -> None:
        super().__init__()
        self.on_call = on_call

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        self.on_call(func, args, kwargs, out)
        return out


def _batch_one(x: Any) -> Any:
    if isinstance(x, torch.Tensor) and x.dim() >= 1:
        return x[:1]
    if isinstance(x, (tuple, list)):
        return type(x)(_batch_one(v) for v in x)
    return x


def _install_scope_hooks(model: nn.Module, builder: OpBuilder) -> list:
    handles = []
    for name, module in model.named_modules():
        def pre(mod, args, _name=name):
            builder.scopes.append((_name, mod))

        def post(mod, args, out):
            builder.scopes.pop()
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    return handles


def trace(model: nn.Module, example_inputs: tuple | torch.Tensor, *, name: str) -> Workload:
    """Run `model` once on `example_inputs` (batch sliced to 1) and record its per-sample ops.

    GeometryError when the model cannot run on the inputs or holds no conv/linear/matmul op.
    """
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    inputs = tuple(_batch_one(x) for x in inputs)
    builder = OpBuilder(param_names={id(p): n for n, p in model.named_parameters(remove_duplicate=False)})
    for x in inputs:
        builder.mark_input(x)
    was_training = [(m, m.training) for m in model.modules()]
    fastpath = torch.backends.mha.get_fastpath_enabled()
    handles = _install_scope_hooks(model, builder)
    try:
        model.eval()
        torch.backends.mha.set_fastpath_enabled(False)
        with torch.no_grad(), _Mode(builder.on_call):
            model(*inputs)
    except GeometryError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model is reported in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise GeometryError(f"cannot trace model {name!r}: {type(exc).__name__}: {first[:200]}; "
                            "pass example inputs the model accepts (batch first)") from None
    finally:
        for h in handles:
            h.remove()
        torch.backends.mha.set_fastpath_enabled(fastpath)
        for m, flag in was_training:
            m.train(flag)
    ops = tuple(builder.ops)
    if not any(o.kind in ("conv", "linear", "matmul") for o in ops):
        raise GeometryError(f"cannot trace model {name!r}: no conv, linear or matmul op ran; "
                            "geometry needs at least one GEMM layer")
    shape = tuple(int(s) for s in inputs[0].shape[1:]) if inputs and isinstance(inputs[0], torch.Tensor) else ()
    return Workload(name=name, input_shape=shape, ops=ops, source=f"trace:{type(model).__name__}")


def trace_model(model_name: str, *, num_classes: int, input_shape: tuple[int, ...],
                options: dict[str, Any] | None = None, device: str = "meta") -> Workload:
    """Build a registered model (on the meta device by default: shapes only, no memory) and trace it."""
    from simsparse.models import build_model, example_inputs

    with torch.device(device):
        model = build_model(model_name, num_classes=num_classes, input_shape=input_shape, **(options or {}))
    return trace(model, example_inputs(model_name, input_shape, batch=1, device=device), name=model_name)

