"""RigL and the trainer's hard-mask invariants."""

import pytest
import torch
from torch import nn

from simsparse.dst.base import METHODS, MethodConfig
from simsparse.dst.density import layer_nnz
from simsparse.dst.rigl import rigl_layer_update
from simsparse.dst.trainer import make_trainer, sparsifiable_params
import simsparse.dst.rigl  # noqa: F401

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))


def _trainer(steps=40, interval=5, optimizer="sgd"):
    model = _model()
    method = METHODS.get("rigl")(MethodConfig(sparsity=0.8, total_steps=steps, update_interval=interval))
    opt = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(model.parameters(), lr=0.01))
    dens = {f: 0.2 for f in sparsifiable_params(model)}
    return make_trainer(model=model, method=method, optimizer=opt, densities=dens,
                        generator=torch.Generator().manual_seed(1), example_input=torch.zeros(2, 1, 4, 4))


def _batches(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(16, 1, 4, 4, generator=g), torch.randint(4, (16,), generator=g)) for _ in range(n)]


def test_per_layer_density_holds_through_every_update():
    tr = _trainer()
    targets = {f: layer_nnz(p.numel(), 0.2) for f, p in tr.params.items()}
    for x, y in _batches(40):
        tr.train_step(x, y)
        assert {f: int(m.sum()) for f, m in tr.masks.items()} == targets
    assert len(tr.method.history) == 5  # updates at 5, 10, ..., 25 < T_end = 30


def test_masks_change_at_updates_and_masked_weights_are_exactly_zero_after_every_step():
    for optimizer in ("sgd", "adam"):
        tr = _trainer(optimizer=optimizer)
        first = {f: m.clone() for f, m in tr.masks.items()}
        for x, y in _batches(12):
            tr.train_step(x, y)
            for f, p in tr.params.items():
                assert torch.all(p[~tr.masks[f]] == 0.0)
                for v in tr.optimizer.state[p].values():
                    if torch.is_tensor(v) and v.shape == p.shape:
                        assert torch.all(v[~tr.masks[f]] == 0.0)
        assert any(not torch.equal(first[f], tr.masks[f]) for f in first)


def test_rigl_drops_smallest_weights_and_grows_largest_gradients():
    w = torch.tensor([[5.0, 0.1, 3.0, 0.0], [0.0, 2.0, 0.0, 0.2]])
    mask = w != 0
    grad = torch.tensor([[0.0, 0.0, 0.0, 9.0], [1.0, 0.0, 8.0, 0.0]])
    new, grown = rigl_layer_update(weight=w, grad=grad, mask=mask, drop_fraction=0.4)
    # 5 active, drop 2 smallest (0.1, 0.2), grow the 2 largest |grad| elsewhere (9.0, 8.0)
    assert new.tolist() == [[True, False, True, True], [False, True, True, False]]
    assert grown.tolist() == [[False, False, False, True], [False, False, True, False]]


def test_grown_weights_start_at_zero():
    tr = _trainer(steps=40, interval=5)
    batches = _batches(6)
    for x, y in batches[:5]:
        tr.train_step(x, y)
    before = {f: m.clone() for f, m in tr.masks.items()}
    tr.train_step(*batches[5])  # step index 5: an update
    for f, p in tr.params.items():
        grown = tr.masks[f] & ~before[f]
        assert grown.any()
        assert torch.all(p[grown] == 0.0)


def test_a_weight_dropped_and_regrown_in_one_update_keeps_its_value():
    # google-research/rigl (reinit_when_same False): only new connections start at 0
    method = METHODS.get("rigl")(MethodConfig(sparsity=0.5, total_steps=100, update_interval=10))
    before = torch.tensor([[5.0, 0.1, 3.0, 0.0], [0.0, 2.0, 0.0, 0.2]])
    p = torch.nn.Parameter(before.clone())
    method.init_masks({"w": p}, {"w": 0.625}, torch.Generator().manual_seed(0))
    masks = {"w": before != 0}
    p.grad = torch.tensor([[0.0, 9.0, 0.0, 0.0], [0.0, 0.0, 0.0, 8.0]])   # f(10)·5 drops the 0.1; its gradient regrows it
    method.before_optimizer_step({"w": p}, masks, 10)
    new = method.after_optimizer_step({"w": p}, masks, 10)
    assert torch.equal(new["w"], masks["w"]) and torch.equal(p.detach(), before)
