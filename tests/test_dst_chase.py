"""Chase: channel coupling, cubic channel removal, per-layer floors, overall density, checkpoint."""

import math

import pytest
import torch
from torch import nn

import simsparse.graph.coupling
from simsparse.dst.base import METHODS, MethodConfig
from simsparse.dst.channels import ChannelTracingError, removable_channel_groups
from simsparse.dst.trainer import make_trainer, sparsifiable_params
from simsparse.dst.density import erk_densities, layer_nnz
from simsparse.dst.schedule import cubic_channel_sparsity
from simsparse.errors import GeometryError
import simsparse.dst.chase  # noqa: F401

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def _cnn(widths=(8, 8, 8)):
    torch.manual_seed(0)
    a, b, c = widths
    return nn.Sequential(nn.Conv2d(1, a, 3, padding=1), nn.BatchNorm2d(a), nn.ReLU(),
                         nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(),
                         nn.Conv2d(b, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 4))


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
        self.conv3 = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.conv3(torch.relu(y + x))


def _groups(model, shape=(2, 1, 6, 6)):
    return removable_channel_groups(model, sparsified=set(sparsifiable_params(model)), example_input=torch.zeros(shape))


def _trainer(model, *, steps=80, interval=8, channel_sparsity=0.4, beta=0.2, sparsity=0.8, distribution="erk", **extra):
    cfg = MethodConfig(sparsity=sparsity, total_steps=steps, update_interval=interval, distribution=distribution,
                       extra={"channel_sparsity": channel_sparsity, "beta": beta, "stop_fraction": 0.8, **extra})
    method = METHODS.get("chase")(cfg)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    dens = {f: 1.0 - sparsity for f in sparsifiable_params(model)}
    return make_trainer(model=model, method=method, optimizer=opt, densities=dens,
                        generator=torch.Generator().manual_seed(1), example_input=torch.zeros(2, 1, 6, 6))


def _train(tr, steps, on_step=None):
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x, y = torch.randn(16, 1, 6, 6, generator=g), torch.randint(4, (16,), generator=g)
        t = tr.step
        tr.train_step(x, y)
        if on_step:
            on_step(t)


def test_removable_channels_are_conv_bn_conv_chains_not_residual_or_classifier_inputs():
    assert [(g.producer, g.norm, g.consumer) for g in _groups(_cnn())] == [("0.weight", "1", "3.weight"),
                                                                         ("3.weight", "4", "6.weight")]
    assert [g.producer for g in _groups(_Residual(), (2, 4, 6, 6))] == ["conv1.weight"]


def test_mlp_hidden_neurons_are_removable_but_not_the_classifier_outputs():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    assert [(g.producer, g.consumer) for g in _groups(mlp)] == [("1.weight", "3.weight"), ("3.weight", "5.weight")]


@pytest.mark.parametrize("model", [
    nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3)),   # flatten: 36 columns each
    nn.Sequential(nn.Flatten(), nn.Linear(36, 8), nn.LayerNorm(8), nn.Linear(8, 3)),               # LayerNorm mixes channels
    nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.Conv2d(4, 2, 1)),  # depthwise
])
def test_channels_that_cannot_be_removed_alone_are_not_offered(model):
    assert _groups(model) == []


def test_a_model_whose_channels_cannot_be_traced_is_a_clear_error_not_a_silent_fallback(monkeypatch):
    def broken(*args, **kwargs):
        raise GeometryError("workload Sequential has no op connectivity: boom")
    monkeypatch.setattr(simsparse.graph.coupling, "channel_groups", broken)
    with pytest.raises(ChannelTracingError, match="untraceable=unstructured"):
        _trainer(_cnn())


def test_chase_on_an_untraceable_model_can_run_unstructured_and_says_so(monkeypatch):
    def broken(*args, **kwargs):
        raise GeometryError("workload Sequential has no op connectivity: boom")
    monkeypatch.setattr(simsparse.graph.coupling, "channel_groups", broken)
    tr = _trainer(_cnn(), untraceable="unstructured")
    _train(tr, 20)
    assert tr.method.groups == [] and not any(tr.method.removed.values())
    notes = tr.method.notes()["channel_coupling"]
    assert notes["channel_removal"] is False and "boom" in notes["reason"]


def test_a_traced_model_records_where_its_channel_groups_came_from():
    tr = _trainer(_cnn())
    assert tr.method.notes()["channel_coupling"] == {"source": "graph.coupling", "channel_removal": True,
                                                     "groups": 2, "channels": 16}


def _removal_log(method):
    return [e for e in method.history if "channel_sparsity_target" in e]


def test_removal_events_fall_midway_between_updates_and_follow_the_cubic_schedule():
    tr = _trainer(_cnn())                              # ΔT 8, T 80, T_s 64: events at 4, 12, ..., 60
    m = tr.method
    _train(tr, 80)
    log = _removal_log(m)
    assert [e["step"] for e in log] == list(range(4, 64, 8))
    for e in log:   # the reference keeps int(C·(1 − S(t))) of the C = 16 removable channels
        kept = int(16 * (1 - cubic_channel_sparsity(e["step"], final=0.4, stop_step=64)))
        assert sum(e["removed_channels"].values()) == 16 - kept


