"""MODEL.NATS search-space parsing: defaults, presets, group counts and clear errors."""

from pathlib import Path

import pytest
from detectron2.config import get_cfg

from projects.nats import add_nats_config
from projects.nats.config import SETTING_C_RES5, SETTING_C_RES34
from projects.nats.search_space import SearchSpace, num_channel_groups, parse_search_space

ROOT = Path(__file__).resolve().parents[1]


def nats_cfg():
    cfg = get_cfg()
    add_nats_config(cfg)
    return cfg


def test_default_is_setting_c_with_16_groups():
    space = parse_search_space(nats_cfg())
    assert space.stages == ("res3", "res4", "res5")
    assert space.candidates["res4"] == tuple(tuple(d) for d in SETTING_C_RES34)
    assert space.candidates["res5"] == tuple(tuple(d) for d in SETTING_C_RES5)
    assert (space.group_mode, space.group_value) == ("count", 16)
    assert space.num_groups(256) == 16


@pytest.mark.parametrize(
    "mode,value,channels,conv_groups,expected",
    [
        ("count", 16, 512, 1, 16),
        ("count", 1, 64, 1, 1),
        ("channels", 32, 512, 1, 16),
        ("channels", 1, 128, 1, 128),
        ("channels", 32, 1024, 32, 32),  # X101-32x4d res5: one conv group per channel group
        ("count", 16, 256, 32, 16),  # X101-32x4d res3: 16 channels = 2 conv groups of 8
    ],
)
def test_num_channel_groups(mode, value, channels, conv_groups, expected):
    assert num_channel_groups(channels, mode=mode, value=value, conv_groups=conv_groups) == expected


@pytest.mark.parametrize(
    "mode,value,channels,conv_groups,message",
    [
        ("count", 3, 64, 1, "not divisible into 3 equal groups"),
        ("channels", 24, 64, 1, "not a multiple of 24 channels per group"),
        ("channels", 16, 1024, 32, r"cuts through its conv groups of 32 channels"),
        ("count", 64, 1024, 32, r"multiple of 32 .*X101-32x4d"),
    ],
)
def test_num_channel_groups_refuses(mode, value, channels, conv_groups, message):
    with pytest.raises(ValueError, match=message):
        num_channel_groups(channels, mode=mode, value=value, conv_groups=conv_groups, where="b")


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("STAGES", ["res3", "res6"], r"MODEL.NATS.STAGES .*'res2', 'res3', 'res4', 'res5'"),
        ("STAGES", [], "MODEL.NATS.STAGES"),
        ("STAGES", ["res3", "res3"], "distinct"),
        ("CANDIDATES.RES4", [[1, 1], [0, 2]], r"MODEL.NATS.CANDIDATES.RES4\[1\] .*positive"),
        ("CANDIDATES.RES4", [[1, 1], [1, 1]], r"MODEL.NATS.CANDIDATES.RES4 lists a dilation twice"),
        ("CANDIDATES.RES5", [], "MODEL.NATS.CANDIDATES.RES5 must be a non-empty list"),
        ("CANDIDATES.RES3", [[1, 2, 3]], r"RES3\[0\] must be a \[dh, dw\] pair"),
        ("GROUPS.MODE", "paths", r"MODEL.NATS.GROUPS.MODE must be one of \['count', 'channels'\]"),
        ("GROUPS.VALUE", 0, "MODEL.NATS.GROUPS.VALUE must be a positive integer"),
    ],
)
def test_bad_config_names_key_and_accepted_values(key, value, message):
    cfg = nats_cfg()
    node = cfg.MODEL.NATS
    *parents, leaf = key.split(".")
    for p in parents:
        node = node[p]
    node[leaf] = value
    with pytest.raises(ValueError, match=message):
        parse_search_space(cfg)


@pytest.mark.parametrize(
    "preset,res3,res5",
    [
        ("G16_genoA", [(1, 1), (3, 3)], [(1, 1), (3, 3), (5, 5)]),
        ("G16_genoB", [(1, 1), (2, 2), (3, 3)], [(d, d) for d in range(1, 6)]),
        ("G16", [tuple(d) for d in SETTING_C_RES34], [tuple(d) for d in SETTING_C_RES5]),
    ],
)
def test_genotype_presets_table5(preset, res3, res5):
    cfg = nats_cfg()
    cfg.merge_from_file(
        str(ROOT / f"configs/NATS-Search/faster_rcnn_R_50_FPN_nats_search_{preset}.yaml")
    )
    space = parse_search_space(cfg)
    assert list(space.candidates["res3"]) == res3 == list(space.candidates["res4"])
    assert list(space.candidates["res5"]) == res5
    assert cfg.MODEL.BACKBONE.NAME == "build_nats_supernet_resnet_fpn_backbone"


def test_channels_mode_overrides_base_cleanly():
    cfg = nats_cfg()
    cfg.merge_from_list(["MODEL.NATS.GROUPS.MODE", "channels", "MODEL.NATS.GROUPS.VALUE", 32])
    space = parse_search_space(cfg)
    assert [space.num_groups(c) for c in (128, 256, 512)] == [4, 8, 16]


def test_search_space_is_keyword_only_and_frozen():
    space = SearchSpace(
        stages=("res4",), candidates={"res4": ((1, 1),)}, group_mode="count", group_value=4
    )
    assert space.num_groups(64) == 4
    with pytest.raises(TypeError):
        SearchSpace(("res4",), {"res4": ((1, 1),)}, "count", 4)
    with pytest.raises(AttributeError):  # frozen (FrozenInstanceError)
        space.group_value = 8
