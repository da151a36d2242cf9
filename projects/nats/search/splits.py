"""The two data splits of a search: weight steps and architecture steps (paper section 3.2).

Either the architecture split has its own datasets (the paper: ``coco_2014_train`` for weights,
``coco_2014_valminusminival`` for the architecture), or ``DATASETS.TRAIN`` is split by a hash of
each image id, so the split is the same on every run, machine and rank.
"""

import hashlib
import logging

from ..data.checks import load_checked_dataset_dicts

__all__ = ["split_by_image_id", "load_search_splits"]

logger = logging.getLogger(__name__)


def _hash_key(image_id, seed):
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def split_by_image_id(dataset_dicts, fraction, seed):
    """Return (weight_dicts, arch_dicts): the ``fraction`` of images with the smallest hash of
    (seed, image_id) go to the architecture split; both keep the input order.

    Args:
        dataset_dicts (list[dict]): Detectron2 dataset dicts, each with an ``image_id``.
        fraction (float): the architecture split's share of the images, in (0, 1)
            (``MODEL.NATS.SEARCH.SPLIT.FRACTION``), rounded to a number of images.
        seed (int): the hash's seed (``MODEL.NATS.SEARCH.SPLIT.SEED``).

    Returns:
        tuple[list[dict], list[dict]]: ``(weight_dicts, arch_dicts)``.

    Raises:
        ValueError: if ``fraction`` is not in (0, 1), a record has no ``image_id``, or a split
            would be empty.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"MODEL.NATS.SEARCH.SPLIT.FRACTION must be in (0, 1), got {fraction}")
    missing = [i for i, d in enumerate(dataset_dicts) if "image_id" not in d]
    if missing:
        raise ValueError(
            f"splitting DATASETS.TRAIN by image id needs 'image_id' in every record; record "
            f"{missing[0]} has none (set MODEL.NATS.SEARCH.ARCH.DATASETS instead)"
        )
    num_arch = round(fraction * len(dataset_dicts))
    if not 0 < num_arch < len(dataset_dicts):
        raise ValueError(
            f"MODEL.NATS.SEARCH.SPLIT.FRACTION={fraction} of {len(dataset_dicts)} images leaves "
            "one split empty"
        )
    order = sorted(
        range(len(dataset_dicts)),
        key=lambda i: (
            _hash_key(dataset_dicts[i]["image_id"], seed),
            str(dataset_dicts[i]["image_id"]),
        ),
    )
    arch_idx = set(order[:num_arch])
    weight = [d for i, d in enumerate(dataset_dicts) if i not in arch_idx]
    arch = [d for i, d in enumerate(dataset_dicts) if i in arch_idx]
    return weight, arch


def load_search_splits(cfg):
    """Dataset dicts (after Detectron2's filtering) of the weight and architecture splits.

    With ``MODEL.NATS.SEARCH.ARCH.DATASETS`` set, the weight split is ``DATASETS.TRAIN`` and the
    architecture split those datasets; else ``DATASETS.TRAIN`` is divided by
    :func:`split_by_image_id` with ``MODEL.NATS.SEARCH.SPLIT.{FRACTION, SEED}``.

    Args:
        cfg (CfgNode): a search config; the filtering reads
            ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``, ``MODEL.KEYPOINT_ON`` and
            ``MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE``.

    Returns:
        tuple[list[dict], list[dict]]: ``(weight_dicts, arch_dicts)``.

    Raises:
        ValueError: if ``MODEL.LOAD_PROPOSALS`` is on, ``DATASETS.TRAIN`` is empty, the two
            dataset lists share a dataset, or :func:`split_by_image_id` refuses.
        DatasetError: if a dataset cannot be read or fails
            :func:`~projects.nats.data.checks.check_dataset_dicts`.
    """
    train_names, arch_names = cfg.DATASETS.TRAIN, cfg.MODEL.NATS.SEARCH.ARCH.DATASETS
    fraction, split_seed = cfg.MODEL.NATS.SEARCH.SPLIT.FRACTION, cfg.MODEL.NATS.SEARCH.SPLIT.SEED
    if cfg.MODEL.LOAD_PROPOSALS:
        raise ValueError("MODEL.LOAD_PROPOSALS=True is not supported by the search")
    if not train_names:
        raise ValueError("DATASETS.TRAIN is empty: the search needs a weight split")
    if arch_names:
        overlap = set(train_names) & set(arch_names)
        if overlap:
            raise ValueError(
                f"MODEL.NATS.SEARCH.ARCH.DATASETS shares {sorted(overlap)} with DATASETS.TRAIN; "
                "the two splits must be disjoint (or leave ARCH.DATASETS empty to split "
                "DATASETS.TRAIN by MODEL.NATS.SEARCH.SPLIT)"
            )
        weight = load_checked_dataset_dicts(cfg, train_names, key="DATASETS.TRAIN")
        arch_key = "MODEL.NATS.SEARCH.ARCH.DATASETS"
        arch = load_checked_dataset_dicts(cfg, arch_names, key=arch_key)
    else:
        train = load_checked_dataset_dicts(cfg, train_names, key="DATASETS.TRAIN")
        weight, arch = split_by_image_id(train, fraction, split_seed)
    logger.info(f"Search splits: {len(weight)} weight images, {len(arch)} architecture images")
    return weight, arch
