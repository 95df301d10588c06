"""`train --explain`: the update schedule a run will follow, printed without training."""

import json
import math

import pytest
import torch

from simsparse import api, cli
from simsparse.dst.train import run
from simsparse.masks.io import load

torch.set_num_threads(1)
SMALL = dict(model="cnn", data="synthetic", steps=48, batch_size=16)


def test_rigl_schedule_lists_every_update_step_with_its_cosine_drop_fraction():
    plan = api.explain_training(method="rigl", sparsity=0.9, **SMALL)
    dt, t_end = plan.update_interval, int(0.75 * 48)
    assert [e["step"] for e in plan.events] == list(range(dt, t_end, dt))
    for e in plan.events:
        assert e["drop_fraction"] == pytest.approx(0.15 * (1 + math.cos(math.pi * e["step"] / t_end)))
    assert list(plan.dense_layers) == ["features.0.weight"]


def test_the_explained_chase_schedule_is_the_one_training_follows(tmp_path):
    options = {"width": 8, "depth": 2}
    plan = api.explain_training(method="chase", sparsity=0.8, model_options=options, **SMALL)
    res = run(method="chase", sparsity=0.8, model_options=options, out=tmp_path / "c.pt", progress=False, **SMALL)
    history = load(res.out).provenance["meta"]["history"]
    removals = [e for e in plan.events if e["event"] == "channel removal"]
    assert removals and [e["step"] for e in removals] == [h["step"] for h in history if "channel_sparsity_target" in h]
    updates = sorted({e["step"] for e in plan.events if e["event"].startswith("mask update")})
    assert updates == [h["step"] for h in history if "phase" in h] and updates[-1] > 0.9 * 48 - plan.update_interval
    assert all(e["channels_removed"] >= sum(h["removed_channels"].values())
               for e, h in zip(removals, [h for h in history if "channel_sparsity_target" in h]))


def test_cli_explain_prints_the_schedule_as_a_table_or_json(capsys, tmp_path):
    assert cli.main(["train", "--explain", "--method", "nm-structure-decay", "--model", "mlp", "--data", "synthetic",
                     "--sparsity", "0", "--nm", "1:8", "--steps", "40"]) == 0
    text = capsys.readouterr().out
    assert "7:8" in text and "4:8" in text and "2:8" in text and "dense: fc1.weight" in text
    assert cli.main(["train", "--explain", "--method", "nm-oneshot", "--model", "mlp", "--data", "synthetic",
                     "--sparsity", "0", "--nm", "2:4", "--steps", "40", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {"step": 20, "event": "lr schedule restarts"} in plan["events"]
    assert not list(tmp_path.iterdir())


def test_train_without_out_or_explain_is_a_one_line_error(capsys):
    assert cli.main(["train", "--method", "rigl", "--model", "mlp", "--data", "synthetic", "--sparsity", "0.9",
                     "--steps", "2"]) == 2
    assert "--out" in capsys.readouterr().err


def test_explained_options_show_the_nm_target_given_on_the_command_line_not_the_recipe_default():
    plan = api.explain_training(method="nm-mask-decay", sparsity=0.5, nm=(2, 4), model="mlp", data="synthetic",
                                steps=20)
    assert plan.nm == "2:4" and plan.options["nm"] == "2:4"
