"""The test bed's task variants: shapes datasets whose best dilations are planted by design.

Both variants keep the four shape classes of ``nats_shapes`` and its textured backgrounds, on small
square images (the test bed's laptop scale); they differ in what a large receptive field is worth:

* ``large`` (design ``context_pair``): an object's class is decided by context beyond its box.
  Each annotated object is a two-tone square token (``PAIR_TOKEN`` px; one look for every token
  of an image), ringed ``PAIR_RADIUS`` px away by satellites whose shape (one of
  ``PAIR_CLASSES``) is the token's class: only a receptive field reaching past the box tells it.
* ``small`` (design ``small_packed``): many shapes of ``PACKED_SIZES`` px packed
  ``PACKED_GAP`` px apart, where a large receptive field mixes neighbours and a dilated kernel
  skips over whole objects.
* Tried before and dropped, still generatable by name: ``large_outline`` (large thin outlines
  among clutter strokes, the class decided by the outline's global shape), ``large_context``
  (plain ``CONTEXT_TOKEN`` px tokens ringed by satellites of any of the four classes) and
  ``small_dense`` (``SMALL_SIZES`` px shapes ``SMALL_GAP`` px apart).
* On trial, each with its own splits ``nats_<design>_*`` (benchmarks/README.md says what each
  asked and found): ``context_far`` (``context_pair`` with one token per 256x256 image, its
  ring ``FAR_RADIUS`` px away); ``context_colour`` (that geometry, the class told by the
  satellites' fill, light or dark: ``COLOUR_CUE``); ``colour_pair`` (``context_pair`` with that
  cue); and the decoy designs, where only a light-ringed token is an object (a ``disc``) and a
  dark-ringed one is drawn unannotated, so that context decides objectness: ``colour_decoy``
  (two tokens, 192x192), ``far_decoy`` (``context_colour``'s geometry), ``mid_decoy`` and
  ``near_decoy`` (one token, 192x192, the ring ``MID_RADIUS`` / ``PAIR_RADIUS`` px away) and
  ``pair_mid_decoy`` (two tokens, 320x320, ``MID_RADIUS``); ``ring_decoy`` and
  ``dense_mid_decoy`` (one token, 192x192, ``RING_RADIUS`` / ``MID_RADIUS``, near_decoy's spacing
  of satellites along the ring kept). Their images may hold no object:
  training on those needs ``DATALOADER.FILTER_EMPTY_ANNOTATIONS False``.

Every object is annotated as in ``nats_shapes`` (box, area, polygon, shape class). Each variant has
its own splits and seeds (``projects.nats.data.shapes.VARIANT_SPLITS``); the designs tried while
the test bed was calibrated are listed in ``benchmarks/README.md``.
"""

import functools
import math

import numpy as np
from PIL import ImageDraw

__all__ = [
    "VARIANTS",
    "DESIGNS",
    "TRIED",
    "ON_TRIAL",
    "CONTEXT_COUNT",
    "CONTEXT_TOKEN",
    "LARGE_SIZES",
    "SMALL_SIZES",
    "SMALL_GAP",
    "DESIGN_IMAGE_SIZE",
    "COLOUR_CUE",
    "design_of",
    "make_variant_image",
]

LARGE_SIZES = (0.35, 0.9)  # object size range, as fractions of the shorter image side
LARGE_STROKE = 2  # outline and clutter stroke width, px
LARGE_COUNT = (1, 3)  # objects per image, inclusive
LARGE_CLUTTER = (4, 10)  # clutter strokes per image, inclusive
CONTEXT_TOKEN = (10.0, 16.0)  # token side, px (an axis-aligned square, the annotated object)
CONTEXT_RADIUS = (26.0, 40.0)  # distance of the ring of satellites from the token's centre, px
CONTEXT_SATELLITE = 9.0  # satellite size, px
CONTEXT_SATELLITES = (5, 8)  # satellites per ring, inclusive
CONTEXT_COUNT = (1, 2)  # tokens per image, inclusive
SMALL_SIZES = (6.0, 14.0)  # object size range, px
SMALL_COUNT = (8, 24)  # objects per image, inclusive
SMALL_GAP = 2.0  # smallest distance between two small objects' boxes, px
PAIR_CLASSES = ("disc", "cross")  # context_pair: the two classes the satellites can show
PAIR_TOKEN = (18.0, 26.0)  # context_pair: token side, px (a two-tone axis-aligned square)
PAIR_RADIUS = (30.0, 40.0)  # context_pair: ring radius from the token's centre, px
PAIR_SATELLITES = (6, 9)  # context_pair: satellites per ring, inclusive
FAR_RADIUS = (95.0, 115.0)  # context_far: ring radius, px (past a dilation-1 trunk's ERF)
FAR_SATELLITE = 12.0  # context_far: satellite size, px
FAR_SATELLITES = (8, 11)  # context_far: satellites per ring, inclusive
FAR_COUNT = (1, 1)  # context_far: tokens per image, inclusive (one ring fills the image)
MID_RADIUS = (55.0, 70.0)  # mid_decoy: ring radius, px (about where all_d1's res4 reach ends)
RING_RADIUS = (42.0, 52.0)  # ring_decoy: ring radius, px (between near_decoy's and mid_decoy's)
# satellites per ring where near_decoy's spacing along the ring (~23 px) is kept
RING_SATELLITES = (11, 15)  # ring_decoy
DENSE_MID_SATELLITES = (15, 19)  # dense_mid_decoy (mid_decoy's radius)
# context_colour: the per-channel fill range of the satellites, by token class: light or dark,
# outside the backgrounds' 40-215 (shapes._background), so that one pixel tells the class
COLOUR_CUE = {"disc": (235, 256), "cross": (0, 21)}
DECOY_COUNT = (2, 2)  # colour_decoy: tokens per image, each light-ringed (an object) or a decoy
PACKED_SIZES = (10.0, 20.0)  # small_packed: object size range, px
PACKED_COUNT = (12, 30)  # small_packed: objects per image, inclusive
PACKED_GAP = 1.0  # small_packed: smallest distance between two objects' boxes, px
VARIANTS = ("large", "small")
# Every design tried for a variant (benchmarks/README.md), generatable by name; the variant's
# registered splits use DESIGNS[variant].
DESIGNS = {"large": "context_pair", "small": "small_packed"}
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
}


