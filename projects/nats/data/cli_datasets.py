"""``--dataset NAME=COCO_JSON:IMAGE_DIR`` on the command-line tools: a user's own COCO-format data,
registered (Detectron2's ``register_coco_instances``) before any config check, in every process."""

import argparse
import os

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import register_coco_instances

__all__ = ["add_dataset_argument", "parse_dataset", "register_datasets"]

FORM = "NAME=COCO_JSON:IMAGE_DIR"


def parse_dataset(text):
    """``NAME=COCO_JSON:IMAGE_DIR`` -> ``(name, json_file, image_dir)``, both paths checked.

    Raises:
        argparse.ArgumentTypeError: naming ``--dataset``, the expected form and what is wrong.
    """
    name, eq, rest = text.partition("=")
    json_file, colon, image_dir = rest.partition(":")
    if not eq or not colon or not name or not json_file or not image_dir:
        raise argparse.ArgumentTypeError(f"--dataset {text!r}: expected {FORM}")
    if not os.path.isfile(json_file):
        raise argparse.ArgumentTypeError(
            f"--dataset {text!r}: the COCO json {json_file} is not a file (expected {FORM})"
        )
    if not os.path.isdir(image_dir):
        raise argparse.ArgumentTypeError(
            f"--dataset {text!r}: the image folder {image_dir} is not a folder (expected {FORM})"
        )
    return name, os.path.abspath(json_file), os.path.abspath(image_dir)


def add_dataset_argument(parser):
    """Add the repeatable ``--dataset`` option to ``parser`` (e.g. Detectron2's
    ``default_argument_parser()``) and return the parser."""
    parser.add_argument(
        "--dataset",
        type=parse_dataset,
        action="append",
        default=[],
        metavar=FORM,
        help="register a COCO-format dataset under NAME (repeatable), usable in DATASETS.TRAIN, "
        "DATASETS.TEST and MODEL.NATS.SEARCH.ARCH.DATASETS",
    )
    return parser


def register_datasets(datasets):
    """Register each ``(name, json_file, image_dir)``; the same files again are a no-op.

    Args:
        datasets (list[tuple[str, str, str]]): as :func:`parse_dataset` returns them.

    Raises:
        ValueError: if ``name`` is registered already with other files (naming both).
    """
    for name, json_file, image_dir in datasets:
        if name in DatasetCatalog.list():
            meta = MetadataCatalog.get(name)
            known = (meta.get("json_file"), meta.get("image_root"))
            if known == (json_file, image_dir):
                continue
            raise ValueError(
                f"--dataset {name}={json_file}:{image_dir}: {name} is registered already with "
                f"{known[0]}:{known[1]}; choose another NAME"
            )
        register_coco_instances(name, {}, json_file, image_dir)
