"""Config keys of NATS-D2, all under ``MODEL.NATS``; call ``add_nats_config(cfg)`` after get_cfg()."""

from detectron2.config import CfgNode as CN

__all__ = ["add_nats_config", "SETTING_C_RES34", "SETTING_C_RES5"]

# The paper's genotype setting C (Table 5): dilations (dh, dw) for res3/res4 and for res5.
SETTING_C_RES34 = [[1, 1], [2, 2], [3, 3], [1, 3], [3, 1]]
SETTING_C_RES5 = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [1, 3], [3, 1], [1, 5], [5, 1]]


def add_nats_config(cfg):
    """Add the NATS keys (search space, decoded architecture, search schedule) to ``cfg``."""
    _C = cfg
    _C.MODEL.NATS = CN()
    # Stages whose bottleneck 3x3 convs are searched (paper: res3, res4, res5).
    _C.MODEL.NATS.STAGES = ["res3", "res4", "res5"]
    # Dilation candidates (dh, dw) per stage, in the order of the architecture logits.
    _C.MODEL.NATS.CANDIDATES = CN()
    # res2 candidates, used only when "res2" is in STAGES.
    _C.MODEL.NATS.CANDIDATES.RES2 = [list(d) for d in SETTING_C_RES34]
    # res3 candidates (default: setting C, {1, 2, 3, (1,3), (3,1)}).
    _C.MODEL.NATS.CANDIDATES.RES3 = [list(d) for d in SETTING_C_RES34]
    # res4 candidates (default: setting C, {1, 2, 3, (1,3), (3,1)}).
    _C.MODEL.NATS.CANDIDATES.RES4 = [list(d) for d in SETTING_C_RES34]
    # res5 candidates (default: setting C, {1..5, (1,3), (3,1), (1,5), (5,1)}).
    _C.MODEL.NATS.CANDIDATES.RES5 = [list(d) for d in SETTING_C_RES5]
    # How a searched conv's output channels are divided into groups with their own logits.
    _C.MODEL.NATS.GROUPS = CN()
    # "count": VALUE groups per block (paper default 16; 1 = path-level search);
    # "channels": VALUE channels per group (Table 3), so the group count varies by block.
    _C.MODEL.NATS.GROUPS.MODE = "count"
    # The number of groups ("count") or of channels per group ("channels").
    _C.MODEL.NATS.GROUPS.VALUE = 16
    # Decoded network: path of the architecture.json written by search_net.py.
    _C.MODEL.NATS.ARCHITECTURE = ""
    # Architecture search (search_net.py).
    _C.MODEL.NATS.SEARCH = CN()
    # --- SEARCH keys: owned by the search issue ---