def _annotation(xy, kind_id, image_id, ann_id, area):
    x0, y0 = float(xy[:, 0].min()), float(xy[:, 1].min())
    x1, y1 = float(xy[:, 0].max()), float(xy[:, 1].max())
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": kind_id + 1,
        "bbox": [x0, y0, round(x1 - x0, 2), round(y1 - y0, 2)],
        "area": round(area, 2),
        "segmentation": [[float(v) for v in xy.reshape(-1)]],
        "iscrowd": 0,
    }


def _box(xy):
    return (xy[:, 0].min(), xy[:, 1].min(), xy[:, 0].max(), xy[:, 1].max())


def _inside(box, height, width, margin=0.0):
    return (
        box[0] >= margin
        and box[1] >= margin
        and box[2] <= width - margin
        and box[3] <= height - margin
    )


def _apart(a, b, gap):
    """Whether boxes ``a`` and ``b`` are at least ``gap`` apart along some axis."""
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def _colour(rng):
    return tuple(int(v) for v in rng.randint(0, 256, size=3))


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


def _context_image(rng, image, image_id, first_ann_id, classes, polygon, polygon_area):
    """Tokens whose class is the shape of the satellites that ring them, outside their box."""
    width, height = image.size
    draw = ImageDraw.Draw(image)
    anns, rings = [], []
    token_colour = _colour(rng)  # one token look per image: the token itself says nothing
    for _ in range(rng.randint(CONTEXT_COUNT[0], CONTEXT_COUNT[1] + 1)):
        size = rng.uniform(*CONTEXT_TOKEN)
        radius = rng.uniform(*CONTEXT_RADIUS)
        reach = radius + CONTEXT_SATELLITE / 2 + 1
        for _ in range(30):  # whole rings inside the image, rings apart
            cx, cy = rng.uniform(reach, width - reach), rng.uniform(reach, height - reach)
            if all(math.hypot(cx - x, cy - y) > reach + r + 2 for x, y, r in rings):
                break
        else:
            continue
        kind_id = int(rng.randint(len(classes)))
        count = rng.randint(CONTEXT_SATELLITES[0], CONTEXT_SATELLITES[1] + 1)
        phase = rng.uniform(0, 2 * math.pi)
        for k in range(count):
            t = phase + 2 * math.pi * k / count
            sx, sy = cx + radius * math.cos(t), cy + radius * math.sin(t)
            xy = polygon(classes[kind_id], sx, sy, CONTEXT_SATELLITE, rng.uniform(0, math.pi), rng)
            draw.polygon([tuple(p) for p in xy], fill=_colour(rng))
        half = size / 2
        xy = np.array([(cx - half, cy - half), (cx + half, cy - half)])
        xy = np.round(np.vstack([xy, [(cx + half, cy + half), (cx - half, cy + half)]]), 2)
        draw.polygon([tuple(p) for p in xy], fill=token_colour)
        rings.append((cx, cy, reach))
        anns.append(_annotation(xy, kind_id, image_id, first_ann_id + len(anns), polygon_area(xy)))
    return anns


