"""SRigL: constant fan-in, neuron ablation, the last layer never ablated."""

import pytest
import torch
from torch import nn

from simsparse.dst.base import METHODS, MethodConfig
from simsparse.dst.density import layer_nnz
from simsparse.dst.srigl import srigl_layer_update
from simsparse.dst.trainer import make_trainer, sparsifiable_params
import simsparse.dst.srigl  # noqa: F401

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _trainer(*, sparsity, gamma_sal=0.3, ablation=True, steps=60):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(16 * 16, 4))
    cfg = MethodConfig(sparsity=sparsity, total_steps=steps, update_interval=4,
                       extra={"gamma_sal": gamma_sal, "ablation": ablation})
    method = METHODS.get("srigl")(cfg)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    dens = {f: 1.0 - sparsity for f in sparsifiable_params(model)}
    return make_trainer(model=model, method=method, optimizer=opt, densities=dens,
                        generator=torch.Generator().manual_seed(1), example_input=torch.zeros(2, 1, 4, 4))


def _run_checking(tr, steps):
    g = torch.Generator().manual_seed(0)
    checked = 0
    for _ in range(steps):
        x, y = torch.randn(16, 1, 4, 4, generator=g), torch.randint(4, (16,), generator=g)
        n_hist = len(tr.method.history)
        tr.train_step(x, y)
        if len(tr.method.history) == n_hist:
            continue
        checked += 1
        for f, p in tr.params.items():
            rows = tr.masks[f].reshape(p.shape[0], -1).sum(dim=1)
            ablated = tr.method.ablated[f]
            active = [r for r in range(p.shape[0]) if r not in ablated]
            k_new = tr.method.fan_in[f]
            assert torch.all(rows[active] == k_new), f
            assert torch.all(rows[ablated] == 0)
            assert torch.all(p.reshape(p.shape[0], -1)[ablated] == 0.0)
            assert k_new == min(p[0].numel(), tr.method.targets[f] // len(active))
    return checked


def test_every_active_row_holds_exactly_k_prime_after_every_update():
    tr = _trainer(sparsity=0.9)
    assert _run_checking(tr, 60) >= 10


def test_ablation_at_very_high_sparsity_removes_rows_but_never_in_the_last_layer():
    tr = _trainer(sparsity=0.99, gamma_sal=0.9)
    _run_checking(tr, 60)
    assert all(e["ablated_neurons"]["5.weight"] == 0 for e in tr.method.history)
    assert any(e["ablated_neurons"]["2.weight"] > 0 for e in tr.method.history)


def test_no_ablation_keeps_every_row_active():
    tr = _trainer(sparsity=0.99, gamma_sal=0.9, ablation=False)
    _run_checking(tr, 60)
    assert all(v == [] for v in tr.method.ablated.values())


def test_initial_mask_has_constant_fan_in():
    tr = _trainer(sparsity=0.9)
    for f, p in tr.params.items():
        rows = tr.masks[f].reshape(p.shape[0], -1).sum(dim=1)
        assert torch.all(rows == max(1, layer_nnz(p.numel(), 0.1) // p.shape[0]))


def test_update_moves_the_budget_to_surviving_rows():
    torch.manual_seed(0)
    w = torch.randn(6, 10)
    w[:3] *= 1e-3                                  # three weak rows
    mask = torch.zeros(6, 10, dtype=torch.bool)
    mask[:, :3] = True                             # fan-in 3, 18 nonzeros; keep 9 (all in strong rows)
    grad = torch.zeros(6, 10)
    grad[3:, 3:] = torch.rand(3, 7) + 1.0          # regrowth candidates only in the strong rows
    new, grown, active, k = srigl_layer_update(weight=w, grad=grad, mask=mask, drop_fraction=0.5,
                                               target_nnz=18, gamma_sal=0.9, ablate=True)
    assert active.tolist() == [False, False, False, True, True, True]
    assert k == 6
    assert new.sum(dim=1).tolist() == [0, 0, 0, 6, 6, 6]


def test_salient_set_is_the_plain_union_so_gradient_picks_on_kept_weights_add_nothing():
    # METHODS.md step 2: salient = top-n_keep |w| ∪ top-n_prune |dense grad| (layer-wide). Row 0 holds the
    # two kept weights AND the two largest gradients: in the union it counts 2 salient weights, not 4.
    from simsparse.dst.srigl import active_rows
    kept = torch.zeros(4, 8, dtype=torch.bool)
    kept[0, :2] = True
    kept[1, :2] = True
    grad = torch.zeros(4, 8)
    grad[0, :2] = 10.0                      # the top-2 gradients sit on row 0's kept positions
    grad[2, :2] = 1.0                       # next-largest gradients: row 2 (would be picked if kept were excluded)
    active = active_rows(kept=kept, grad=grad, n_prune=2, target_nnz=8, gamma_sal=1.0)
    assert active.tolist() == [True, True, False, False]


def test_rows_tied_with_the_minimum_row_count_all_survive():
    # 8 rows of fan-in 10, budget 20: k = 2, threshold int(1.0·2) = 2. The reference keeps the top
    # int(20 // 10) + 1 = 3 rows and every row tied with the third (salient count 1): rows 0–4, k' = 4.
    from simsparse.dst.srigl import active_rows
    kept = torch.zeros(8, 10, dtype=torch.bool)
    for row, count in enumerate([4, 2, 1, 1, 1, 0, 0, 0]):
        kept[row, :count] = True
    active = active_rows(kept=kept, grad=torch.zeros(8, 10), n_prune=0, target_nnz=20, gamma_sal=1.0)
    assert active.tolist() == [True] * 5 + [False] * 3


def test_an_ablated_rows_kept_share_moves_to_surviving_rows_by_magnitude():
    # 3 rows of fan-in 4, 2 weights each; f = 0.5 keeps 3 by |w|: 5 (row 0), 4 and 3 (row 1). Row 0 has
    # one salient weight < threshold 2 and is ablated. Its kept slot goes to the next |w|, row 2's 2.0
    # (kept with its value), not to a gradient pick.
    w = torch.tensor([[5.0, 0.1, 0, 0], [4.0, 3.0, 0, 0], [2.0, 1.5, 0, 0]])
    grad = torch.zeros(3, 4)
    grad[2, 2], grad[2, 3], grad[1, 2], grad[2, 1], grad[2, 0] = 10.0, 9.0, 8.0, 0.5, 0.1
    new, grown, active, k = srigl_layer_update(weight=w, grad=grad, mask=w != 0, drop_fraction=0.5,
                                               target_nnz=6, gamma_sal=1.0, ablate=True)
    assert active.tolist() == [False, True, True] and k == 3
    assert new.tolist() == [[False] * 4, [True, True, True, False], [True, False, True, True]]
    assert not grown[2, 0]


def test_a_weight_dropped_and_regrown_in_one_update_keeps_its_value():
    method = METHODS.get("srigl")(MethodConfig(sparsity=0.5, total_steps=100, update_interval=10,
                                               extra={"ablation": False, "sparse_init": "none"}))
    before = torch.tensor([[0.5, 3.0, 0.0, 0.0], [2.0, 0.4, 0.0, 0.0]])
    p = torch.nn.Parameter(before.clone())
    method.init_masks({"w": p}, {"w": 0.5}, torch.Generator().manual_seed(0))
    masks = {"w": p.detach() != 0}
    p.grad = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 8.0, 0.0, 0.5]])   # f(10)·4 drops 1: the 0.4, regrown
    method.before_optimizer_step({"w": p}, masks, 10)
    new = method.after_optimizer_step({"w": p}, masks, 10)
    assert torch.equal(new["w"], masks["w"]) and torch.equal(p.detach(), before)


def test_initial_weights_are_redrawn_on_the_sparse_support_as_grad_flow_init():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(400, 256), nn.ReLU(), nn.Linear(256, 4))
    method = METHODS.get("srigl")(MethodConfig(sparsity=0.95, total_steps=10))
    tr = make_trainer(model=model, method=method, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                      densities={"1.weight": 0.05, "3.weight": 0.5}, generator=torch.Generator().manual_seed(1),
                      example_input=torch.zeros(2, 400))
    w, mask = tr.params["1.weight"].detach(), tr.masks["1.weight"]
    assert method.fan_in["1.weight"] == 20 and torch.all(w[~mask] == 0)
    assert float(w[mask].std()) == pytest.approx(2 / 20, rel=0.1)             # σ = 2 / fan-in, not U(±1/√400)
