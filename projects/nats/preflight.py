"""Checks of a run that need no data, made before Detectron2's ``default_setup`` writes
``config.yaml`` and ``log.txt`` to OUTPUT_DIR and before any dataset loads.

:func:`~projects.nats.config.check_search_config` and
:func:`~projects.nats.config.check_train_config` call these; each error names the config key (or
file) and what is accepted, in one line.
"""

import difflib
import logging
import os
import pickle
import zipfile

import torch
from detectron2.data import DatasetCatalog
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone
from detectron2.utils import comm

from .defaults import add_nats_config
from .search_space import STAGE_NAMES, is_int

__all__ = [
    "check_decode_config",
    "check_erf_config",
    "check_arch_optimizer_config",
    "check_datasets_registered",
    "check_device",
    "check_weights_readable",
    "check_backbone_builds",
    "check_search_keys",
]

logger = logging.getLogger(__name__)


def _default_cfg():
    from detectron2.config import get_cfg

    cfg = get_cfg()
    add_nats_config(cfg)
    return cfg


def check_device(cfg):
    """``MODEL.DEVICE`` can run here: a CUDA device only where CUDA is available.

    Raises:
        ValueError: naming ``MODEL.DEVICE`` and the accepted value ``cpu``.
    """
    device = str(cfg.MODEL.DEVICE)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"MODEL.DEVICE = {device!r}, but CUDA is not available on this machine; accepted "
            "here: 'cpu' (add MODEL.DEVICE cpu to the command)"
        )


def check_datasets_registered(cfg, keys):
    """Every dataset named under ``keys`` is registered in Detectron2's ``DatasetCatalog``.

    Args:
        cfg (CfgNode): the run's config.
        keys (list[str]): dotted config keys holding dataset names, e.g. ``"DATASETS.TRAIN"``.

    Raises:
        KeyError: naming the key, the unknown dataset and the closest registered names.
    """
    registered = DatasetCatalog.list()
    for key in keys:
        node = cfg
        for part in key.split("."):
            node = node[part]
        for name in node:
            if name not in registered:
                close = difflib.get_close_matches(str(name), registered, n=3, cutoff=0.5)
                hint = f"; close matches: {close}" if close else ""
                raise KeyError(
                    f"{key} names {name!r}, which is not a registered dataset{hint} (register it "
                    "with detectron2.data.datasets.register_coco_instances or "
                    "DatasetCatalog.register before the run)"
                )


def _read_weights(path):
    if path.endswith(".pkl"):
        with open(path, "rb") as f:
            return pickle.load(f, encoding="latin1")
    try:  # a zip-format .pth: mapped, not read, so a large checkpoint costs little here
        return torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception:  # legacy format, or broken: the plain load says why
        return torch.load(path, map_location="cpu", weights_only=False)


def check_weights_readable(path, *, key="MODEL.WEIGHTS"):
    """Stop before any work when a local checkpoint file cannot be read.

    ``.pkl`` files are unpickled as Detectron2 reads them, other files through ``torch.load``
    (memory-mapped where possible). URLs (``://``) and ``""`` are not checked.

    Args:
        path (str): the checkpoint.
        key (str): the config key or option that named it, for the message.

    Raises:
        ValueError: one line naming ``key``, the path and the reason (empty, truncated, not a
            checkpoint, a folder...).
    """
    if not path or "://" in path:
        return
    if os.path.isdir(path):
        raise ValueError(f"{key} = {path} is a folder, not a checkpoint file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{key} = {path} is an empty file")
    try:
        loaded = _read_weights(path)
    except Exception as e:  # any reason a file is unreadable ends the run here, in one line
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        with open(path, "rb") as f:
            zip_start = f.read(4) == b"PK\x03\x04"
        if zip_start and not zipfile.is_zipfile(path):
            reason = f"{reason}; a PyTorch zip archive without its central directory: truncated"
        raise ValueError(
            f"{key} = {path} cannot be read as a checkpoint ({type(e).__name__}: {reason}); is "
            "it truncated or not a Detectron2 .pkl/.pth?"
        ) from None
    if not isinstance(loaded, dict):
        raise ValueError(
            f"{key} = {path} holds a {type(loaded).__name__}, not a checkpoint (a dict of weights)"
        )


