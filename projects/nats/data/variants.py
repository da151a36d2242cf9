"""The test bed's task variants: shapes datasets whose best dilations are planted by design.

Both variants keep the four shape classes of ``nats_shapes`` and its textured backgrounds, on small
square images (the test bed's laptop scale); they differ in what a large receptive field is worth:

* ``large`` (design ``ring_decoy``, ``ring_designs.py``, 192x192 images): one two-tone square
  token per image, ringed 42-52 px away by satellites whose fill, light or dark, decides whether
  the token is an object or an unannotated decoy: only a receptive field reaching past the box
  tells it. (Before 2026-12-07 the design was ``context_pair``, still generatable by name.)
* ``small`` (design ``small_packed``): many shapes of ``PACKED_SIZES`` px packed
  ``PACKED_GAP`` px apart, where a large receptive field mixes neighbours and a dilated kernel
  skips over whole objects.
* Tried before and dropped, still generatable by name: ``large_outline`` (large thin outlines
  among clutter strokes, the class decided by the outline's global shape), ``large_context``
  (``ring_designs.py``: plain tokens ringed by satellites of any of the four classes) and
  ``small_dense`` (``SMALL_SIZES`` px shapes ``SMALL_GAP`` px apart).
* On trial (``ON_TRIAL``), each with its own splits ``nats_<design>_*`` (benchmarks/README.md says
  what each asked and found): ring-of-satellites designs built on ``context_pair``, described in
  ``ring_designs.py`` (the decoy designs' images may hold no object).

Every object is annotated as in ``nats_shapes`` (box, area, polygon, shape class). Each variant has
its own splits and seeds (``projects.nats.data.shapes.VARIANT_SPLITS``); the designs tried while
the test bed was calibrated are listed in ``benchmarks/README.md``. This module draws the outline
and packed-shape designs and registers every design by name (``make_variant_image``); the
drawing helpers they share are in ``drawing.py``.
"""

import math

import numpy as np
from PIL import ImageDraw

from .drawing import _annotation, _apart, _box, _colour, _inside
from .ring_designs import RING_MAKERS

__all__ = [
    "VARIANTS",
    "DESIGNS",
    "TRIED",
    "ON_TRIAL",
    "LARGE_SIZES",
    "SMALL_SIZES",
    "SMALL_GAP",
    "DESIGN_IMAGE_SIZE",
    "design_of",
    "make_variant_image",
]

LARGE_SIZES = (0.35, 0.9)  # object size range, as fractions of the shorter image side
LARGE_STROKE = 2  # outline and clutter stroke width, px
LARGE_COUNT = (1, 3)  # objects per image, inclusive
LARGE_CLUTTER = (4, 10)  # clutter strokes per image, inclusive
SMALL_SIZES = (6.0, 14.0)  # object size range, px
SMALL_COUNT = (8, 24)  # objects per image, inclusive
SMALL_GAP = 2.0  # smallest distance between two small objects' boxes, px
PACKED_SIZES = (10.0, 20.0)  # small_packed: object size range, px
PACKED_COUNT = (12, 30)  # small_packed: objects per image, inclusive
PACKED_GAP = 1.0  # small_packed: smallest distance between two objects' boxes, px
VARIANTS = ("large", "small")
# Every design tried for a variant (benchmarks/README.md), generatable by name; the variant's
# registered splits use DESIGNS[variant].
DESIGNS = {"large": "ring_decoy", "small": "small_packed"}
# The designs on trial, in the order their splits were registered (shapes.TRIAL_SPLITS)
ON_TRIAL = (
    "context_far",
    "context_colour",
    "colour_pair",
    "colour_decoy",
    "far_decoy",
    "mid_decoy",
    "near_decoy",
    "pair_mid_decoy",
    "ring_decoy",
    "dense_mid_decoy",
    "big_token_decoy",
)
TRIED = ("large_outline", "large_context", "small_dense", "context_pair", "small_packed", *ON_TRIAL)
# (height, width) of a design's images where it is not the test bed's 128x128
DESIGN_IMAGE_SIZE = {
    "context_far": (256, 256),
    "context_colour": (256, 256),
    "colour_decoy": (192, 192),
    "far_decoy": (256, 256),
    "mid_decoy": (192, 192),
    "near_decoy": (192, 192),
    "pair_mid_decoy": (320, 320),
    "ring_decoy": (192, 192),
    "dense_mid_decoy": (192, 192),
    "big_token_decoy": (192, 192),
}


