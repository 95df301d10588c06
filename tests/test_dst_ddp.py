"""DDP on 2 CPU processes (gloo) keeps masks and weights identical on every rank."""

import torch

from simsparse.dst.ddp import run_distributed
from simsparse.dst.train import make_job
from simsparse.masks.io import load


def test_two_process_training_keeps_masks_identical_on_every_rank(tmp_path):
    job = make_job(method="srigl", model="mlp", data="synthetic", sparsity=0.9, steps=12, out=tmp_path / "d.pt",
                   progress=False, batch_size=32, recipe_overrides=("min_updates=5",),
                   model_options={"width": 16, "depth": 1})
    result = run_distributed(job, world_size=2, report_dir=tmp_path)
    r0, r1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert len(result.ablated_neurons) == 2 and result.steps == 12
    for fqn in r0["masks"]:
        assert torch.equal(r0["masks"][fqn], r1["masks"][fqn])
        assert torch.equal(r0["weights"][fqn], r1["weights"][fqn])
    ckpt = load(result.out)
    assert len(ckpt.provenance.get("meta", ckpt.provenance)["history"]) >= 2  # masks were updated while in sync
