"""Dataset checks when a run's training data loads, before the first step.

Detectron2 reads annotations as they come: a box of negative width is mirrored by the
transforms and trained on, a missing image file ends the run only when a batch draws it, and a
dataset with no annotations fails inside the loader. Here every record is checked once, and the
first bad one is named with its dataset. Boxes of zero width or height are counted and left to
Detectron2's mapper, which drops empty boxes (``filter_empty_instances``).
"""

import logging
import math
import os

from detectron2.data import get_detection_dataset_dicts
from detectron2.structures import BoxMode

__all__ = ["DatasetError", "check_dataset_dicts", "load_checked_dataset_dicts"]

logger = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset that cannot be trained on; the message names the dataset and the record."""


def _record(i, d):
    return f"record {i} (image_id {d.get('image_id')!r}, file_name {d.get('file_name')!r})"


def _box_size(bbox, mode):
    """(width, height) of an absolute box, or None for modes without them (relative, rotated)."""
    if mode == BoxMode.XYWH_ABS:
        return bbox[2], bbox[3]
    if mode == BoxMode.XYXY_ABS:
        return bbox[2] - bbox[0], bbox[3] - bbox[1]
    return None


def check_dataset_dicts(dicts, *, where):
    """Check Detectron2 dataset dicts: not empty, every image file present, every box finite
    with non-negative width and height.

    Args:
        dicts (list[dict]): Detectron2 dataset dicts.
        where (str): what they are, for the messages, e.g. ``"DATASETS.TRAIN ('my_train',)"``.

    Returns:
        int: the number of boxes of zero width or height (Detectron2's mapper drops them).

    Raises:
        DatasetError: naming ``where`` and the first bad record (index, image id, file name,
            annotation index, box).
    """
    if not dicts:
        raise DatasetError(f"{where} has no images")
    empty = 0
    for i, d in enumerate(dicts):
        path = d.get("file_name")
        if not path:
            raise DatasetError(f"{where}: {_record(i, d)} has no 'file_name'")
        if "://" not in path and not os.path.isfile(path):
            raise DatasetError(f"{where}: {_record(i, d)}: image file {path} does not exist")
        for j, ann in enumerate(d.get("annotations", ())):
            bbox, mode = ann.get("bbox"), ann.get("bbox_mode")
            if bbox is None:
                continue  # e.g. keypoint- or segmentation-only records: Detectron2's to check
            if len(bbox) < 4 or not all(isinstance(v, (int, float)) for v in bbox):
                raise DatasetError(f"{where}: {_record(i, d)}, annotation {j}: bbox {bbox!r}")
            if not all(math.isfinite(v) for v in bbox):
                raise DatasetError(
                    f"{where}: {_record(i, d)}, annotation {j}: bbox {list(bbox)} is not finite"
                )
            size = _box_size(bbox, BoxMode(mode) if mode is not None else BoxMode.XYWH_ABS)
            if size is None:
                continue
            w, h = size
            if w < 0 or h < 0:
                raise DatasetError(
                    f"{where}: {_record(i, d)}, annotation {j}: bbox {list(bbox)} "
                    f"({BoxMode(mode).name}) has negative width or height ({w:g} x {h:g}); fix "
                    "the annotation (Detectron2 would mirror it)"
                )
            empty += w == 0 or h == 0
    return empty


def load_checked_dataset_dicts(cfg, names, *, key, proposal_files=None):
    """Detectron2's training dicts of ``names`` (``get_detection_dataset_dicts`` with the
    config's filtering), checked by :func:`check_dataset_dicts`.

    Args:
        cfg (CfgNode): reads ``DATALOADER.FILTER_EMPTY_ANNOTATIONS``, ``MODEL.KEYPOINT_ON`` and
            ``MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE``.
        names (list[str]): registered dataset names.
        key (str): the config key that named them, for the messages.
        proposal_files (list[str] or None): precomputed proposals per dataset, as
            ``get_detection_dataset_dicts`` takes them.

    Returns:
        list[dict]

    Raises:
        DatasetError: if a dataset cannot be read (the reason in one line) or fails the checks.
    """
    where = f"{key} {tuple(names)}"
    try:
        dicts = get_detection_dataset_dicts(
            list(names),
            filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
            min_keypoints=(
                cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE if cfg.MODEL.KEYPOINT_ON else 0
            ),
            proposal_files=proposal_files,
        )
    except (AssertionError, OSError, ValueError) as e:  # unreadable or empty annotation files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise DatasetError(f"{where} cannot be loaded ({type(e).__name__}: {reason})") from None
    empty = check_dataset_dicts(dicts, where=where)
    if empty:
        logger.info(f"{where}: {empty} boxes of zero width or height, dropped by the mapper")
    return dicts