def _large_image(rng, image, image_id, first_ann_id, classes, polygon, polygon_area):
    width, height = image.size
    draw = ImageDraw.Draw(image)
    side = min(height, width)
    lo, hi = (f * side for f in LARGE_SIZES)
    for _ in range(rng.randint(LARGE_CLUTTER[0], LARGE_CLUTTER[1] + 1)):
        length = rng.uniform(0.1, 0.3) * side
        x0, y0, angle = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0, math.pi)
        x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
        draw.line([(x0, y0), (x1, y1)], fill=_colour(rng), width=LARGE_STROKE)
    anns, boxes = [], []
    count = rng.randint(LARGE_COUNT[0], LARGE_COUNT[1] + 1)
    for size in sorted(rng.uniform(lo, hi, size=count), reverse=True):
        kind_id = int(rng.randint(len(classes)))
        for _ in range(30):  # outlines may cross clutter, not each other's boxes much
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            xy = np.round(polygon(classes[kind_id], cx, cy, size, rng.uniform(0, math.pi), rng), 2)
            box = _box(xy)
            if _inside(box, height, width, margin=1.0) and all(
                _apart(box, b, -0.25 * size) for b in boxes
            ):
                break
        else:
            continue
        points = [tuple(p) for p in xy]
        draw.line(points + points[:1], fill=_colour(rng), width=LARGE_STROKE, joint="curve")
        boxes.append(box)
        anns.append(_annotation(xy, kind_id, image_id, first_ann_id + len(anns), polygon_area(xy)))
    return anns


def _place_shapes(rng, draw, size, sizes, gap, tries, image_id, first_ann_id, classes, shape):
    """Filled shapes of ``sizes`` px at random, never closer than ``gap`` px (rejection sampling:
    ``tries`` draws per shape, a shape that finds no room is left out)."""
    height, width = size
    polygon, polygon_area = shape
    anns, boxes = [], []
    for s in sizes:
        kind_id = int(rng.randint(len(classes)))
        for _ in range(tries):
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            xy = np.round(polygon(classes[kind_id], cx, cy, s, rng.uniform(0, math.pi), rng), 2)
            box = _box(xy)
            if _inside(box, height, width) and all(_apart(box, b, gap) for b in boxes):
                break
        else:
            continue
        draw.polygon([tuple(p) for p in xy], fill=_colour(rng))
        boxes.append(box)
        anns.append(_annotation(xy, kind_id, image_id, first_ann_id + len(anns), polygon_area(xy)))
    return anns


def _small_image(rng, image, image_id, first_ann_id, classes, polygon, polygon_area):
    """``SMALL_COUNT`` shapes, log-uniform in ``SMALL_SIZES`` px, ``SMALL_GAP`` px apart."""
    count = rng.randint(SMALL_COUNT[0], SMALL_COUNT[1] + 1)
    sizes = np.exp(rng.uniform(math.log(SMALL_SIZES[0]), math.log(SMALL_SIZES[1]), size=count))
    return _place_shapes(
        rng, ImageDraw.Draw(image), image.size[::-1], sizes, SMALL_GAP, 30,
        image_id, first_ann_id, classes, (polygon, polygon_area),
    )  # fmt: skip


def _packed_image(rng, image, image_id, first_ann_id, classes, polygon, polygon_area):
    """Many shapes of ``PACKED_SIZES`` px packed ``PACKED_GAP`` px apart, the largest first."""
    count = rng.randint(PACKED_COUNT[0], PACKED_COUNT[1] + 1)
    sizes = sorted(rng.uniform(*PACKED_SIZES, size=count), reverse=True)
    return _place_shapes(
        rng, ImageDraw.Draw(image), image.size[::-1], sizes, PACKED_GAP, 40,
        image_id, first_ann_id, classes, (polygon, polygon_area),
    )  # fmt: skip


def design_of(variant):
    """The design a variant name stands for (a tried design's name stands for itself)."""
    return DESIGNS.get(variant, variant)


_MAKERS = {  # design -> image maker, built once
    "large_outline": _large_image,
    "small_dense": _small_image,
    "small_packed": _packed_image,
    **RING_MAKERS,
}


def make_variant_image(variant, rng, image, image_id, first_ann_id, *, classes, polygon, area):
    """Draw one image's objects of ``variant`` onto ``image`` (a background) and annotate them.

    Args:
        variant (str): one of ``VARIANTS``.
        rng (np.random.RandomState): draws every object.
        image (PIL.Image.Image): the background, drawn on in place.
        image_id (int): the COCO id of the image.
        first_ann_id (int): the COCO id of its first annotation.
        classes (tuple[str]): the shape classes (category ``i + 1`` is ``classes[i]``).
        polygon (callable): ``polygon(kind, cx, cy, size, angle, rng)`` -> vertices ``(N, 2)``.
        area (callable): a polygon's area from its vertices.

    Returns:
        list[dict]: COCO annotations, ids from ``first_ann_id``.
    """
    design = design_of(variant)
    if design not in _MAKERS:
        raise ValueError(f"shapes variant {variant!r} unknown; accepted: {VARIANTS + TRIED}")
    return _MAKERS[design](rng, image, image_id, first_ann_id, classes, polygon, area)
