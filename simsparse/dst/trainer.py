"""The DST trainer loop: wraps any optimizer around a Method (see base.py for the hook order).

One step: forward through `torch.func.functional_call` with `method.forward_weight` for every
sparsified weight; backward; optional gradient sync (DDP); FLOPs recorded from the masks in
force; `method.before_optimizer_step` (reads dense gradients); gradients masked (hard-masked
methods); `optimizer.step()`; `method.after_optimizer_step` (mask updates); optional mask sync;
then weights and every optimizer-state tensor shaped like the weight (momentum, Adam moments)
zeroed outside the masks — and at newly grown positions — so masked weights are exactly 0.0.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

import torch
from torch import nn
from torch.func import functional_call

from simsparse.dst.base import Method
from simsparse.dst.flops import layer_positions, step_flops, weight_modules, weight_sizes


class Sync(Protocol):
    """What the trainer needs from a multi-process backend (ddp.GlooSync implements it)."""

    def params(self, model: nn.Module) -> None: ...
    def grads(self, model: nn.Module) -> None: ...
    def masks(self, masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]: ...


def sparsifiable_params(model: nn.Module) -> dict[str, nn.Parameter]:
    """{fqn: parameter} of every Conv/Linear weight and attention in/out projection, model order."""
    params = dict(model.named_parameters())
    return {fqn: params[fqn] for fqn in weight_modules(model) if fqn in params}


class Trainer:
    """Holds the training state; `train_step` computes. Build it with `make_trainer`."""

    def __init__(self, *, model: nn.Module, method: Method, optimizer: torch.optim.Optimizer,
                 params: dict[str, nn.Parameter], masks: dict[str, torch.Tensor], positions: dict[str, int],
                 sizes: dict[str, int], loss_fn: Callable, scheduler: Any = None, sync: Sync | None = None) -> None:
        self.model = model
        self.method = method
        self.optimizer = optimizer
        self.params = params
        self.masks = masks
        self.positions = positions
        self.sizes = sizes
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.sync = sync
        self.step = 0
        self.train_flops = 0.0
        self.dense_train_flops = 0.0

    # ------------------------------------------------------------------ one step
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eff = {f: self.method.forward_weight(f, p, self.masks[f], self.step) for f, p in self.params.items()}
        return functional_call(self.model, eff, (x,), strict=False)

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """One optimizer step on (x, y); returns (loss, accuracy) of the batch."""
        t = self.step
        self.model.train()
        out = self.forward(x)
        loss = self.loss_fn(out, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.sync is not None:
            self.sync.grads(self.model)
        self._record_flops(t, batch=int(x.shape[0]))
        self.method.before_optimizer_step(self.params, self.masks, t)
        hard = self.method.hard_masked_weights
        if hard:
            self._mask_grads()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        old = self.masks
        new = self.method.after_optimizer_step(self.params, old, t)
        if new is not old and self.sync is not None:
            new = self.sync.masks(new)
            self.sync.params(self.model)  # grown weights and zeroed entries: rank 0's copy everywhere
        self.masks = new
        if hard:
            self.apply_masks(grown={f: new[f] & ~old[f] for f in new} if new is not old else None)
        self.step += 1
        acc = float((out.detach().argmax(dim=-1) == y).float().mean())
        return float(loss.detach()), acc

    def _record_flops(self, t: int, *, batch: int) -> None:
        dens = {f: self.method.forward_density(f, m, t) for f, m in self.masks.items()}
        fl = step_flops(positions=self.positions, sizes=self.sizes, densities=dens,
                        dense_grad=self.method.needs_dense_grad(t), batch=batch)
        self.train_flops += fl.sparse
        self.dense_train_flops += fl.dense

    @torch.no_grad()
    def _mask_grads(self) -> None:
        for f, p in self.params.items():
            if p.grad is not None:
                p.grad.mul_(self.masks[f])

    @torch.no_grad()
    def apply_masks(self, grown: dict[str, torch.Tensor] | None = None) -> None:
        """Zero weights and weight-shaped optimizer state outside the masks (and at grown positions)."""
        for f, p in self.params.items():
            keep = self.masks[f]
            p.mul_(keep)
            state = self.optimizer.state.get(p, {})
            for v in state.values():
                if torch.is_tensor(v) and v.shape == p.shape:
                    v.mul_(keep)
                    if grown is not None:
                        v.masked_fill_(grown[f], 0.0)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 512) -> tuple[float, float]:
        """(loss, accuracy) on a held-out set with the weights the forward pass uses now."""
        self.model.eval()
        loss_sum, correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            out = self.forward(x[i:i + batch_size])
            loss_sum += float(self.loss_fn(out, y[i:i + batch_size])) * len(out)
            correct += int((out.argmax(dim=-1) == y[i:i + batch_size]).sum())
        self.model.train()
        return loss_sum / max(1, len(x)), correct / max(1, len(x))

    @torch.no_grad()
    def final_weights(self) -> dict[str, torch.Tensor]:
        """The model's state with every sparsified weight multiplied by its mask (exact zeros)."""
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        for f in self.params:
            state[f] = state[f] * self.masks[f]
        return state

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "method": self.method.state_dict(), "masks": dict(self.masks),
                "flops": [self.train_flops, self.dense_train_flops], "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.method.load_state_dict(state["method"])
        self.masks = {f: state["masks"][f].bool() for f in self.params}
        self.train_flops, self.dense_train_flops = (float(v) for v in state["flops"])
        self.step = int(state["step"])
        torch.set_rng_state(state["torch_rng"])


def make_trainer(*, model: nn.Module, method: Method, optimizer: torch.optim.Optimizer,
                 densities: dict[str, float], generator: torch.Generator, example_input: torch.Tensor,
                 loss_fn: Callable = nn.functional.cross_entropy, scheduler: Any = None,
                 sync: Sync | None = None) -> Trainer:
    """Bind the method to the model, draw the initial masks and zero the weights outside them."""
    params = sparsifiable_params(model)
    method.bind_model(model, example_input=example_input)
    masks = method.init_masks(params, {f: densities.get(f, 1.0) for f in params}, generator)
    if sync is not None:
        masks = sync.masks(masks)
    trainer = Trainer(model=model, method=method, optimizer=optimizer, params=params, masks=masks,
                      positions=layer_positions(model, example_input), sizes=weight_sizes(model),
                      loss_fn=loss_fn, scheduler=scheduler, sync=sync)
    if method.hard_masked_weights:
        trainer.apply_masks()
    return trainer
