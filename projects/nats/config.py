"""Config of NATS-D2: ``add_nats_config(cfg)`` adds the keys (all under ``MODEL.NATS``) after
``get_cfg()``, and the checks below refuse a bad config before any data, model or output exists.

Every check names the key and the accepted values. ``search_net.py`` runs
:func:`check_search_config` and ``train_net.py`` :func:`check_train_config` before Detectron2's
``default_setup`` writes to ``OUTPUT_DIR``; the builders and trainers run them again for code that
builds them directly.
"""

import os

from detectron2.utils.file_io import PathManager

from .architecture.file_format import ArchitectureError
from .defaults import (
    DECODED_BACKBONES,
    SETTING_C_RES5,
    SETTING_C_RES34,
    SUPERNET_BACKBONES,
    add_nats_config,
)
from .preflight import (
    check_arch_optimizer_config,
    check_backbone_builds,
    check_datasets_registered,
    check_decode_config,
    check_erf_config,
    check_search_keys,
    check_weights_readable,
)
from .search_space import check_search_mode_config, parse_search_space

__all__ = [
    "add_nats_config",
    "SETTING_C_RES34",
    "SETTING_C_RES5",
    "SUPERNET_BACKBONES",
    "DECODED_BACKBONES",
    "is_supernet_config",
    "check_search_config",
    "check_train_config",
    "check_weights_file",
    "check_architecture_file",
]


def is_supernet_config(cfg):
    """Whether ``cfg`` builds a search supernet (``MODEL.BACKBONE.NAME``).

    Args:
        cfg (CfgNode): a Detectron2 config.

    Returns:
        bool: True when ``MODEL.BACKBONE.NAME`` is one of ``SUPERNET_BACKBONES``.
    """
    return cfg.MODEL.BACKBONE.NAME in SUPERNET_BACKBONES


def check_search_config(cfg, *, resume=True):
    """The checks of a search that need no data: run before the datasets load, so a bad key stops
    at once.

    Checks that ``MODEL.BACKBONE.NAME`` is a supernet backbone, the search space
    (:func:`~projects.nats.search_space.parse_search_space`), the decoding options
    (:func:`check_decode_config`), the architecture optimizer's keys
    (:func:`check_arch_optimizer_config`), the split, batch and warm-up keys
    (:func:`~projects.nats.preflight.check_search_keys`), that the datasets are registered, that
    the supernet builds (its channel groups divide the stage widths) and that ``MODEL.WEIGHTS``
    exists and reads (:func:`check_weights_file`).

    Args:
        cfg (CfgNode): a search config, with :func:`add_nats_config`'s keys.
        resume (bool): whether the run resumes: a ``last_checkpoint`` in OUTPUT_DIR, if any,
            then replaces MODEL.WEIGHTS, which is not checked.

    Raises:
        ValueError: if MODEL.BACKBONE.NAME is not one of ``SUPERNET_BACKBONES``, a key has a
            value that is not accepted, or MODEL.WEIGHTS cannot be read.
        KeyError: if a dataset is not registered.
        FileNotFoundError: if MODEL.WEIGHTS names a local file that does not exist.
    """
    if not is_supernet_config(cfg):
        raise ValueError(
            f"MODEL.BACKBONE.NAME = {cfg.MODEL.BACKBONE.NAME}: a search needs a NATS supernet "
            f"backbone, one of {list(SUPERNET_BACKBONES)}"
        )
    parse_search_space(cfg)
    check_search_mode_config(cfg)
    check_decode_config(cfg)
    check_arch_optimizer_config(cfg)
    check_search_keys(cfg)
    check_erf_config(cfg)
    check_backbone_builds(cfg)
    check_weights_file(cfg, resume=resume)
    check_datasets_registered(cfg, ["DATASETS.TRAIN", "MODEL.NATS.SEARCH.ARCH.DATASETS"])


