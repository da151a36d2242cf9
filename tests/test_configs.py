"""Every yaml under configs/ goes through the setup() path: get_cfg, add_nats_config, merge."""

from pathlib import Path

import pytest
from detectron2.config import get_cfg

from projects.nats import add_nats_config
from projects.nats.search_space import parse_search_space

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))


def test_configs_found():
    assert any(p.name == "Base-RCNN-FPN.yaml" for p in CONFIGS)
    assert any(p.name == "faster_rcnn_R_50_FPN_nats_search_G16.yaml" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=[str(p.relative_to(p.parents[1])) for p in CONFIGS])
def test_config_merges(path):
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(str(path))
    if "nats_supernet" in cfg.MODEL.BACKBONE.NAME:
        parse_search_space(cfg)  # the search space of a supernet config is valid


def test_g16_search_config():
    path = next(p for p in CONFIGS if p.name == "faster_rcnn_R_50_FPN_nats_search_G16.yaml")
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(str(path))
    space = parse_search_space(cfg)
    assert cfg.MODEL.BACKBONE.NAME == "build_nats_supernet_resnet_fpn_backbone"
    assert (space.group_mode, space.group_value) == ("count", 16)
    assert space.stages == ("res3", "res4", "res5") and len(space.candidates["res5"]) == 9
    assert [space.num_groups(64 * 2**i) for i in range(1, 5)] == [16] * 4


def _merged(relative):
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(str(CONFIG_DIR / relative))
    return cfg


@pytest.mark.parametrize(
    "search,retrain",
    [
        ("faster_rcnn_R_50_FPN_nats_search_G16", "faster_rcnn_R_50_FPN_nats_G16_1x"),
        ("faster_rcnn_R_101_FPN_nats_search_C32", "faster_rcnn_R_101_FPN_nats_C32_1x"),
        ("faster_rcnn_X_101_32x4d_FPN_nats_search_C32", "faster_rcnn_X_101_32x4d_FPN_nats_C32_1x"),
    ],
)
def test_search_and_retraining_share_the_model(search, retrain):
    """One model base: a search and the retraining of what it finds differ only in the backbone
    builder, the search keys and the data/schedule, never in the model or the input sizes."""
    a, b = _merged(f"NATS-Search/{search}.yaml"), _merged(f"NATS/{retrain}.yaml")
    for cfg in (a, b):
        cfg.MODEL.BACKBONE.NAME = cfg.MODEL.NATS = None
    assert a.MODEL == b.MODEL
    assert a.INPUT == b.INPUT