def _pair_image(
    rng,
    image,
    image_id,
    first_ann_id,
    classes,
    polygon,
    polygon_area,
    *,
    radius_range=PAIR_RADIUS,
    satellite=CONTEXT_SATELLITE,
    satellites=PAIR_SATELLITES,
    tokens=CONTEXT_COUNT,
    cue="shape",
    decoy=None,
):
    """Two-tone square tokens whose class (one of ``PAIR_CLASSES``) is the satellites' shape;
    ``context_far`` is the same with the ring ``FAR_RADIUS`` px away; ``cue="colour"``
    (``context_colour``) gives the satellites any of the four shapes and decides the class by
    their fill instead, light or dark (``COLOUR_CUE``); tokens of the class ``decoy`` are drawn
    and not annotated (``colour_decoy``: whether a token is an object at all is told by its ring).
    """
    width, height = image.size
    draw = ImageDraw.Draw(image)
    anns, rings = [], []
    outer, inner = _colour(rng), _colour(rng)  # one token look per image: it says nothing
    for _ in range(rng.randint(tokens[0], tokens[1] + 1)):
        size, radius = rng.uniform(*PAIR_TOKEN), rng.uniform(*radius_range)
        reach = radius + satellite / 2 + 1
        for _ in range(30):  # whole rings inside the image, rings apart
            cx, cy = rng.uniform(reach, width - reach), rng.uniform(reach, height - reach)
            if all(math.hypot(cx - x, cy - y) > reach + r + 2 for x, y, r in rings):
                break
        else:
            continue
        kind = PAIR_CLASSES[rng.randint(len(PAIR_CLASSES))]
        count = rng.randint(satellites[0], satellites[1] + 1)
        phase = rng.uniform(0, 2 * math.pi)
        for k in range(count):
            t = phase + 2 * math.pi * k / count
            sx, sy = cx + radius * math.cos(t), cy + radius * math.sin(t)
            if cue == "shape":
                xy = polygon(kind, sx, sy, satellite, rng.uniform(0, math.pi), rng)
                fill = _colour(rng)
            else:
                shape = classes[rng.randint(len(classes))]
                xy = polygon(shape, sx, sy, satellite, rng.uniform(0, math.pi), rng)
                fill = tuple(int(v) for v in rng.randint(*COLOUR_CUE[kind], size=3))
            draw.polygon([tuple(p) for p in xy], fill=fill)
        half = size / 2
        xy = np.array([(cx - half, cy - half), (cx + half, cy - half)])
        xy = np.round(np.vstack([xy, [(cx + half, cy + half), (cx - half, cy + half)]]), 2)
        draw.polygon([tuple(p) for p in xy], fill=outer)
        q = half / 2
        draw.rectangle([cx - q, cy - q, cx + q, cy + q], fill=inner)
        rings.append((cx, cy, reach))
        if kind != decoy:
            kind_id = classes.index(kind)
            ann_id = first_ann_id + len(anns)
            anns.append(_annotation(xy, kind_id, image_id, ann_id, polygon_area(xy)))
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


# context_far's ring, shared by the designs built on its geometry
_FAR_RING = dict(
    radius_range=FAR_RADIUS, satellite=FAR_SATELLITE, satellites=FAR_SATELLITES, tokens=FAR_COUNT
)
_MAKERS = {  # design -> image maker, built once
    "large_outline": _large_image,
    "large_context": _context_image,
    "small_dense": _small_image,
    "context_pair": _pair_image,
    "small_packed": _packed_image,
    "context_far": functools.partial(_pair_image, **_FAR_RING),
    "context_colour": functools.partial(_pair_image, **_FAR_RING, cue="colour"),
    "colour_pair": functools.partial(_pair_image, cue="colour"),
    "colour_decoy": functools.partial(
        _pair_image, cue="colour", tokens=DECOY_COUNT, decoy=PAIR_CLASSES[1]
    ),
    "far_decoy": functools.partial(_pair_image, **_FAR_RING, cue="colour", decoy=PAIR_CLASSES[1]),
    "mid_decoy": functools.partial(
        _pair_image,
        **{**_FAR_RING, "radius_range": MID_RADIUS},
        cue="colour",
        decoy=PAIR_CLASSES[1],
    ),
    "near_decoy": functools.partial(
        _pair_image,
        **{**_FAR_RING, "radius_range": PAIR_RADIUS},
        cue="colour",
        decoy=PAIR_CLASSES[1],
    ),
    "pair_mid_decoy": functools.partial(
        _pair_image,
        **{**_FAR_RING, "radius_range": MID_RADIUS, "tokens": DECOY_COUNT},
        cue="colour",
        decoy=PAIR_CLASSES[1],
    ),
    "ring_decoy": functools.partial(
        _pair_image,
        **{**_FAR_RING, "radius_range": RING_RADIUS, "satellites": RING_SATELLITES},
        cue="colour",
        decoy=PAIR_CLASSES[1],
    ),
    "dense_mid_decoy": functools.partial(
        _pair_image,
        **{**_FAR_RING, "radius_range": MID_RADIUS, "satellites": DENSE_MID_SATELLITES},
        cue="colour",
        decoy=PAIR_CLASSES[1],
    ),
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
