"""Training data, held in memory as tensors: `synthetic`, `digits`, and image folders.

- `synthetic`: seeded and learnable, no files. 10 classes of 3×16×16 images; each class has 4
  smooth random prototypes; a sample is a random prototype of its class, mixed with a prototype of
  another class (weight 0.6), shifted by up to ±2 pixels and covered with Gaussian noise (σ 1.0).
  A linear model stays well below a dense MLP/CNN, and at 90 % sparsity capacity starts to matter.
- `digits`: scikit-learn's bundled 8×8 digits (1797 images, no download), 1×8×8, 25 % test split.
- `folder:PATH`: an ImageFolder tree (PATH/train and PATH/test|val, or one tree split 80/20),
  resized to 32×32, via torchvision (clear error when torchvision is not installed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from simsparse.errors import SimSparseError
from simsparse.registry import Registry


@dataclass(frozen=True, eq=False)
class DataSplit:
    """A dataset in memory: float inputs (N, *input_shape), int64 labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])


DATASETS: Registry[Callable[..., DataSplit]] = Registry("dataset")


def _smooth_noise(n: int, shape: tuple[int, int, int], *, generator: torch.Generator) -> torch.Tensor:
    """Low-pass filtered Gaussian images, unit std."""
    c, h, w = shape
    raw = torch.randn(n, c, h // 4, w // 4, generator=generator)
    img = torch.nn.functional.interpolate(raw, size=(h, w), mode="bilinear", align_corners=False)
    return img / img.std()


@DATASETS.register("synthetic")
def synthetic(*, seed: int, n_train: int = 4000, n_test: int = 1000, num_classes: int = 10,
              shape: tuple[int, int, int] = (3, 16, 16), prototypes: int = 4, mix: float = 0.6,
              noise: float = 1.0) -> DataSplit:
    """Prototype images + distractor + shift + noise (see the module docstring)."""
    gen = torch.Generator().manual_seed(10_007 + seed)
    protos = _smooth_noise(num_classes * prototypes, shape, generator=gen).view(num_classes, prototypes, *shape)
    n = n_train + n_test
    y = torch.randint(num_classes, (n,), generator=gen)
    other = (y + torch.randint(1, num_classes, (n,), generator=gen)) % num_classes
    pick = torch.randint(prototypes, (n,), generator=gen)
    pick_other = torch.randint(prototypes, (n,), generator=gen)
    x = protos[y, pick] + mix * protos[other, pick_other]
    shifts = torch.randint(-2, 3, (n, 2), generator=gen)
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            x[sel] = torch.roll(x[sel], shifts=(dy, dx), dims=(2, 3))
    x = x + noise * torch.randn(x.shape, generator=gen)
    return DataSplit(name="synthetic", train_x=x[:n_train], train_y=y[:n_train], test_x=x[n_train:],
                     test_y=y[n_train:], num_classes=num_classes)


@DATASETS.register("digits")
def digits(*, seed: int) -> DataSplit:
    """scikit-learn's 8×8 digits, scaled to [0, 1], seeded 75/25 split."""
    try:  # optional dependency (the [digits] extra), imported only when this dataset is asked for
        from sklearn.datasets import load_digits
    except ImportError:
        raise SimSparseError("data 'digits' needs scikit-learn; install it with pip install 'simsparse[digits]'") from None
    bunch = load_digits()
    x = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = len(y) // 4
    test, train = order[:n_test], order[n_test:]
    return DataSplit(name="digits", train_x=x[train], train_y=y[train], test_x=x[test], test_y=y[test], num_classes=10)


def image_folder(path: str, *, seed: int, size: int = 32) -> DataSplit:
    """An ImageFolder tree loaded into memory (torchvision required)."""
    try:  # optional dependency, imported only when an image folder is asked for
        from torchvision import datasets, transforms
    except ImportError:
        raise SimSparseError(f"data 'folder:{path}' needs torchvision; install it with pip install torchvision") from None
    root = Path(path)
    if not root.is_dir():
        raise SimSparseError(f"data folder {path!r} does not exist; give folder:PATH of an ImageFolder tree")
    tf = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])

    def load(p: Path) -> tuple[torch.Tensor, torch.Tensor, int]:
        ds = datasets.ImageFolder(str(p), transform=tf)
        xs, ys = zip(*[ds[i] for i in range(len(ds))]) if len(ds) else ((), ())
        if not xs:
            raise SimSparseError(f"data folder {p} holds no images; use class sub-folders of image files")
        return torch.stack(xs), torch.tensor(ys), len(ds.classes)

    test_dir = next((root / d for d in ("test", "val") if (root / d).is_dir()), None)
    if (root / "train").is_dir() and test_dir is not None:
        (tx, ty, k), (vx, vy, _) = load(root / "train"), load(test_dir)
    else:
        x, y, k = load(root)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        cut = max(1, len(y) // 5)
        tx, ty, vx, vy = x[order[cut:]], y[order[cut:]], x[order[:cut]], y[order[:cut]]
    return DataSplit(name=f"folder:{path}", train_x=tx, train_y=ty, test_x=vx, test_y=vy, num_classes=k)


def load_data(name: str, *, seed: int) -> DataSplit:
    """Dataset by name (`synthetic`, `digits`) or `folder:PATH`."""
    if name.startswith("folder:"):
        return image_folder(name.split(":", 1)[1], seed=seed)
    return DATASETS.get(name)(seed=seed)


class BatchStream:
    """Endless seeded mini-batches (a fresh permutation per epoch); its state resumes exactly."""

    def __init__(self, n: int, *, batch_size: int, seed: int) -> None:
        self.n = n
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def next_indices(self) -> torch.Tensor:
        if self.pos + self.batch_size > len(self.order):
            self.order = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
        idx = self.order[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order": self.order, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"]
        self.pos = int(state["pos"])