def test_the_channel_count_to_remove_is_rounded_up():
    tr = _trainer(_cnn())
    first = _removal_log(_train(tr, 5) or tr.method)[0]    # S(4) = 0.4·(1 − (60/64)^3) = 0.0703: 1.125 of 16
    assert first["step"] == 4 and sum(first["removed_channels"].values()) == 2


def test_with_several_updates_per_removal_the_first_event_is_half_an_update_before_the_removal_interval():
    tr = _trainer(_cnn(), removal_every_updates=2)     # R = 16: events at 16 − 4, 28, 44, 60
    _train(tr, 80)
    assert [e["step"] for e in _removal_log(tr.method)] == [12, 28, 44, 60]


def test_per_layer_floors_hold():
    tr = _trainer(_cnn(widths=(4, 16, 8)), channel_sparsity=0.6, beta=1.0)
    _train(tr, 80)
    for g in tr.method.groups:
        floor = int(g.channels * (1 - 0.6) * 1.0)
        assert g.channels - len(tr.method.removed[g.producer]) >= floor


def _budget(tr):
    return sum(layer_nnz(p.numel(), 0.2) for p in tr.params.values())


def test_training_starts_at_the_target_density():
    tr = _trainer(_cnn())
    assert sum(int(m.sum()) for m in tr.masks.values()) == _budget(tr)          # d, not d + 0.05


def test_freed_nonzeros_are_regrown_at_the_next_update_across_layers_in_proportion_to_their_nnz():
    tr = _trainer(_cnn(), distribution="uniform")                     # no layer becomes dense (refilled)
    seen = {}
    _train(tr, 17, on_step=lambda t: seen.__setitem__(t, {f: int(m.sum()) for f, m in tr.masks.items()}))
    removed_at_12 = _removal_log(tr.method)[1]
    assert removed_at_12["step"] == 12
    assert sum(seen[12].values()) < sum(seen[11].values())          # nothing regrown at the removal event
    after_prune, after = {}, seen[16]
    nnz, budget = sum(seen[15].values()), _budget(tr)                 # update at 16: prune to B, regrow to ρ·P
    rho = 0.205 + 0.045 * 0.5 * (1 + math.cos(math.pi * 16 / 64))
    for f, n in seen[15].items():
        after_prune[f] = n - math.ceil(max(0, nnz - budget) / nnz * n)
    full_size = sum(p.numel() for p in tr.params.values())
    ratio = (rho * full_size - sum(after_prune.values())) / sum(after_prune.values())
    assert after == {f: n + int(n * ratio) for f, n in after_prune.items()}


def test_the_last_tenth_of_the_run_still_updates_the_mask_with_the_reference_drop_fraction():
    tr = _trainer(_cnn())
    before = {}
    _train(tr, 80, on_step=lambda t: before.__setitem__(t, {f: m.clone() for f, m in tr.masks.items()}) if t == 71 else None)
    last = tr.method.history[-1]
    assert last["step"] == 72 and last["phase"] == "final"
    assert last["drop_fraction"] == pytest.approx(0.005 + 0.495 * 0.5 * (1 + math.cos(math.pi * 72 / 80)))
    assert any(not torch.equal(before[71][f], tr.masks[f]) for f in tr.masks)


def test_the_final_phase_regrows_each_layer_to_erk_on_the_shrunk_shapes():
    tr = _trainer(_cnn())
    before = {}
    _train(tr, 80, on_step=lambda t: before.__setitem__(t, {f: int(m.sum()) for f, m in tr.masks.items()}))
    m = tr.method
    shapes = {f: list(p.shape) for f, p in tr.params.items()}
    for g in m.groups:
        shapes[g.producer][0] -= len(m.removed[g.producer])
        shapes[g.consumer][1] -= len(m.removed[g.producer])
    erk = erk_densities(shapes, density=_budget(tr) / sum(math.prod(s) for s in shapes.values()))
    drop = 0.005 + 0.495 * 0.5 * (1 + math.cos(math.pi * 72 / 80))
    for f, p in tr.params.items():                  # update at 72: drop ceil(r·n), regrow to the ERK share
        kept = before[71][f] - math.ceil(drop * before[71][f])
        assert int(tr.masks[f].sum()) == max(kept, int(erk[f] * math.prod(shapes[f])))
        assert not (tr.masks[f] & ~m.alive(f, p.shape)).any()
    assert sum(int(m.sum()) for m in tr.masks.values()) <= _budget(tr) + 16


def test_removed_channels_are_zero_for_good():
    model = _cnn()
    tr = _trainer(model)
    _train(tr, 80)
    removed = tr.method.removed
    assert removed["0.weight"] or removed["3.weight"]
    for g in tr.method.groups:
        idx = removed[g.producer]
        assert torch.all(tr.params[g.producer][idx] == 0) and not tr.masks[g.producer][idx].any()
        assert torch.all(tr.params[g.consumer][:, idx] == 0) and not tr.masks[g.consumer][:, idx].any()
        bn = model.get_submodule(g.norm)
        assert torch.all(bn.weight[idx] == 0) and torch.all(bn.bias[idx] == 0)
        assert torch.all(model.get_parameter(g.producer_bias)[idx] == 0)


def test_the_memory_phase_keeps_density_above_the_budget():
    tr = _trainer(_cnn())
    _train(tr, 9)                                                     # the first update (8) regrows to ρ(8)·P
    assert sum(int(m.sum()) for m in tr.masks.values()) > _budget(tr)
