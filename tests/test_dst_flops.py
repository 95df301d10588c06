"""Training-FLOPs accounting follows the masks in force (RigL's accounting)."""

import torch
from torch import nn

from simsparse.dst.base import METHODS, MethodConfig
from simsparse.dst.flops import layer_positions, step_flops, weight_sizes
from simsparse.dst.trainer import make_trainer
import simsparse.dst.dense  # noqa: F401  (registers)
import simsparse.dst.rigl  # noqa: F401


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * 4 * 4, 3, bias=False))


def test_positions_are_output_pixels_for_convs_and_one_for_a_classifier():
    pos = layer_positions(_tiny(), torch.zeros(2, 1, 4, 4))
    assert pos == {"0.weight": 16, "3.weight": 1}


def test_step_flops_equal_a_hand_count_on_a_tiny_model():
    model = _tiny()
    pos = layer_positions(model, torch.zeros(1, 1, 4, 4))
    sizes = weight_sizes(model)                      # conv 2*1*3*3 = 18, linear 3*32 = 96
    dens = {"0.weight": 0.5, "3.weight": 0.25}       # nnz 9 and 24
    batch = 5
    fwd = 2 * 9 * 16 * batch + 2 * 24 * 1 * batch    # 2 * nnz * output positions * batch
    dense_fwd = 2 * 18 * 16 * batch + 2 * 96 * batch
    sparse_step = step_flops(positions=pos, sizes=sizes, densities=dens, dense_grad=False, batch=batch)
    assert sparse_step.sparse == 3 * fwd
    assert sparse_step.dense == 3 * dense_fwd
    regrow_step = step_flops(positions=pos, sizes=sizes, densities=dens, dense_grad=True, batch=batch)
    assert regrow_step.sparse == 2 * fwd + dense_fwd  # weight gradient computed densely


def test_trainer_accumulates_flops_from_the_masks_in_force():
    model = _tiny()
    cfg = MethodConfig(sparsity=0.5, total_steps=4, update_interval=100)
    method = METHODS.get("rigl")(cfg)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tr = make_trainer(model=model, method=method, optimizer=opt, densities={"0.weight": 0.5, "3.weight": 0.25},
                      generator=torch.Generator().manual_seed(0), example_input=torch.zeros(1, 1, 4, 4))
    x, y = torch.randn(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    for _ in range(4):
        tr.train_step(x, y)
    fwd = 2 * 9 * 16 * 5 + 2 * 24 * 5
    assert tr.train_flops == 4 * 3 * fwd
    assert tr.dense_train_flops == 4 * 3 * (2 * 18 * 16 * 5 + 2 * 96 * 5)
