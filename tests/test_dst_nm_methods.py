"""The N:M DST methods through a minimal loop that follows base.py's hook order exactly."""

import pytest
import torch
from torch import nn
from torch.func import functional_call

from simsparse.dst.base import METHODS, MethodConfig
from simsparse.dst.nm import MaskDecay
from simsparse.dst.nm_mask import is_nm_compliant, nm_group_counts, nm_mask
from simsparse.dst.nm_schedule import decay_alpha
from simsparse.errors import SpecError

pytestmark = pytest.mark.usefixtures("torch_single_thread")


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 16),
                         nn.ReLU(), nn.Linear(16, 3))


def tiny_data(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(24, 4, 4, 4, generator=g)
    return x, (x.sum(dim=(1, 2, 3)) > 0).long() + (x[:, 0].mean(dim=(1, 2)) > 0.2).long()


def make(name, steps, nm=(1, 4), **extra):
    return METHODS.get(name)(MethodConfig(sparsity=0.0, total_steps=steps, nm=nm, extra=extra))


def run(method, steps, on_step=None, model=None):
    """The trainer's hook order (base.py); on_step(t, masks_used, params, eff) is called before the update."""
    model = model or tiny_model()
    x, y = tiny_data()
    params = {f: p for f, p in model.named_parameters() if p.dim() > 1}
    masks = method.init_masks(params, {f: 1.0 for f in params}, torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for t in range(steps):
        eff = {f: method.forward_weight(f, p, masks[f], t) for f, p in params.items()}
        loss = nn.functional.cross_entropy(functional_call(model, eff, (x,)), y)
        opt.zero_grad()
        loss.backward()
        if on_step:
            on_step(t, masks, params, eff)
        method.before_optimizer_step(params, masks, t)
        if method.hard_masked_weights:
            for f, p in params.items():
                p.grad.mul_(masks[f])
        opt.step()
        masks = method.after_optimizer_step(params, masks, t)
        if method.hard_masked_weights:
            with torch.no_grad():
                for f, p in params.items():
                    p.mul_(masks[f])
                    opt.state[p]["momentum_buffer"].mul_(masks[f])
    return model, params, masks


@pytest.mark.parametrize("schedule", ["piecewise", "linear", "exponential"])
def test_mask_decay_alpha_follows_the_schedule_and_ends_n_m(schedule):
    steps = 40
    method = make("nm-mask-decay", steps, nm=(1, 4), schedule=schedule, decay_fraction=0.5,
                  dense_warmup_fraction=0.1, finetune_fraction=0.2)
    seen = []

    def on_step(t, masks, params, eff):
        f = "3.weight"
        pruned = ~masks[f] & (params[f].detach() != 0)
        ratio = (eff[f].detach()[pruned] / params[f].detach()[pruned])
        expected = decay_alpha(t, schedule=schedule, start_step=4, end_step=32, coef=method.decay_coef,
                               refresh_steps=method.refresh_steps)
        seen.append(expected)
        assert torch.allclose(ratio, torch.full_like(ratio, expected), atol=1e-6), t

    _, params, masks = run(method, steps, on_step)
    assert seen[0] == 1.0 and seen[-1] == 0.0 and 0.0 < max(a for a in seen if a < 1.0) < 1.0
    for f, p in params.items():
        assert is_nm_compliant(masks[f], 1, 4)
        assert torch.equal(p.detach() != 0, masks[f])       # final weights are exactly the N:M mask


def test_mask_decay_scales_the_gradient_of_pruned_weights_by_alpha():
    method = make("nm-mask-decay", 100, nm=(2, 4), schedule="linear", decay_coef=0.01)
    w = nn.Parameter(torch.tensor([[1.0, -3.0, 0.5, 2.0]]))
    mask = nm_mask(w, 2, 4)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    (x @ method.forward_weight("w", w, mask, 30).T).sum().backward()
    assert torch.allclose(w.grad, torch.tensor([[0.7, 2.0, 2.1, 4.0]]))   # α = 1 − 0.01·30 = 0.7


def test_mask_decay_costs_a_dense_forward_while_alpha_is_positive():
    method = make("nm-mask-decay", 20, nm=(1, 4), schedule="linear", decay_fraction=0.5)
    mask = nm_mask(torch.randn(4, 8), 1, 4)
    assert method.forward_density("w", mask, 5) == 1.0
    assert method.forward_density("w", mask, 15) == pytest.approx(0.25)
    run(method, 20)
    assert [h["phase"] for h in method.history] == ["decay", "sparse"]


def test_structure_decay_steps_through_the_n_m_frames():
    steps = 24
    # row-wise groups (an N:M accelerator that pads k = 36 to 40), so per-row group counts are the frames
    method = make("nm-structure-decay", steps, nm=(1, 8), dense_warmup_fraction=1 / 6, nm_hardware="nm_accelerator")
    per_step = []

    def on_step(t, masks, params, eff):
        counts = nm_group_counts(masks["0.weight"], 8)            # conv: k = 3·3·4 = 36, 4 full groups
        per_step.append(int(counts[:, :4].max()))
        assert torch.equal(eff["0.weight"].detach() != 0, masks["0.weight"] & (params["0.weight"] != 0))

    _, params, masks = run(method, steps, on_step)
    assert per_step == [8] * 4 + [7] * 5 + [4] * 5 + [2] * 5 + [1] * 5
    assert [h["nm"] for h in method.history] == ["8:8", "7:8", "4:8", "2:8", "1:8"]
    assert all(is_nm_compliant(masks[f], 1, 8) for f in params)


def test_structure_decay_passes_the_dense_gradient_straight_through():
    method = make("nm-structure-decay", 10, nm=(2, 4))
    w = nn.Parameter(torch.tensor([[1.0, -3.0, 0.5, 2.0]]))
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    out = x @ method.forward_weight("w", w, nm_mask(w, 3, 4), 0).T
    assert float(out.detach()) == pytest.approx(1 - 6 + 8)
    out.sum().backward()
    assert torch.equal(w.grad, x)
    assert method.needs_dense_grad(0)


def test_srste_gradient_adds_the_decay_on_pruned_weights():
    method = make("srste", 10, nm=(2, 4), lambda_w=0.1)
    w = nn.Parameter(torch.tensor([[1.0, -3.0, 0.5, 2.0]]))
    mask = nm_mask(w, 2, 4)                                          # keeps -3 and 2
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    out = x @ method.forward_weight("w", w, mask, 3).T
    assert float(out.detach()) == pytest.approx(-6 + 8)                       # forward uses W ⊙ mask
    out.sum().backward()
    method.before_optimizer_step({"w": w}, {"w": mask}, 3)
    assert torch.allclose(w.grad, torch.tensor([[1.0 + 0.1 * 1.0, 2.0, 3.0 + 0.1 * 0.5, 4.0]]))


def test_srste_recomputes_the_mask_from_the_dense_weights_every_step():
    checked = []

    def on_step(t, masks, params, eff):
        for f, p in params.items():
            assert torch.equal(masks[f], nm_mask(p.detach(), 2, 4))
        checked.append(t)

    method = make("srste", 6, nm=(2, 4))
    _, params, masks = run(method, 6, on_step)
    assert checked == list(range(6))
    assert all(torch.equal(params[f].detach() != 0, masks[f]) for f in params)


def test_oneshot_prunes_once_then_keeps_the_mask_fixed():
    masks_seen = []
    method = make("nm-oneshot", 12, nm=(2, 4), dense_warmup_fraction=0.5)
    run(method, 12, lambda t, masks, params, eff: masks_seen.append({f: m.clone() for f, m in masks.items()}))
    assert all(m.all() for s in masks_seen[:6] for m in s.values())          # dense phase
    pruned = masks_seen[6]
    assert all(is_nm_compliant(m, 2, 4) and not m.all() for m in pruned.values())
    assert all(torch.equal(s[f], pruned[f]) for s in masks_seen[6:] for f in s)
    assert [h["phase"] for h in method.history] == ["dense", "finetune"]


def test_n_m_methods_need_an_n_m_target():
    method = make("srste", 10, nm=None)
    with pytest.raises(SpecError, match="--nm"):
        method.init_masks({"w": nn.Parameter(torch.ones(2, 4))}, {}, torch.Generator())


def test_unknown_method_option_is_a_spec_error():
    method = make("nm-mask-decay", 10, decay_speed=3.0)
    with pytest.raises(SpecError, match="decay_speed"):
        method.options


def test_resumed_method_continues_the_same_history():
    full = make("nm-mask-decay", 32, nm=(1, 4), schedule="piecewise", decay_fraction=0.5)
    run(full, 32)
    first = make("nm-mask-decay", 32, nm=(1, 4), schedule="piecewise", decay_fraction=0.5)
    model, params, masks = run(first, 16)
    second = MaskDecay(first.config)
    second.load_state_dict(first.state_dict())
    for t in range(16, 32):
        masks = second.after_optimizer_step(params, masks, t)
    assert second.history == full.history


@pytest.mark.parametrize("name", ["nm-mask-decay", "nm-structure-decay", "srste", "nm-oneshot"])
def test_shipped_recipe_options_validate_against_the_method(name):
    from simsparse.dst.recipes import load_recipe

    recipe = load_recipe(method=name)
    method = METHODS.get(name)(MethodConfig(sparsity=0.0, total_steps=100, nm=None, extra=dict(recipe.extra)))
    assert set(method.options) == set(method.OPTIONS)
    masks = method.init_masks({"w": nn.Parameter(torch.randn(4, 16))}, {}, torch.Generator())
    n, m = method.target_nm
    assert f"{n}:{m}" == recipe.extra["nm"] and is_nm_compliant(masks["w"], *method.nm_at(0))


def test_mask_decay_keeps_recomputing_the_mask_after_alpha_reaches_zero():
    # AQT recomputes the mask at every update, PGF at every forward, also once α = 0
    method = make("nm-mask-decay", 100, nm=(2, 4), schedule="linear", decay_fraction=0.1)
    assert method.alpha_at(20) == 0.0 and method.phase_at(20) == "sparse"
    w = nn.Parameter(torch.tensor([[0.1, 0.2, 3.0, 4.0]]))          # magnitudes changed since the last mask
    masks = method.after_optimizer_step({"w": w}, {"w": torch.tensor([[True, True, False, False]])}, 20)
    assert masks["w"].tolist() == [[False, False, True, True]]
    assert w.detach().tolist()[0] == pytest.approx([0.1, 0.2, 3.0, 4.0])   # pruned weights live on until the end


def test_mask_decay_can_freeze_the_mask_once_alpha_is_zero():
    method = make("nm-mask-decay", 100, nm=(2, 4), schedule="linear", decay_fraction=0.1, after_decay="freeze")
    w = nn.Parameter(torch.tensor([[0.1, 0.2, 3.0, 4.0]]))
    masks = method.after_optimizer_step({"w": w}, {"w": torch.tensor([[True, True, False, False]])}, 20)
    assert masks["w"].tolist() == [[True, True, False, False]] and w.detach().tolist()[0][2:] == [0.0, 0.0]


def test_mask_decay_offers_pgfs_straight_through_gradient():
    method = make("nm-mask-decay", 100, nm=(2, 4), schedule="linear", decay_coef=0.01, gradient="straight_through")
    w = nn.Parameter(torch.tensor([[1.0, -3.0, 0.5, 2.0]]))
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    out = x @ method.forward_weight("w", w, nm_mask(w, 2, 4), 30).T
    assert float(out.detach()) == pytest.approx(0.7 * 1.0 - 6.0 + 0.7 * 1.5 + 8.0)   # forward still decays: α = 0.7
    out.sum().backward()
    assert torch.equal(w.grad, x) and method.needs_dense_grad(30)


def test_one_shot_fine_tune_repeats_the_dense_learning_rate_schedule(tmp_path):
    from simsparse.dst.data import load_data
    from simsparse.dst.loop import build_trainer
    from simsparse.dst.train import make_job
    job = make_job(method="nm-oneshot", model="mlp", model_options={"width": 16, "depth": 1}, data="synthetic",
                   sparsity=0.0, nm=(2, 4), steps=8, lr=0.1, out=tmp_path / "o.pt", progress=False)
    trainer = build_trainer(job, load_data("synthetic", seed=0), sync=None)
    lrs = []
    for _ in range(8):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.optimizer.step()
        trainer.scheduler.step()
    assert lrs[0] == lrs[4] == pytest.approx(0.1)                    # the prune at step 4 restarts the cosine
    assert lrs[1:4] == pytest.approx(lrs[5:8]) and lrs[3] < lrs[1]
