"""MLP and convolutional models: mlp, cnn (VGG-like), wrn22_2 (CIFAR WRN), resnet50 (torchvision names)."""

from __future__ import annotations

import math

import torch
from torch import nn

from simsparse.errors import GeometryError
from simsparse.models.base import MODELS


def _chw(input_shape: tuple[int, ...], model: str) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise GeometryError(f"model {model} needs input_shape (C, H, W), got {input_shape}")
    return input_shape  # type: ignore[return-value]


# ----------------------------------------------------------------------------- mlp


class MLP(nn.Module):
    """Flatten -> (Linear -> ReLU) x depth -> Linear. Parameters fc1 ... fc{depth+1}."""

    def __init__(self, in_features: int, num_classes: int, width: int, depth: int) -> None:
        super().__init__()
        self.depth = depth
        dims = [in_features] + [width] * depth + [num_classes]
        for i in range(depth + 1):
            setattr(self, f"fc{i + 1}", nn.Linear(dims[i], dims[i + 1]))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for i in range(self.depth):
            x = self.relu(getattr(self, f"fc{i + 1}")(x))
        return getattr(self, f"fc{self.depth + 1}")(x)


@MODELS.register("mlp")
def mlp(*, num_classes: int, input_shape: tuple[int, ...], width: int = 256, depth: int = 2) -> nn.Module:
    """MLP on the flattened input: `depth` hidden layers of `width` units."""
    return MLP(math.prod(input_shape), num_classes, width, depth)


# ----------------------------------------------------------------------------- cnn (VGG-like)


class VGGLike(nn.Module):
    """torchvision-VGG naming: `features` (conv, bn, relu, [maxpool]) and `classifier`."""

    def __init__(self, features: nn.Sequential, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@MODELS.register("cnn")
def cnn(*, num_classes: int, input_shape: tuple[int, ...], width: int = 64, depth: int = 3,
        convs_per_stage: int = 2) -> nn.Module:
    """Small VGG: `depth` stages of `convs_per_stage` 3x3 conv-BN-ReLU, widths width·2^stage;
    a 2x2 max-pool after each stage while the feature map is at least 2x2; global average pool;
    one Linear classifier."""
    c_in, h, w = _chw(input_shape, "cnn")
    layers: list[nn.Module] = []
    c = c_in
    for stage in range(depth):
        c_out = width * 2 ** stage
        for _ in range(convs_per_stage):
            layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c = c_out
        if min(h, w) >= 2:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
    return VGGLike(nn.Sequential(*layers), c, num_classes)


# ----------------------------------------------------------------------------- WRN (CIFAR)


class WRNBlock(nn.Module):
    """Pre-activation basic block (names as the common CIFAR WRN code: bn1, conv1, bn2, conv2, convShortcut)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.equal_in_out = c_in == c_out and stride == 1
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.relu1(self.bn1(x))
        shortcut = x if self.equal_in_out else self.convShortcut(o)
        out = self.conv2(self.relu2(self.bn2(self.conv1(o))))
        return out + shortcut


class WRNGroup(nn.Module):
    def __init__(self, n: int, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[WRNBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1)
                                     for i in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    def __init__(self, c_in: int, num_classes: int, depth: int, widen: int, base: int) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise GeometryError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        widths = [base, base * widen, 2 * base * widen, 4 * base * widen]
        self.conv1 = nn.Conv2d(c_in, widths[0], 3, padding=1, bias=False)
        self.block1 = WRNGroup(n, widths[0], widths[1], 1)
        self.block2 = WRNGroup(n, widths[1], widths[2], 2)
        self.block3 = WRNGroup(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        return self.fc(torch.flatten(self.avgpool(self.relu(self.bn1(x))), 1))


@MODELS.register("wrn22_2")
def wrn22_2(*, num_classes: int, input_shape: tuple[int, ...], depth: int = 22, widen: int = 2,
            width: int = 16) -> nn.Module:
    """CIFAR WideResNet-`depth`-`widen` (stage widths width, width·widen, 2·width·widen, 4·width·widen)."""
    c_in, _, _ = _chw(input_shape, "wrn22_2")
    return WideResNet(c_in, num_classes, depth, widen, width)


# ----------------------------------------------------------------------------- ResNet-50


class Bottleneck(nn.Module):
    """torchvision Bottleneck (v1.5: stride on conv2)."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int, downsample: nn.Module | None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, c_in: int, num_classes: int, blocks: tuple[int, ...], width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c = width
        for i, n in enumerate(blocks):
            w = width * 2 ** i
            stride = 1 if i == 0 else 2
            down = nn.Sequential(nn.Conv2d(c, w * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(w * 4))
            layer = [Bottleneck(c, w, stride, down)] + [Bottleneck(w * 4, w, 1, None) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            c = w * 4
        self.n_layers = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.n_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


@MODELS.register("resnet50")
def resnet50(*, num_classes: int, input_shape: tuple[int, ...], width: int = 64,
             blocks: tuple[int, ...] = (3, 4, 6, 3)) -> nn.Module:
    """torchvision ResNet-50 (parameter names identical); `width` scales the stem/bottleneck widths."""
    c_in, _, _ = _chw(input_shape, "resnet50")
    return ResNet(c_in, num_classes, tuple(blocks), width)
