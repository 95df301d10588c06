"""Chase: channel coupling, cubic channel removal, per-layer floors, overall density, checkpoint."""

import pytest
import torch
from torch import nn

import simsparse.dst.channels
from simsparse.dst.base import METHODS, MethodConfig
from simsparse.dst.channels import ChannelTracingError, removable_channel_groups
from simsparse.dst.trainer import make_trainer, sparsifiable_params
from simsparse.dst.schedule import cubic_channel_sparsity
from simsparse.errors import GeometryError
import simsparse.dst.chase  # noqa: F401

torch.set_num_threads(1)


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


def _trainer(model, *, steps=80, interval=8, channel_sparsity=0.4, beta=0.2, sparsity=0.8, **extra):
    cfg = MethodConfig(sparsity=sparsity, total_steps=steps, update_interval=interval, t_end_fraction=0.9,
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
        raise GeometryError("cannot trace model 'Sequential': RuntimeError: boom")
    monkeypatch.setattr(simsparse.dst.channels, "trace", broken)
    with pytest.raises(ChannelTracingError, match="untraceable=unstructured"):
        _trainer(_cnn())


def test_chase_on_an_untraceable_model_can_run_unstructured_and_says_so(monkeypatch):
    def broken(*args, **kwargs):
        raise GeometryError("cannot trace model 'Sequential': RuntimeError: boom")
    monkeypatch.setattr(simsparse.dst.channels, "trace", broken)
    tr = _trainer(_cnn(), untraceable="unstructured")
    _train(tr, 20)
    assert tr.method.groups == [] and not any(tr.method.removed.values())
    notes = tr.method.notes()["channel_coupling"]
    assert notes["channel_removal"] is False and "boom" in notes["reason"]


def test_a_traced_model_records_where_its_channel_groups_came_from():
    tr = _trainer(_cnn())
    assert tr.method.notes()["channel_coupling"] == {"source": "graph.coupling", "channel_removal": True,
                                                     "groups": 2, "channels": 16}


def test_removed_channels_follow_the_cubic_schedule():
    tr = _trainer(_cnn())
    m = tr.method
    events = []
    _train(tr, 80, on_step=lambda t: events.append(t) if m.is_removal(t) else None)
    assert len(events) >= 5 and events[-1] == m.stop_step
    removal_log = [e for e in m.history if "channel_sparsity_target" in e]
    assert [e["step"] for e in removal_log] == events
    for e in removal_log:
        expected = round(cubic_channel_sparsity(e["step"], final=0.4, stop_step=m.stop_step) * 16)
        assert sum(e["removed_channels"].values()) == expected
    assert sum(len(v) for v in m.removed.values()) == round(0.4 * 16)


def test_per_layer_floors_hold():
    tr = _trainer(_cnn(widths=(4, 16, 8)), channel_sparsity=0.6, beta=1.0)
    _train(tr, 80)
    for g in tr.method.groups:
        floor = int(g.channels * (1 - 0.6) * 1.0)
        assert g.channels - len(tr.method.removed[g.producer]) >= floor


def test_removed_channels_are_zero_for_good_and_overall_density_is_at_target():
    model = _cnn()
    tr = _trainer(model)
    budget = sum(tr.method.targets.values())
    _train(tr, 80)
    nnz = sum(int(m.sum()) for m in tr.masks.values())
    assert nnz == budget == sum(tr.method.targets.values())
    removed = tr.method.removed
    assert removed["0.weight"] or removed["3.weight"]
    for g in tr.method.groups:
        idx = removed[g.producer]
        assert torch.all(tr.params[g.producer][idx] == 0) and not tr.masks[g.producer][idx].any()
        assert torch.all(tr.params[g.consumer][:, idx] == 0) and not tr.masks[g.consumer][:, idx].any()
        bn = model.get_submodule(g.norm)
        assert torch.all(bn.weight[idx] == 0) and torch.all(bn.bias[idx] == 0)
        assert torch.all(model.get_parameter(g.producer_bias)[idx] == 0)


def test_soft_memory_bound_keeps_density_above_budget_before_the_stop():
    tr = _trainer(_cnn())
    budget = sum(tr.method.targets.values())
    assert sum(int(m.sum()) for m in tr.masks.values()) > budget  # ρ(0) = d + 0.05