def check_backbone_builds(cfg):
    """Build the config's backbone on PyTorch's ``meta`` device (no memory, no weights): a
    decoded network's architecture file is fully parsed and matched against the ResNet the
    config builds, and a supernet's channel groups against its stage widths.

    Args:
        cfg (CfgNode): the run's config.

    Raises:
        the builder's own errors (``ArchitectureError``, ``ValueError``), which name the key
            or the file's field.
    """
    with torch.device("meta"):
        build_backbone(cfg, ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN)))


def check_search_keys(cfg):
    """The search's own keys that need no data: the architecture batch, the split and the
    warm-up against the search's length.

    Args:
        cfg (CfgNode): a search config.

    Raises:
        ValueError: naming the key and the accepted values.
    """
    s = cfg.MODEL.NATS.SEARCH
    world = comm.get_world_size()
    batch = s.ARCH.IMS_PER_BATCH
    if not is_int(batch) or batch < 1 or batch % world:
        raise ValueError(
            f"MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH must be a positive multiple of the number of "
            f"processes ({world}), got {batch!r}"
        )
    fraction = s.SPLIT.FRACTION
    if not s.ARCH.DATASETS and not (isinstance(fraction, (int, float)) and 0.0 < fraction < 1.0):
        raise ValueError(f"MODEL.NATS.SEARCH.SPLIT.FRACTION must be in (0, 1), got {fraction!r}")
    if s.ARCH.DATASETS and fraction != _default_cfg().MODEL.NATS.SEARCH.SPLIT.FRACTION:
        logger.warning(
            "MODEL.NATS.SEARCH.SPLIT.FRACTION is not used: MODEL.NATS.SEARCH.ARCH.DATASETS is set, "
            "so the architecture split is those datasets"
        )
    if s.EPOCHS > 0 and s.WARMUP_EPOCHS >= s.EPOCHS:
        raise ValueError(
            f"MODEL.NATS.SEARCH.WARMUP_EPOCHS = {s.WARMUP_EPOCHS} leaves no architecture step in "
            f"MODEL.NATS.SEARCH.EPOCHS = {s.EPOCHS}: it must be smaller"
        )
    if s.EPOCHS == 0 and cfg.SOLVER.MAX_ITER <= 0:
        raise ValueError(
            "MODEL.NATS.SEARCH.EPOCHS and SOLVER.MAX_ITER are both 0: set one of them to the "
            "search's length"
        )
    if s.EPOCHS == 0 and s.WARMUP_ITERS >= cfg.SOLVER.MAX_ITER:
        raise ValueError(
            f"MODEL.NATS.SEARCH.WARMUP_ITERS = {s.WARMUP_ITERS} leaves no architecture step in "
            f"SOLVER.MAX_ITER = {cfg.SOLVER.MAX_ITER}: it must be smaller"
        )


def check_arch_optimizer_config(cfg):
    """Validate ``MODEL.NATS.SEARCH.ARCH.{BASE_LR, WEIGHT_DECAY, BETAS}``; return them.

    Args:
        cfg (CfgNode): a search config.

    Returns:
        tuple: ``(lr, weight_decay, betas)`` of the logits' Adam, ``betas`` a tuple of two.

    Raises:
        ValueError: if BASE_LR is not a number > 0, WEIGHT_DECAY not a number >= 0 or BETAS not
            two numbers in [0, 1).
    """
    arch = cfg.MODEL.NATS.SEARCH.ARCH
    lr, weight_decay, betas = arch.BASE_LR, arch.WEIGHT_DECAY, tuple(arch.BETAS)
    if not isinstance(lr, (int, float)) or lr <= 0:
        raise ValueError(f"MODEL.NATS.SEARCH.ARCH.BASE_LR must be a number > 0, got {lr!r}")
    if not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(
            f"MODEL.NATS.SEARCH.ARCH.WEIGHT_DECAY must be a number >= 0, got {weight_decay!r}"
        )
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"MODEL.NATS.SEARCH.ARCH.BETAS must be two numbers in [0, 1), got {betas}")
    return lr, weight_decay, betas


