"""NATS shapes: a deterministic, built-in COCO-format detection dataset for tests and demos.

Images of filled polygons of several classes on textured backgrounds, with objects from ~8 px to
most of the image (scale variety is what dilation search is about). Three splits follow the
paper's protocol: ``nats_shapes_train`` (weight steps), ``nats_shapes_arch`` (architecture
steps) and ``nats_shapes_val`` (evaluation; never trained on, never used to choose a setting);
``nats_shapes_dev`` (its own seed) is where settings are chosen. The test bed's two variants with
planted answers (``variants.py``: ``large``, ``small``) have the same four splits each,
``nats_large_{train,arch,dev,val}`` (192x192 images) and ``nats_small_{train,arch,dev,val}``
(128x128). A split is generated on first use into ``$NATS_DATA_CACHE`` (default
``~/.cache/nats_d2``), atomically, and reused afterwards.
"""

import json
import logging
import math
import os
import shutil
import tempfile

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data.datasets import load_coco_json
from PIL import Image, ImageDraw

from .ring_designs import EMPTY_IMAGES
from .variants import (
    DESIGN_IMAGE_SIZE,
    ON_TRIAL,
    TRIED,
    VARIANTS,
    design_of,
    make_variant_image,
)

__all__ = [
    "SHAPE_CLASSES",
    "BUILTIN_SPLITS",
    "VARIANT_SPLITS",
    "VARIANT_IMAGE_SIZE",
    "variant_config_opts",
    "generate_shapes",
    "register_nats_shapes",
    "shapes_cache_dir",
    "ensure_shapes_generated",
]

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
SHAPE_CLASSES = ("box", "disc", "triangle", "cross")
# name -> (split seed, number of images); the training sizes keep a CPU search + retrain in
# minutes; val holds ~1500 objects so that AP differences of a point can be resolved
# (benchmarks/README.md).
BUILTIN_SPLITS = {
    "nats_shapes_train": (1, 120),
    "nats_shapes_arch": (2, 60),
    "nats_shapes_val": (3, 300),
    "nats_shapes_dev": (4, 150),
}
DEFAULT_IMAGE_SIZE = (256, 320)  # (height, width)
# The test bed's variants: name -> (variant, split seed, number of images); seeds of their own.
# large's dev is larger (as the designs' on trial): its images hold one token, an object or not.
VARIANT_SPLITS = {
    f"nats_{variant}_{split}": (variant, seed, num)
    for variant, base, dev in (("large", 20, 400), ("small", 30, 200))
    for split, seed, num in (("train", 1, 600), ("arch", 2, 200), ("val", 3, 300), ("dev", 4, dev))
    for seed in (base + seed,)
}
# Designs on trial (benchmarks/README.md), with splits of their own, seeds 41-44, 51-54, ...;
# dev is larger, since their images hold one or two objects each.
TRIAL_SPLITS = {
    f"nats_{design}_{split}": (design, 40 + 10 * i + seed, num)
    for i, design in enumerate(ON_TRIAL)
    for split, seed, num in (("train", 1, 600), ("arch", 2, 200), ("val", 3, 300), ("dev", 4, 400))
}
VARIANT_IMAGE_SIZE = (128, 128)
MIN_OBJECT_SIZE = 8


def variant_config_opts(variant):
    """Config overrides that a test-bed config (written for ``VARIANT_IMAGE_SIZE`` images, empty
    images filtered as Detectron2 does by default) needs on ``variant``'s images.

    Args:
        variant (str): a test-bed variant or a design's name (``variants.VARIANTS``, ``TRIED``).

    Returns:
        list[str]: ``INPUT.{MIN,MAX}_SIZE_{TRAIN,TEST}`` where the design's images are not
        ``VARIANT_IMAGE_SIZE``; ``DATALOADER.FILTER_EMPTY_ANNOTATIONS False`` where its images may
        hold no object (``ring_designs.EMPTY_IMAGES``).
    """
    design = design_of(variant)
    opts = []
    side = DESIGN_IMAGE_SIZE.get(design, VARIANT_IMAGE_SIZE)
    if tuple(side) != VARIANT_IMAGE_SIZE:
        small, large = str(min(side)), str(max(side))
        opts += ["INPUT.MIN_SIZE_TRAIN", f"({small},)", "INPUT.MIN_SIZE_TEST", small]
        opts += ["INPUT.MAX_SIZE_TRAIN", large, "INPUT.MAX_SIZE_TEST", large]
    if design in EMPTY_IMAGES:
        opts += ["DATALOADER.FILTER_EMPTY_ANNOTATIONS", "False"]
    return opts


