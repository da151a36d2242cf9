"""Retraining configs: they load, follow the paper's 1x schedule, and match their search runs."""

import glob
import os

import pytest
from detectron2.config import get_cfg

from projects.nats import add_nats_config
from projects.nats.config import check_architecture_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINES = sorted(glob.glob(os.path.join(ROOT, "configs", "Baselines", "*.yaml")))
NATS = sorted(glob.glob(os.path.join(ROOT, "configs", "NATS", "*.yaml")))


def _load(path):
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(path)
    return cfg


def test_every_baseline_has_a_nats_twin():
    twins = {os.path.basename(p).replace("_1x", "") for p in BASELINES}
    nats = {os.path.basename(p).split("_nats_")[0] + ".yaml" for p in NATS}
    assert twins == nats and len(BASELINES) == 7


@pytest.mark.parametrize("path", BASELINES + NATS, ids=os.path.basename)
def test_paper_1x_schedule(path):
    cfg = _load(path)
    per_image = cfg.SOLVER.BASE_LR / cfg.SOLVER.IMS_PER_BATCH
    retinanet = cfg.MODEL.META_ARCHITECTURE == "RetinaNet"
    assert per_image == pytest.approx(0.000625 if retinanet else 0.00125)
    iters_per_epoch = 117266 / cfg.SOLVER.IMS_PER_BATCH
    assert [round(s / iters_per_epoch) for s in cfg.SOLVER.STEPS] == [8, 11]
    assert round(cfg.SOLVER.MAX_ITER / iters_per_epoch) == 13
    assert (cfg.SOLVER.MOMENTUM, cfg.SOLVER.WEIGHT_DECAY) == (0.9, 0.0001)
    assert cfg.SOLVER.WARMUP_ITERS > 0 and cfg.MODEL.RESNETS.NORM == "SyncBN"


@pytest.mark.parametrize("path", NATS, ids=os.path.basename)
def test_nats_config_matches_its_search_and_stops_without_it(path):
    cfg = _load(path)
    assert (
        cfg.MODEL.BACKBONE.NAME.startswith("build_nats_")
        and "supernet" not in cfg.MODEL.BACKBONE.NAME
    )
    baseline = _load(path.replace("/NATS/", "/Baselines/").split("_nats_")[0] + "_1x.yaml")
    assert baseline.MODEL.WEIGHTS == cfg.MODEL.WEIGHTS
    search_path = cfg.MODEL.NATS.ARCHITECTURE_SEARCH_CONFIG
    search = _load(os.path.join(ROOT, search_path))
    assert cfg.MODEL.NATS.ARCHITECTURE == os.path.join(search.OUTPUT_DIR, "architecture.json")
    for key in ("DEPTH", "NUM_GROUPS", "WIDTH_PER_GROUP", "STRIDE_IN_1X1"):
        assert cfg.MODEL.RESNETS[key] == search.MODEL.RESNETS[key], key
    assert cfg.MODEL.PIXEL_STD == search.MODEL.PIXEL_STD
    if search.MODEL.WEIGHTS:  # the search starts from the weights the retraining starts from
        assert search.MODEL.WEIGHTS == cfg.MODEL.WEIGHTS
    cfg.MODEL.NATS.ARCHITECTURE = os.path.join(ROOT, "output", "no-such-run", "architecture.json")
    with pytest.raises(FileNotFoundError, match=f"run search_net.py with {search_path} first"):
        check_architecture_file(cfg)
