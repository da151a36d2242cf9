"""The ImageNet stand-in's task: classify the main object of a small image by shape and size.

Small images, as ImageNet's 224 px images are small beside detection's 800 px (the demo uses
64 px beside the 256x320 ``nats_shapes`` images). Each image holds one main object
(class = its shape x one of three size bins, 12 classes) over the detection generator's textured
backgrounds, with up to three smaller distractors of any shape; colours, aspect ratios and
rotations vary as in detection. The images
are drawn from their own seeds (a hash of a tag and the split), never a detection split's.
"""

import hashlib
import math

import numpy as np
from PIL import ImageDraw

from ..data.shapes import BUILTIN_SPLITS, SHAPE_CLASSES, _background, _polygon

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "shapes_classification"]

SIZE_BINS = ("small", "medium", "large")
CLASS_NAMES = tuple(f"{kind}-{size}" for kind in SHAPE_CLASSES for size in SIZE_BINS)
NUM_CLASSES = len(CLASS_NAMES)


def _split_seed(split, seed):
    digest = hashlib.sha256(repr(("nats-standin-classification", split, seed)).encode()).digest()
    value = int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
    assert value not in {s for s, _ in BUILTIN_SPLITS.values()}, "a detection split's seed"
    return value


def _image(rng, size):
    image = _background(rng, size, size)
    draw = ImageDraw.Draw(image)
    label = int(rng.randint(NUM_CLASSES))
    kind, size_bin = divmod(label, len(SIZE_BINS))
    # Main object sizes: log-uniform over [0.2, 0.9] x the image, in three equal log bins.
    lo, hi = math.log(0.2 * size), math.log(0.9 * size)
    width = (hi - lo) / len(SIZE_BINS)
    main = math.exp(rng.uniform(lo + size_bin * width, lo + (size_bin + 1) * width))
    objects = [(main, kind)]
    for _ in range(rng.randint(0, 4)):  # distractors at most half the main object's size
        objects.append((rng.uniform(0.1, 0.5) * main, int(rng.randint(len(SHAPE_CLASSES)))))
    for obj_size, obj_kind in objects:  # the main object first; distractors may overlap it
        r = obj_size / 2
        cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
        xy = _polygon(SHAPE_CLASSES[obj_kind], cx, cy, obj_size, rng.uniform(0, math.pi), rng)
        color = tuple(int(v) for v in rng.randint(0, 256, size=3))
        draw.polygon([tuple(p) for p in xy], fill=color)
    return np.asarray(image), label


def shapes_classification(*, num_images, split, seed=0, size=64):
    """Images and labels of one split of the stand-in task, generated in memory.

    Args:
        num_images (int): the number of images.
        split (str): e.g. "train" or "val"; part of the images' seed, so splits differ.
        seed (int): the task's seed; with ``split``, hashed into the NumPy RNG's seed.
        size (int): image height and width, in pixels.

    Returns:
        tuple[np.ndarray, np.ndarray]: uint8 images ``[N, size, size, 3]`` in BGR (Detectron2's
        default input format) and int64 labels ``[N]`` in ``0..NUM_CLASSES-1``.
    """
    rng = np.random.RandomState(_split_seed(split, seed))
    images = np.empty((num_images, size, size, 3), dtype=np.uint8)
    labels = np.empty(num_images, dtype=np.int64)
    for i in range(num_images):
        rgb, labels[i] = _image(rng, size)
        images[i] = rgb[:, :, ::-1]
    return images, labels