def shapes_cache_dir():
    """Root of the generated datasets: ``$NATS_DATA_CACHE`` or ``~/.cache/nats_d2``."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "nats_d2")
    return os.environ.get("NATS_DATA_CACHE", default)


def _polygon(kind, cx, cy, size, angle, rng):
    """Vertices (N, 2) of one object of class ``kind``, about ``size`` pixels across."""
    r = size / 2.0
    if kind == "box":
        aspect = rng.uniform(0.5, 1.0)
        pts = [(-r, -r * aspect), (r, -r * aspect), (r, r * aspect), (-r, r * aspect)]
    elif kind == "disc":
        aspect = rng.uniform(0.6, 1.0)
        t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        pts = np.stack([r * np.cos(t), r * aspect * np.sin(t)], axis=1)
    elif kind == "triangle":
        t = np.array([90, 210, 330]) * math.pi / 180
        pts = np.stack([r * np.cos(t), -r * np.sin(t)], axis=1)
    else:  # cross
        a = r / 3.0
        pts = [(-a, -r), (a, -r), (a, -a), (r, -a), (r, a), (a, a)]
        pts += [(a, r), (-a, r), (-a, a), (-r, a), (-r, -a), (-a, -a)]
    pts = np.asarray(pts, dtype=np.float64)
    c, s = math.cos(angle), math.sin(angle)
    rot = pts @ np.array([[c, s], [-s, c]])
    return rot + np.array([cx, cy])


def _polygon_area(xy):
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _background(rng, height, width):
    """A smooth two-colour gradient with noise, so that objects are not on a flat field."""
    c0, c1 = rng.uniform(40, 215, size=(2, 3))
    t = np.linspace(0, 1, width)[None, :, None] * rng.uniform(0.3, 1.0)
    t = t + np.linspace(0, 1, height)[:, None, None] * rng.uniform(0.0, 0.7)
    img = c0 + (c1 - c0) * np.clip(t, 0, 1) + rng.normal(0, 8, size=(height, width, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _make_image(rng, height, width, image_id, first_ann_id):
    image = _background(rng, height, width)
    draw = ImageDraw.Draw(image)
    max_size = 0.85 * min(height, width)
    # log-uniform sizes cover small and huge objects alike; large ones are drawn first
    sizes = np.exp(rng.uniform(math.log(MIN_OBJECT_SIZE), math.log(max_size), rng.randint(2, 8)))
    anns, boxes = [], []
    for size in sorted(sizes, reverse=True):
        kind_id = int(rng.randint(len(SHAPE_CLASSES)))
        for _ in range(20):  # rejection sampling: similar-sized objects may not pile up
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            xy = _polygon(SHAPE_CLASSES[kind_id], cx, cy, size, rng.uniform(0, math.pi), rng)
            xy = np.round(xy, 2)
            box = (xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max())
            inside = box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height
            if inside and all(_box_iou(box, b) < 0.2 for b in boxes):
                break
        else:
            continue
        color = tuple(int(v) for v in rng.randint(0, 256, size=3))
        draw.polygon([tuple(p) for p in xy], fill=color)
        boxes.append(box)
        x0, y0, x1, y1 = (float(v) for v in box)
        anns.append(
            {
                "id": first_ann_id + len(anns),
                "image_id": image_id,
                "category_id": kind_id + 1,
                "bbox": [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)],
                "area": round(_polygon_area(xy), 2),
                "segmentation": [[float(v) for v in xy.reshape(-1)]],
                "iscrowd": 0,
            }
        )
    return image, anns


def generate_shapes(out_dir, *, num_images, seed, image_size=DEFAULT_IMAGE_SIZE, variant=None):
    """Write ``num_images`` images and ``annotations.json`` (COCO format) into ``out_dir``.

    Deterministic: the same arguments give the same files. Images are ``images/000001.png``...
    with ids from 1; the categories are ``SHAPE_CLASSES``, with ids from 1. The files are written
    in place, not atomically (:func:`ensure_shapes_generated` adds that).

    Args:
        out_dir (str): the folder to write into (created if missing).
        num_images (int): the number of images.
        seed (int): the seed of the NumPy RNG that draws backgrounds and objects.
        image_size (tuple[int, int]): (height, width) of every image, in pixels.
        variant (str or None): None for the mixed-size ``nats_shapes`` images, else one of the
            test bed's ``variants.VARIANTS`` ("large", "small").
    """
    if variant is not None and variant not in VARIANTS + TRIED:
        raise ValueError(f"shapes variant {variant!r} unknown; accepted: None, {VARIANTS + TRIED}")
    height, width = image_size
    rng = np.random.RandomState(seed)
    image_dir = os.path.join(out_dir, "images")
    os.makedirs(image_dir, exist_ok=True)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        if variant is None:
            image, anns = _make_image(rng, height, width, image_id, len(annotations) + 1)
        else:
            image = _background(rng, height, width)
            anns = make_variant_image(
                variant,
                rng,
                image,
                image_id,
                len(annotations) + 1,
                classes=SHAPE_CLASSES,
                polygon=_polygon,
                area=_polygon_area,
            )
        file_name = f"{image_id:06d}.png"
        image.save(os.path.join(image_dir, file_name))
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        annotations.extend(anns)
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(SHAPE_CLASSES)]
    coco = {"images": images, "annotations": annotations, "categories": categories}
    kind = "" if variant is None else f", variant {variant}"
    coco["info"] = {"description": f"NATS shapes v{GENERATOR_VERSION}{kind}, seed {seed}"}
    with open(os.path.join(out_dir, "annotations.json"), "w") as f:
        json.dump(coco, f)


def _split_dir(num_images, seed, image_size, variant=None):
    h, w = image_size
    kind = "" if variant is None else f"{design_of(variant)}_"
    name = f"shapes_v{GENERATOR_VERSION}_{kind}n{num_images}_{h}x{w}_seed{seed}"
    return os.path.join(shapes_cache_dir(), name)


def ensure_shapes_generated(num_images, seed, image_size=DEFAULT_IMAGE_SIZE, variant=None):
    """Return the split's folder, generating it first (into a temp folder, then renamed).

    The folder, under :func:`shapes_cache_dir`, is named by the generator version,
    ``num_images``, ``image_size`` and ``seed``, and reused once it holds ``annotations.json``.
    When another process generates the same split at the same time, the first finished is kept.

    Args:
        num_images (int): the number of images of the split.
        seed (int): the split's seed (see :func:`generate_shapes`).
        image_size (tuple[int, int]): (height, width) of the images, in pixels.
        variant (str or None): the test bed's variant (see :func:`generate_shapes`).

    Returns:
        str: the folder, holding ``annotations.json`` and ``images/``.
    """
    final = _split_dir(num_images, seed, image_size, variant)
    if os.path.exists(os.path.join(final, "annotations.json")):
        return final
    root = os.path.dirname(final)
    os.makedirs(root, exist_ok=True)
    logger.info(f"Generating NATS shapes ({num_images} images, seed {seed}) into {final} ...")
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=root)
    try:
        generate_shapes(
            tmp, num_images=num_images, seed=seed, image_size=image_size, variant=variant
        )
        os.rename(tmp, final)
    except OSError:
        if not os.path.exists(os.path.join(final, "annotations.json")):
            raise
        # another process finished the same split first: keep theirs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def register_nats_shapes(name, *, num_images, seed, image_size=DEFAULT_IMAGE_SIZE, variant=None):
    """Register a shapes split in Detectron2's catalogs; files are generated on first use.

    The built-in splits use this; tests call it with small ``num_images``/``image_size``. The
    metadata holds ``json_file``, ``image_root``, ``evaluator_type="coco"``, ``thing_classes``
    (``SHAPE_CLASSES``) and ``nats_shapes`` (the generation arguments, which
    :func:`~projects.nats.build_coco_evaluator` uses to generate the files).

    Args:
        name (str): the dataset name to register; must not be registered yet.
        num_images (int): the number of images of the split.
        seed (int): the split's seed (see :func:`generate_shapes`).
        image_size (tuple[int, int]): (height, width) of the images, in pixels.
        variant (str or None): the test bed's variant (see :func:`generate_shapes`).
    """
    folder = _split_dir(num_images, seed, image_size, variant)
    generation = dict(num_images=num_images, seed=seed, image_size=tuple(image_size))
    if variant is not None:
        generation["variant"] = variant

    def load():
        ensure_shapes_generated(**generation)
        return load_coco_json(os.path.join(folder, "annotations.json"), folder + "/images", name)

    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(
        json_file=os.path.join(folder, "annotations.json"),
        image_root=os.path.join(folder, "images"),
        evaluator_type="coco",
        thing_classes=list(SHAPE_CLASSES),
        nats_shapes=generation,
    )


def _register_builtin():
    for name, (seed, num_images) in BUILTIN_SPLITS.items():
        if name not in DatasetCatalog.list():
            register_nats_shapes(name, num_images=num_images, seed=seed)
    for name, (variant, seed, num_images) in {**VARIANT_SPLITS, **TRIAL_SPLITS}.items():
        if name not in DatasetCatalog.list():
            register_nats_shapes(
                name,
                num_images=num_images,
                seed=seed,
                image_size=DESIGN_IMAGE_SIZE.get(design_of(variant), VARIANT_IMAGE_SIZE),
                variant=variant,
            )


_register_builtin()
