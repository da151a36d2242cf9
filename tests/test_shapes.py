"""The built-in shapes dataset: deterministic, valid COCO, wide range of object scales."""

import json
import os

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from projects.nats.data import BUILTIN_SPLITS, SHAPE_CLASSES, generate_shapes


def _generate(tmp_path, name, seed=5, n=6, size=(96, 128)):
    out = tmp_path / name
    generate_shapes(os.fspath(out), num_images=n, seed=seed, image_size=size)
    return out


def test_deterministic(tmp_path):
    a, b = _generate(tmp_path, "a"), _generate(tmp_path, "b")
    assert (a / "annotations.json").read_text() == (b / "annotations.json").read_text()
    for f in sorted(os.listdir(a / "images")):
        assert np.array_equal(
            np.asarray(Image.open(a / "images" / f)), np.asarray(Image.open(b / "images" / f))
        )
    c = _generate(tmp_path, "c", seed=6)
    assert (a / "annotations.json").read_text() != (c / "annotations.json").read_text()


def test_valid_coco(tmp_path):
    out = _generate(tmp_path, "coco", n=12, size=(160, 200))
    coco = COCO(os.fspath(out / "annotations.json"))
    assert sorted(c["name"] for c in coco.loadCats(coco.getCatIds())) == sorted(SHAPE_CLASSES)
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 2 * 12 * 0.5 and len({a["id"] for a in anns}) == len(anns)
    per_image = [len(coco.getAnnIds(imgIds=[i])) for i in coco.getImgIds()]
    assert max(per_image) >= 3
    for ann in anns:
        img = coco.loadImgs(ann["image_id"])[0]
        x, y, w, h = ann["bbox"]
        assert 0 <= x and 0 <= y and x + w <= img["width"] + 1e-6 and y + h <= img["height"] + 1e-6
        poly = np.asarray(ann["segmentation"][0]).reshape(-1, 2)
        # area: shoelace of the polygon, and pycocotools' rasterised area agrees closely
        sx, sy = poly[:, 0], poly[:, 1]
        shoelace = 0.5 * abs(np.dot(sx, np.roll(sy, 1)) - np.dot(sy, np.roll(sx, 1)))
        assert abs(ann["area"] - shoelace) < 0.05
        rle = mask_utils.frPyObjects(ann["segmentation"], img["height"], img["width"])
        raster = float(mask_utils.area(mask_utils.merge(rle)))
        assert abs(raster - ann["area"]) <= 0.2 * ann["area"] + 2 * (w + h)
        assert np.isclose(poly[:, 0].min(), x) and np.isclose(poly[:, 1].max(), y + h, atol=0.02)
        assert Image.open(out / "images" / img["file_name"]).size == (img["width"], img["height"])


def test_scale_range(tmp_path):
    out = _generate(tmp_path, "scales", n=30, size=(256, 320))
    anns = json.loads((out / "annotations.json").read_text())["annotations"]
    sides = [max(a["bbox"][2], a["bbox"][3]) for a in anns]
    assert min(sides) < 16 and max(sides) > 0.6 * 256
    assert len({a["category_id"] for a in anns}) == len(SHAPE_CLASSES)


def test_builtin_splits_registered_and_disjoint(tmp_path, monkeypatch):
    monkeypatch.setenv("NATS_DATA_CACHE", os.fspath(tmp_path / "cache"))
    assert set(BUILTIN_SPLITS) <= set(DatasetCatalog.list())
    for name in BUILTIN_SPLITS:
        meta = MetadataCatalog.get(name)
        assert meta.evaluator_type == "coco" and list(meta.thing_classes) == list(SHAPE_CLASSES)
    seeds = [seed for seed, _ in BUILTIN_SPLITS.values()]
    assert len(set(seeds)) == len(seeds)


def test_registered_split_generates_once_atomically(tmp_path, monkeypatch):
    from projects.nats.data import register_nats_shapes, shapes_cache_dir

    monkeypatch.setenv("NATS_DATA_CACHE", os.fspath(tmp_path / "cache"))
    register_nats_shapes("test_gen_once", num_images=3, seed=99, image_size=(64, 80))
    dicts = DatasetCatalog.get("test_gen_once")
    assert len(dicts) == 3 and all(os.path.exists(d["file_name"]) for d in dicts)
    assert all(0 <= d["annotations"][0]["category_id"] < len(SHAPE_CLASSES) for d in dicts)
    entries = os.listdir(shapes_cache_dir())
    assert len(entries) == 1 and not entries[0].startswith(".tmp")
    stamp = os.path.getmtime(os.path.join(shapes_cache_dir(), entries[0], "annotations.json"))
    DatasetCatalog.get("test_gen_once")  # reused, not regenerated
    assert (
        os.path.getmtime(os.path.join(shapes_cache_dir(), entries[0], "annotations.json")) == stamp
    )
    DatasetCatalog.remove("test_gen_once")
    MetadataCatalog.remove("test_gen_once")
