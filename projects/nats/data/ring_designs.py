"""The test bed's ring-of-satellites designs: square tokens ringed by satellites beyond their box.

A token's class (and, in the decoy designs, whether it is an object at all) is told only by the
ring of satellites around it, so that only a receptive field reaching past the box tells it. Each
design keeps the four shape classes of ``nats_shapes`` and its textured backgrounds:

* ``context_pair`` (the ``large`` variant's design): each annotated object is a two-tone square
  token (``PAIR_TOKEN`` px; one look for every token of an image), ringed ``PAIR_RADIUS`` px away
  by satellites whose shape (one of ``PAIR_CLASSES``) is the token's class.
* Tried before and dropped, still generatable by name: ``large_context`` (plain
  ``CONTEXT_TOKEN`` px tokens ringed by satellites of any of the four classes).
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
  of satellites along the ring kept); ``big_token_decoy`` (``dense_mid_decoy`` with
  ``BIG_TOKEN`` px tokens ringed ``BIG_RADIUS`` px away, ``BIG_SATELLITES`` satellites). Their
  images may hold no object:
  training on those needs ``DATALOADER.FILTER_EMPTY_ANNOTATIONS False``.

``RING_MAKERS`` maps each of these designs to its image maker; ``variants.py`` registers them
with the other designs (and holds their image sizes, ``DESIGN_IMAGE_SIZE``).
"""

import functools
import math

import numpy as np
from PIL import ImageDraw

from .drawing import _annotation, _colour

__all__ = [
    "RING_MAKERS",
    "EMPTY_IMAGES",
    "CONTEXT_COUNT",
    "CONTEXT_TOKEN",
    "PAIR_CLASSES",
    "PAIR_TOKEN",
    "PAIR_RADIUS",
    "FAR_RADIUS",
    "FAR_SATELLITE",
    "MID_RADIUS",
    "RING_RADIUS",
    "RING_SATELLITES",
    "DENSE_MID_SATELLITES",
    "BIG_TOKEN",
    "BIG_RADIUS",
    "BIG_SATELLITES",
    "COLOUR_CUE",
    "DECOY_COUNT",
]

CONTEXT_TOKEN = (10.0, 16.0)  # token side, px (an axis-aligned square, the annotated object)
CONTEXT_RADIUS = (26.0, 40.0)  # distance of the ring of satellites from the token's centre, px
CONTEXT_SATELLITE = 9.0  # satellite size, px
CONTEXT_SATELLITES = (5, 8)  # satellites per ring, inclusive
CONTEXT_COUNT = (1, 2)  # tokens per image, inclusive
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
BIG_TOKEN = (32.0, 40.0)  # big_token_decoy: token side, px
BIG_RADIUS = (62.0, 78.0)  # big_token_decoy: ring radius, px (dense_mid_decoy's gap to the edge)
BIG_SATELLITES = (17, 21)  # big_token_decoy: satellites per ring (near_decoy's spacing)
# context_colour: the per-channel fill range of the satellites, by token class: light or dark,
# outside the backgrounds' 40-215 (shapes._background), so that one pixel tells the class
COLOUR_CUE = {"disc": (235, 256), "cross": (0, 21)}
DECOY_COUNT = (2, 2)  # colour_decoy: tokens per image, each light-ringed (an object) or a decoy


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
    token=PAIR_TOKEN,
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
        size, radius = rng.uniform(*token), rng.uniform(*radius_range)
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


# context_far's ring, shared by the designs built on its geometry
_FAR_RING = dict(
    radius_range=FAR_RADIUS, satellite=FAR_SATELLITE, satellites=FAR_SATELLITES, tokens=FAR_COUNT
)
# a decoy design: the colour cue, and the ``PAIR_CLASSES[1]`` (dark-ringed) tokens unannotated;
# functools.partial flattens a partial of a partial, so every maker keeps its ``keywords``
_DECOY = functools.partial(_pair_image, cue="colour", decoy=PAIR_CLASSES[1])
RING_MAKERS = {  # design -> image maker, built once
    "large_context": _context_image,
    "context_pair": _pair_image,
    "context_far": functools.partial(_pair_image, **_FAR_RING),
    "context_colour": functools.partial(_pair_image, **_FAR_RING, cue="colour"),
    "colour_pair": functools.partial(_pair_image, cue="colour"),
    "colour_decoy": functools.partial(_DECOY, tokens=DECOY_COUNT),
    "far_decoy": functools.partial(_DECOY, **_FAR_RING),
    "mid_decoy": functools.partial(_DECOY, **{**_FAR_RING, "radius_range": MID_RADIUS}),
    "near_decoy": functools.partial(_DECOY, **{**_FAR_RING, "radius_range": PAIR_RADIUS}),
    "pair_mid_decoy": functools.partial(
        _DECOY, **{**_FAR_RING, "radius_range": MID_RADIUS, "tokens": DECOY_COUNT}
    ),
    "ring_decoy": functools.partial(
        _DECOY, **{**_FAR_RING, "radius_range": RING_RADIUS, "satellites": RING_SATELLITES}
    ),
    "dense_mid_decoy": functools.partial(
        _DECOY, **{**_FAR_RING, "radius_range": MID_RADIUS, "satellites": DENSE_MID_SATELLITES}
    ),
    "big_token_decoy": functools.partial(
        _DECOY,
        **{**_FAR_RING, "radius_range": BIG_RADIUS, "satellites": BIG_SATELLITES},
        token=BIG_TOKEN,
    ),
}
# the designs whose images may hold no object (decoys only): training must keep those images
EMPTY_IMAGES = frozenset(
    d for d, m in RING_MAKERS.items() if getattr(m, "keywords", {}).get("decoy") is not None
)
