"""Drawing helpers shared by the test bed's designs (``variants.py``, ``ring_designs.py``).

A COCO annotation from a polygon's vertices, a polygon's bounding box, whether a box lies inside
the image, whether two boxes are apart, and a random fill colour.
"""


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
