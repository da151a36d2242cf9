"""train_net.py trains, checkpoints and evaluates a decoded tiny model; bad setups stop early."""

import argparse
import json
import math
import os

import pytest
import torch
from common import tiny_cfg
from detectron2.engine import hooks
from test_decoded_backbone import decoded_cfg

import train_net
from projects.nats.checkpoint import NATSCheckpointer


def _args(config_file, *opts, eval_only=False, resume=False):
    return argparse.Namespace(
        config_file=str(config_file),
        opts=list(opts),
        eval_only=eval_only,
        resume=resume,
        num_gpus=1,
        num_machines=1,
        machine_rank=0,
        dist_url="auto",
    )


def test_train_net_trains_and_evaluates_a_decoded_model(tmp_path):
    cfg = decoded_cfg(tmp_path, num_groups=8, seed=7, norm="BN")
    cfg.SOLVER.MAX_ITER = 3
    config_file = tmp_path / "decoded.yaml"
    config_file.write_text(cfg.dump())

    train_net.main(_args(config_file))
    lines = [json.loads(x) for x in open(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))]
    losses = [x["total_loss"] for x in lines if "total_loss" in x]
    assert losses and all(math.isfinite(v) for v in losses)
    final = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    assert os.path.exists(final)

    results = train_net.main(_args(config_file, "MODEL.WEIGHTS", final, eval_only=True))
    assert {"AP", "AP50", "AP75"} <= set(results["bbox"])
    assert os.path.exists(os.path.join(cfg.OUTPUT_DIR, "inference", "coco_instances_results.json"))


def test_missing_architecture_stops_before_setup(tmp_path):
    cfg = decoded_cfg(tmp_path)
    cfg.OUTPUT_DIR = str(tmp_path / "never_created")
    cfg.MODEL.NATS.ARCHITECTURE = str(tmp_path / "nope" / "architecture.json")
    cfg.MODEL.NATS.ARCHITECTURE_SEARCH_CONFIG = "configs/NATS-Search/s.yaml"
    config_file = tmp_path / "missing.yaml"
    config_file.write_text(cfg.dump())
    with pytest.raises(
        FileNotFoundError, match="run search_net.py with configs/NATS-Search/s.yaml"
    ):
        train_net.setup(_args(config_file))
    assert not os.path.exists(cfg.OUTPUT_DIR)  # nothing written


def test_supernet_and_missing_weights_stop_before_setup(tmp_path):
    cfg = decoded_cfg(tmp_path)
    cfg.OUTPUT_DIR = str(tmp_path / "never_created")
    config_file = tmp_path / "bad.yaml"
    cfg.MODEL.BACKBONE.NAME = "build_nats_supernet_resnet_fpn_backbone"
    config_file.write_text(cfg.dump())
    with pytest.raises(ValueError, match="MODEL.BACKBONE.NAME = .* search it with search_net.py"):
        train_net.setup(_args(config_file))
    cfg.MODEL.BACKBONE.NAME = "build_nats_resnet_fpn_backbone"
    cfg.MODEL.WEIGHTS = str(tmp_path / "X-101-32x4d.pkl")
    config_file.write_text(cfg.dump())
    with pytest.raises(FileNotFoundError, match="MODEL.WEIGHTS = .*X-101-32x4d.pkl does not exist"):
        train_net.setup(_args(config_file, eval_only=True))
    assert not os.path.exists(cfg.OUTPUT_DIR)  # nothing written
    os.makedirs(cfg.OUTPUT_DIR)  # a run to resume: its own checkpoint replaces MODEL.WEIGHTS
    open(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint"), "w").write("model_0000009.pth")
    assert train_net.setup(_args(config_file, resume=True)).MODEL.WEIGHTS == cfg.MODEL.WEIGHTS


def test_trainer_checkpoints_through_nats_checkpointer(tmp_path):
    cfg = decoded_cfg(tmp_path, num_groups=8, seed=7, norm="BN")
    trainer = train_net.Trainer(cfg)
    periodic = [h for h in trainer._hooks if isinstance(h, hooks.PeriodicCheckpointer)]
    assert periodic and all(h.checkpointer is trainer.checkpointer for h in periodic)
    assert isinstance(trainer.checkpointer, NATSCheckpointer)


def test_checkpoints_keep_the_optimizer_state_on_either_detectron2(tmp_path, caplog):
    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = 2
    trainer = train_net.Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    path = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    checkpoint = torch.load(path, weights_only=False)
    saved = checkpoint["trainer"]["_trainer"]["optimizer"]["state"]  # v0.6 alone would not
    assert saved and all("momentum_buffer" in s for s in saved.values())

    cfg.SOLVER.MAX_ITER = 3
    resumed = train_net.Trainer(cfg)
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 2
    state = resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(state[k]["momentum_buffer"], saved[k]["momentum_buffer"]) for k in saved)

    del checkpoint["trainer"]["_trainer"]  # as v0.6's own DefaultTrainer writes it
    torch.save(checkpoint, path)
    with caplog.at_level("WARNING", logger="projects.nats.compat.engine"):
        fresh = train_net.Trainer(cfg)
        fresh.resume_or_load(resume=True)
    assert fresh.start_iter == 2 and not fresh.optimizer.state_dict()["state"]
    assert "no '_trainer' state" in caplog.text
