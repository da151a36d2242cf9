"""A diverging search stops with a FloatingPointError naming the step and the iteration, before
any hook writes an architecture or a checkpoint from it; decoding and the carry-over refuse
non-finite logits and checkpoints."""

import json
import os

import pytest
import torch
from test_search_trainer import build, search_cfg

from projects.nats.architecture import decode_block
from projects.nats.architecture.carry_over import carry_over_supernet


def _written(output_dir):
    return sorted(f for f in os.listdir(output_dir) if f.endswith((".json", ".pth", ".png")))


def test_runaway_logits_stop_the_last_step_and_no_final_architecture_is_written(tmp_path):
    # The only architecture step is the last iteration: a failed run must not write "final".
    cfg = search_cfg(tmp_path, max_iter=2, warmup_iters=1, checkpoint_period=1)
    cfg.MODEL.NATS.SEARCH.ARCH.BASE_LR = 1e37
    trainer = build(cfg)
    trainer.resume_or_load(resume=False)
    with pytest.raises(
        FloatingPointError, match=r"architecture step at iteration 1: the logits of"
    ):
        trainer.train()
    # Only the file of the iteration-1 checkpoint, from logits the warm-up left untouched.
    with open(tmp_path / "architecture.json") as f:
        assert json.load(f)["meta"]["iteration"] == 1
    assert "architecture_heatmap.png" not in _written(tmp_path)


def test_exploding_weight_loss_stops_the_weight_step(tmp_path):
    cfg = search_cfg(tmp_path, max_iter=30, warmup_iters=29)
    cfg.SOLVER.BASE_LR = 1e6
    trainer = build(cfg)
    trainer.resume_or_load(resume=False)
    with pytest.raises(FloatingPointError, match=r"weight step at iteration \d+: "):
        trainer.train()
    assert trainer.iter < 29
    assert "architecture.json" not in _written(tmp_path)


def test_decoding_refuses_non_finite_logits():
    alpha = torch.zeros(4, 2)
    alpha[1, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="1 of its 8 logits are not finite"):
        decode_block(alpha, [(1, 1), (2, 2)], 8)


def test_carry_over_refuses_a_diverged_supernet():
    state = {"backbone.bottom_up.res3.0.conv2.alpha": torch.tensor([[float("inf"), 0.0]])}
    with pytest.raises(FloatingPointError, match=r"res3\.0\.conv2\.alpha.*nothing carried over"):
        carry_over_supernet(state, architecture=None)


def test_a_finite_but_runaway_weight_loss_stops_the_search():
    from types import SimpleNamespace

    from detectron2.utils.events import EventStorage

    from projects.nats.search.step import DIVERGENCE_FACTOR, REFERENCE_ITERS, SearchStepTrainer

    step = SimpleNamespace(_reference_losses=[])
    with EventStorage() as storage:
        for i in range(REFERENCE_ITERS + 5):  # a sane search: the check stays silent
            storage.iter = i
            storage.put_scalar("total_loss", 1.0 + 0.1 * (i % 3))
            SearchStepTrainer._check_weight_loss(step)
        storage.put_scalar("total_loss", 1.1 * DIVERGENCE_FACTOR + 10)
        with pytest.raises(FloatingPointError, match=r"total_loss 1110 is over 1000 x its mean"):
            SearchStepTrainer._check_weight_loss(step)
