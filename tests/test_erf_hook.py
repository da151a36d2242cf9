"""The ERF hook (erf/hook.py) in train_net.py's and search_net.py's trainers: images and radii at
the configured period, in the EventStorage and TensorBoard, and training unchanged by it."""

import glob

import pytest
import torch
from common import tiny_cfg
from detectron2.utils.env import seed_all_rng
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_search_trainer import search_cfg

import train_net
from projects.nats.erf import ERFHook
from projects.nats.preflight import check_erf_config
from projects.nats.search import SearchTrainer


def _erf_keys(cfg, period):
    cfg.MODEL.NATS.ERF.PERIOD = period
    cfg.MODEL.NATS.ERF.FEATURES = ["res5", "p3"]
    cfg.MODEL.NATS.ERF.INPUT_SIZE = (64, 64)
    return cfg


def _train(output_dir, period):
    cfg = _erf_keys(tiny_cfg(output_dir), period)
    cfg.SOLVER.MAX_ITER = 4
    seed_all_rng(0)
    trainer = train_net.Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return trainer, trainer.storage.history("total_loss").values()


def test_the_hook_writes_erfs_at_its_period_and_changes_no_training_step(tmp_path):
    hooked, losses = _train(str(tmp_path / "with"), period=2)
    assert sum(isinstance(h, ERFHook) for h in hooked._hooks) == 1
    for feature in ("res5", "p3"):
        history = hooked.storage.history(f"erf/{feature}/radius90").values()
        assert [it for _, it in history] == [1, 3] and all(r > 0 for r, _ in history)
    events = EventAccumulator(glob.glob(str(tmp_path / "with" / "events.out.tfevents.*"))[0])
    events.Reload()
    assert {"erf/res5", "erf/p3"} <= set(events.Tags()["images"])
    assert [e.step for e in events.Images("erf/res5")] == [1, 3]

    plain, plain_losses = _train(str(tmp_path / "without"), period=0)
    assert not any(isinstance(h, ERFHook) for h in plain._hooks)
    assert losses == plain_losses and len(losses) == 4
    a, b = hooked.model.state_dict(), plain.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_search_measures_its_supernet(tmp_path):
    cfg = _erf_keys(search_cfg(str(tmp_path), max_iter=2, warmup_iters=1), period=1)
    seed_all_rng(0)
    trainer = SearchTrainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    history = trainer.storage.history("erf/res5/radius50").values()
    assert [it for _, it in history] == [0, 1]


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("PERIOD", -1, "MODEL.NATS.ERF.PERIOD must be an integer >= 0"),
        ("FEATURES", ["res5", "p9"], r"MODEL.NATS.ERF.FEATURES must list .*'p7'"),
        ("INPUT_SIZE", (64,), r"MODEL.NATS.ERF.INPUT_SIZE must be \(H, W\)"),
    ],
)
def test_bad_erf_keys_are_refused_by_name(key, value, message):
    cfg = tiny_cfg()
    cfg.MODEL.NATS.ERF[key] = value
    with pytest.raises(ValueError, match=message):
        check_erf_config(cfg)


def test_a_map_the_backbone_lacks_is_refused_before_training(tmp_path):
    cfg = _erf_keys(tiny_cfg(str(tmp_path)), period=1)
    cfg.MODEL.NATS.ERF.FEATURES = ["p7"]  # RetinaNet has it, this FPN stops at p6
    with pytest.raises(ValueError, match=r"MODEL.NATS.ERF.FEATURES: \['p7'\].*'p6'"):
        train_net.Trainer(cfg)
