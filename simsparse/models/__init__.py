"""Model definitions shared by the DST trainer and the geometry catalog.

`build_model(name, *, num_classes, input_shape, **options)` builds one registered model. The
input shape is per sample (batch excluded) and drives the model:

| name        | input_shape            | input tensor                    | parameter names follow          |
|-------------|------------------------|---------------------------------|---------------------------------|
| mlp         | any, e.g. (1, 8, 8)    | float (B, *input_shape)         | fc1, fc2, ..., fcN              |
| cnn         | (C, H, W)              | float (B, C, H, W)              | torchvision VGG (features.i, classifier) |
| wrn22_2     | (C, H, W)              | float                           | CIFAR WRN (conv1, block1.layer.0.conv1, ..., fc) |
| resnet50    | (C, H, W)              | float                           | torchvision resnet50            |
| vit_tiny    | (C, H, W)              | float                           | torchvision VisionTransformer   |
| vit_b16     | (C, H, W)              | float                           | torchvision vit_b_16            |
| transformer | (seq,) or (src, tgt)   | int64 token ids (B, seq)        | nn.Transformer (transformer.encoder.layers.0.self_attn...) |
| bert_base   | (seq,)                 | int64 token ids (B, seq)        | Hugging Face BertForSequenceClassification |

Each builder has explicit keyword options for small variants (see its docstring), e.g.
`build_model("resnet50", num_classes=10, input_shape=(3, 8, 8), width=8)` or
`build_model("bert_base", num_classes=2, input_shape=(16,), width=64, depth=2, heads=2)`.
For `transformer` and `bert_base` `num_classes` is the output size (the target vocabulary for
`transformer`, the number of labels for `bert_base`). `example_inputs(name, input_shape, batch=)`
returns a matching input tuple (zeros) for tracing or smoke tests.
"""

from __future__ import annotations

import torch
from torch import nn

from simsparse.errors import GeometryError
from simsparse.models import attention, convnets  # noqa: F401  (each registers its builders)
from simsparse.models.base import MODELS

TOKEN_MODELS = ("transformer", "bert_base")


def build_model(name: str, *, num_classes: int, input_shape: tuple[int, ...], **options) -> nn.Module:
    """Build the registered model `name` for `input_shape` (per sample) and `num_classes` outputs.

    `options` are the builder's documented keyword arguments (width, depth, heads, ...); an
    unknown option is a GeometryError naming the accepted ones.
    """
    builder = MODELS.get(name)
    shape = tuple(int(s) for s in input_shape)
    if num_classes < 1 or not shape or min(shape) < 1:
        raise GeometryError(f"model {name}: need num_classes >= 1 and a positive input_shape, got "
                            f"{num_classes} and {input_shape}")
    try:
        return builder(num_classes=int(num_classes), input_shape=shape, **options)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise GeometryError(f"model {name}: {exc}; see simsparse.models.{builder.__name__}") from None
        raise


def example_inputs(name: str, input_shape: tuple[int, ...], *, batch: int = 1,
                   device: str | torch.device = "cpu") -> tuple[torch.Tensor, ...]:
    """Zero inputs of the right dtype/shape for model `name` (token ids for token models)."""
    shape = tuple(int(s) for s in input_shape)
    if name in TOKEN_MODELS:
        if name == "transformer" and len(shape) == 2:
            return (torch.zeros((batch, shape[0]), dtype=torch.long, device=device),
                    torch.zeros((batch, shape[1]), dtype=torch.long, device=device))
        return (torch.zeros((batch, shape[0]), dtype=torch.long, device=device),)
    return (torch.zeros((batch, *shape), device=device),)

