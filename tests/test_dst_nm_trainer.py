"""End to end: the N:M methods through simsparse.dst.trainer on a tiny model, a few steps."""

import pytest
import torch
from torch import nn

import simsparse.dst.nm  # noqa: F401  (registers the N:M methods)
from simsparse.dst.base import METHODS, MethodConfig
from simsparse.dst.nm_mask import is_nm_compliant
from simsparse.dst.trainer import make_trainer

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def train(name, steps, nm, **extra):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(128, 16), nn.ReLU(),
                          nn.Linear(16, 4))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 4, 4, 4, generator=g)
    y = (x.mean(dim=(1, 2, 3)) * 4).clamp(-1.99, 1.99).add(2).long()
    method = METHODS.get(name)(MethodConfig(sparsity=0.0, total_steps=steps, nm=nm, extra=extra))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = make_trainer(model=model, method=method, optimizer=opt, densities={},
                           generator=torch.Generator().manual_seed(0), example_input=x[:2])
    for _ in range(steps):
        trainer.train_step(x, y)
    return trainer


@pytest.mark.parametrize("name", ["nm-mask-decay", "nm-structure-decay", "srste", "nm-oneshot"])
def test_trained_masks_and_weights_are_n_m_compliant(name):
    trainer = train(name, 12, (1, 4))
    for f, p in trainer.params.items():
        assert is_nm_compliant(trainer.masks[f], 1, 4)
        assert torch.equal(p.detach() != 0, trainer.masks[f])
    assert trainer.method.history and trainer.method.history[-1]["nm"] == "1:4"
    assert trainer.train_flops < trainer.dense_train_flops


def test_srste_train_flops_match_a_hand_count():
    # 2:4 on layers whose reductions are multiples of 4: forward ½, input-grad ½, weight-grad dense (STE) → 2/3
    trainer = train("srste", 4, (2, 4))
    assert trainer.train_flops / trainer.dense_train_flops == pytest.approx(2 / 3)