def check_train_config(cfg, *, resume=False, eval_only=False):
    """The checks of a retraining or evaluation (``train_net.py``) that need no data: no
    supernet, the architecture file of a decoded network exists, parses and fits the ResNet the
    config builds, the datasets are registered and a local ``MODEL.WEIGHTS`` exists and reads.

    Args:
        cfg (CfgNode): a retraining or evaluation config, with :func:`add_nats_config`'s keys.
        resume (bool): whether the run resumes: a ``last_checkpoint`` in OUTPUT_DIR, if any,
            then replaces MODEL.WEIGHTS, which is not checked.
        eval_only (bool): an evaluation (``--eval-only``): DATASETS.TRAIN is not checked.

    Raises:
        ValueError: if MODEL.BACKBONE.NAME is a search supernet or MODEL.WEIGHTS cannot be read.
        KeyError: if a dataset is not registered.
        ArchitectureError: if a decoded backbone's MODEL.NATS.ARCHITECTURE is empty, malformed
            or does not fit the config's ResNet.
        FileNotFoundError: if a decoded backbone's MODEL.NATS.ARCHITECTURE, or a local
            MODEL.WEIGHTS, does not exist.
    """
    if is_supernet_config(cfg):
        raise ValueError(
            f"MODEL.BACKBONE.NAME = {cfg.MODEL.BACKBONE.NAME} is a search supernet: search it with "
            f"search_net.py, then retrain the decoded network (one of {list(DECODED_BACKBONES)})"
        )
    if cfg.MODEL.BACKBONE.NAME in DECODED_BACKBONES:
        check_architecture_file(cfg)
    check_erf_config(cfg)
    check_backbone_builds(cfg)
    check_weights_file(cfg, resume=resume)
    check_datasets_registered(
        cfg, ["DATASETS.TEST"] if eval_only else ["DATASETS.TRAIN", "DATASETS.TEST"]
    )


def check_weights_file(cfg, *, resume=False):
    """Stop before any work when ``MODEL.WEIGHTS`` names a local file that does not exist or
    cannot be read (:func:`~projects.nats.preflight.check_weights_readable`).

    URLs such as ``detectron2://...`` are fetched later by the checkpointer, and an empty
    MODEL.WEIGHTS means random initialisation: neither is checked. With ``resume`` and a
    ``last_checkpoint`` in OUTPUT_DIR, that checkpoint is loaded instead: no check.

    Args:
        cfg (CfgNode): reads ``MODEL.WEIGHTS`` and ``OUTPUT_DIR``.
        resume (bool): whether the run resumes from OUTPUT_DIR's ``last_checkpoint``, if any.

    Returns:
        str: ``MODEL.WEIGHTS``.

    Raises:
        FileNotFoundError: if MODEL.WEIGHTS is a local path (no ``://``) that does not exist.
        ValueError: if it is a folder, empty or cannot be read as a checkpoint.
    """
    path = cfg.MODEL.WEIGHTS
    if resume and os.path.exists(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint")):
        return path
    if path and "://" not in path and not os.path.exists(path):
        raise FileNotFoundError(
            f"MODEL.WEIGHTS = {path} does not exist: give an ImageNet checkpoint (Detectron2 "
            "'.pkl', or a torchvision ResNet/ResNeXt '.pth'), a checkpoint of this project, or "
            "'' to start from random initialisation"
        )
    check_weights_readable(path)
    return path


def check_architecture_file(cfg):
    """Stop at once, naming the search to run, when ``MODEL.NATS.ARCHITECTURE`` is missing.

    Only the file's existence is checked; :func:`~projects.nats.load_architecture` validates it.

    Args:
        cfg (CfgNode): reads ``MODEL.NATS.ARCHITECTURE`` and, for the error message,
            ``MODEL.NATS.ARCHITECTURE_SEARCH_CONFIG`` (the search config that writes the file).

    Returns:
        str: the path of the architecture file.

    Raises:
        ArchitectureError: if MODEL.NATS.ARCHITECTURE is empty.
        FileNotFoundError: if it names a file that does not exist (local or ``PathManager`` URL).
    """
    path = cfg.MODEL.NATS.ARCHITECTURE
    search_cfg = cfg.MODEL.NATS.ARCHITECTURE_SEARCH_CONFIG or "the matching search config"
    if not path:
        raise ArchitectureError(
            "MODEL.NATS.ARCHITECTURE is empty: set it to the architecture.json of a search run "
            f"(run search_net.py with {search_cfg} first)"
        )
    if not PathManager.exists(path):
        raise FileNotFoundError(
            f"MODEL.NATS.ARCHITECTURE = {path} does not exist: run search_net.py with "
            f"{search_cfg} first (the paper's searched architectures are not published)"
        )
    return path
