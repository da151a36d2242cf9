"""From a search to its retraining config: the network a search ran on, recorded in its
``architecture.json`` (``meta["network"]``), and a retraining config built to match it.

:data:`NETWORK_KEYS` are the keys that fix the searched blocks' widths and what the decoded network
is trained and tested on (trunk, FPN, heads' class counts, input sizes and pixel statistics).
:func:`retrain_config` starts from a base config (by default the search's own ``config.yaml``,
which Detectron2's ``default_setup`` wrote), sets these keys to the recorded values, the decoded
backbone and ``MODEL.NATS.ARCHITECTURE`` (``tools/make_retrain_config.py``).
"""

import os

from detectron2.config import CfgNode, get_cfg

from ..defaults import add_nats_config
from .file_format import ArchitectureError, load_architecture

__all__ = ["NETWORK_KEYS", "network_record", "retrain_config", "DECODED_OF_SUPERNET"]

NETWORK_KEYS = (
    "MODEL.META_ARCHITECTURE",
    "MODEL.MASK_ON",
    "MODEL.RESNETS.DEPTH",
    "MODEL.RESNETS.NUM_GROUPS",
    "MODEL.RESNETS.WIDTH_PER_GROUP",
    "MODEL.RESNETS.STEM_OUT_CHANNELS",
    "MODEL.RESNETS.RES2_OUT_CHANNELS",
    "MODEL.RESNETS.STRIDE_IN_1X1",
    "MODEL.RESNETS.RES5_DILATION",
    "MODEL.RESNETS.NORM",
    "MODEL.RESNETS.OUT_FEATURES",
    "MODEL.BACKBONE.FREEZE_AT",
    "MODEL.FPN.IN_FEATURES",
    "MODEL.FPN.OUT_CHANNELS",
    "MODEL.FPN.NORM",
    "MODEL.FPN.FUSE_TYPE",
    "MODEL.ANCHOR_GENERATOR.SIZES",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "MODEL.ROI_BOX_HEAD.FC_DIM",
    "MODEL.RETINANET.NUM_CLASSES",
    "MODEL.PIXEL_MEAN",
    "MODEL.PIXEL_STD",
    "MODEL.NATS.STAGES",
    "INPUT.FORMAT",
    "INPUT.MIN_SIZE_TRAIN",
    "INPUT.MAX_SIZE_TRAIN",
    "INPUT.MIN_SIZE_TEST",
    "INPUT.MAX_SIZE_TEST",
)
DECODED_OF_SUPERNET = {
    "build_nats_supernet_resnet_backbone": "build_nats_resnet_backbone",
    "build_nats_supernet_resnet_fpn_backbone": "build_nats_resnet_fpn_backbone",
    "build_nats_supernet_retinanet_resnet_fpn_backbone": "build_nats_retinanet_resnet_fpn_backbone",
}


def _get(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _set(cfg, key, value):
    *parents, last = key.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    node[last] = list(value) if isinstance(value, tuple) else value


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def network_record(cfg):
    """``{key: value}`` of :data:`NETWORK_KEYS` in ``cfg`` (JSON-serializable), plus the search's
    backbone builder and datasets (``MODEL.BACKBONE.NAME``, ``DATASETS.TRAIN``,
    ``MODEL.NATS.SEARCH.ARCH.DATASETS``)."""
    keys = NETWORK_KEYS + (
        "MODEL.BACKBONE.NAME",
        "DATASETS.TRAIN",
        "MODEL.NATS.SEARCH.ARCH.DATASETS",
    )
    return {k: _plain(_get(cfg, k)) for k in keys}


def retrain_config(search_dir, *, base=None):
    """The retraining config of the decoded network a search found.

    Args:
        search_dir (str): a search's ``OUTPUT_DIR`` (``architecture.json``; ``config.yaml``).
        base (str or None): the config the retraining starts from (its schedule, datasets of
            evaluation, ...); None: the search's ``config.yaml``.

    Returns:
        CfgNode: the network keys as recorded, ``MODEL.BACKBONE.NAME`` the decoded builder of the
        searched supernet, ``MODEL.NATS.ARCHITECTURE`` the file's absolute path, ``DATASETS.TRAIN``
        both search splits (the paper retrains on both).

    Raises:
        FileNotFoundError: naming the missing ``architecture.json``, ``config.yaml`` or base.
        ArchitectureError: if the file is malformed or its search did not finish.
        ValueError: without ``base``, if the search's config has no schedule in iterations.
    """
    arch_path = os.path.abspath(os.path.join(search_dir, "architecture.json"))
    search_yaml = os.path.join(search_dir, "config.yaml")
    if not os.path.isfile(arch_path):
        raise FileNotFoundError(
            f"--search-dir {search_dir}: no architecture.json (run search_net.py with "
            f"OUTPUT_DIR {search_dir} first)"
        )
    arch = load_architecture(arch_path)
    if arch.meta.get("final") is False:
        raise ArchitectureError(
            f"{arch_path} is from an unfinished search (meta.final false, iteration "
            f"{arch.meta.get('iteration')} of {arch.meta.get('max_iter')}): resume it first "
            "(search_net.py --resume)"
        )
    record = arch.meta.get("network")
    if record is None:  # written before the network was recorded: the search's config.yaml
        if not os.path.isfile(search_yaml):
            raise FileNotFoundError(
                f"--search-dir {search_dir}: architecture.json records no network and there is no "
                "config.yaml beside it"
            )
        searched = get_cfg()
        add_nats_config(searched)
        searched.merge_from_file(search_yaml)
        record = network_record(searched)
    if base is not None and not os.path.isfile(base):
        raise FileNotFoundError(f"--base {base} does not exist")
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(base or search_yaml)
    if base is None and cfg.SOLVER.MAX_ITER <= 0:
        raise ValueError(
            f"{search_yaml} schedules the search in epochs (SOLVER.MAX_ITER 0): give --base, a "
            "retraining config with its schedule (e.g. configs/NATS/... or "
            "configs/Demo/faster_rcnn_R_50_FPN_nats_tiny.yaml)"
        )
    for key in NETWORK_KEYS:
        if key in record:
            _set(cfg, key, record[key])
    supernet = record.get("MODEL.BACKBONE.NAME", cfg.MODEL.BACKBONE.NAME)
    cfg.MODEL.BACKBONE.NAME = DECODED_OF_SUPERNET.get(supernet, supernet)
    if cfg.MODEL.BACKBONE.NAME not in DECODED_OF_SUPERNET.values():
        raise ArchitectureError(
            f"{arch_path}: searched with MODEL.BACKBONE.NAME {supernet}, not one of the supernets "
            f"{sorted(DECODED_OF_SUPERNET)}"
        )
    train = list(record.get("DATASETS.TRAIN", ())) + list(
        record.get("MODEL.NATS.SEARCH.ARCH.DATASETS", ())
    )
    if train:
        cfg.DATASETS.TRAIN = list(dict.fromkeys(train))
    cfg.MODEL.NATS.ARCHITECTURE = arch_path
    cfg.MODEL.NATS.ARCHITECTURE_SEARCH_CONFIG = arch.meta.get("search_config", search_yaml)
    cfg.MODEL.WEIGHTS = arch.meta.get("weights", cfg.MODEL.WEIGHTS)
    return CfgNode(cfg)