def check_erf_config(cfg):
    """Validate ``MODEL.NATS.ERF.{PERIOD, FEATURES, INPUT_SIZE}`` (the ERF hook's keys).

    Whether the backbone has the named maps is checked when the hook is built, before training.

    Args:
        cfg (CfgNode): a config with the NATS keys.

    Raises:
        ValueError: naming the key and the accepted values.
    """
    erf = cfg.MODEL.NATS.ERF
    if not is_int(erf.PERIOD) or erf.PERIOD < 0:
        raise ValueError(
            f"MODEL.NATS.ERF.PERIOD must be an integer >= 0 (0 = off), got {erf.PERIOD!r}"
        )
    names = [f"res{i}" for i in range(2, 6)] + [f"p{i}" for i in range(2, 8)]
    bad = [f for f in erf.FEATURES if f not in names]
    if not isinstance(erf.FEATURES, (list, tuple)) or bad:
        raise ValueError(
            f"MODEL.NATS.ERF.FEATURES must list feature maps among {names} (or be empty for all "
            f"the backbone has), got {erf.FEATURES!r}"
        )
    size = erf.INPUT_SIZE
    if (
        not isinstance(size, (list, tuple))
        or len(size) != 2
        or not all(is_int(v) and v >= 8 for v in size)
    ):
        raise ValueError(
            f"MODEL.NATS.ERF.INPUT_SIZE must be (H, W), two integers >= 8, got {size!r}"
        )


def check_decode_config(cfg):
    """Validate ``MODEL.NATS.DECODE.{ALIGN_CHANNELS, MAX_GENOTYPES}``; return them.

    The alignment must divide the 3x3 width of every searched stage (``MODEL.NATS.STAGES``),
    which is ``MODEL.RESNETS.NUM_GROUPS x WIDTH_PER_GROUP`` in res2, doubled at each later stage.

    Args:
        cfg (CfgNode): a config with the NATS keys.

    Returns:
        tuple[int, int]: ``(align_channels, max_genotypes)``.

    Raises:
        ValueError: if ALIGN_CHANNELS is not an integer >= 1, MAX_GENOTYPES not an integer
            >= 0, or a searched stage's width is not a multiple of ALIGN_CHANNELS (naming the
            stage and its width).
    """
    decode = cfg.MODEL.NATS.DECODE
    align, cap = decode.ALIGN_CHANNELS, decode.MAX_GENOTYPES
    if not is_int(align) or align < 1:
        raise ValueError(
            f"MODEL.NATS.DECODE.ALIGN_CHANNELS must be an integer >= 1 (1 = the paper's "
            f"decoding; e.g. 16 for CPU, 8 for GPU), got {align!r}"
        )
    if not is_int(cap) or cap < 0:
        raise ValueError(
            f"MODEL.NATS.DECODE.MAX_GENOTYPES must be an integer >= 0 (0 = no cap), got {cap!r}"
        )
    resnets = cfg.MODEL.RESNETS
    res2 = resnets.NUM_GROUPS * resnets.WIDTH_PER_GROUP
    for stage in cfg.MODEL.NATS.STAGES:
        if stage not in STAGE_NAMES:
            continue  # parse_search_space names the bad stage
        width = res2 * 2 ** STAGE_NAMES.index(stage)
        if width % align:
            raise ValueError(
                f"MODEL.NATS.DECODE.ALIGN_CHANNELS = {align} does not divide the 3x3 width of "
                f"searched stage {stage} ({width} channels, from MODEL.RESNETS.NUM_GROUPS x "
                f"WIDTH_PER_GROUP); accepted: a divisor of every searched stage's width"
            )
    return align, cap
