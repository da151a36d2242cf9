"""The test bed: its two task variants (deterministic, boxes inside, sizes as documented), its
registered splits (the old nats_shapes_* unchanged), and the calibration panel's files."""

import json
import os
import sys

import numpy as np
import pytest
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from projects.nats import add_nats_config
from projects.nats.architecture import PANEL, fixed_architecture, load_architecture
from projects.nats.config import check_train_config
from projects.nats.data import generate_shapes
from projects.nats.data import shapes as shapes_module
from projects.nats.data.ring_designs import (
    BIG_RADIUS,
    BIG_SATELLITES,
    BIG_TOKEN,
    COLOUR_CUE,
    CONTEXT_COUNT,
    CONTEXT_TOKEN,
    DECOY_COUNT,
    DENSE_MID_SATELLITES,
    EMPTY_IMAGES,
    FAR_RADIUS,
    FAR_SATELLITE,
    MID_RADIUS,
    PAIR_CLASSES,
    PAIR_RADIUS,
    PAIR_TOKEN,
    RING_RADIUS,
    RING_SATELLITES,
)
from projects.nats.data.shapes import SHAPE_CLASSES
from projects.nats.data.variants import (
    DESIGNS,
    LARGE_COUNT,
    LARGE_SIZES,
    PACKED_COUNT,
    PACKED_GAP,
    PACKED_SIZES,
    SMALL_COUNT,
    SMALL_GAP,
    SMALL_SIZES,
    design_of,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

SIZE = (128, 128)


def _generate(tmp_path, name, variant, seed=5, n=12):
    out = tmp_path / name
    generate_shapes(os.fspath(out), num_images=n, seed=seed, image_size=SIZE, variant=variant)
    return out, json.loads((out / "annotations.json").read_text())


@pytest.mark.parametrize("variant", ["large", "small"])
def test_variants_are_deterministic_by_seed(tmp_path, variant):
    (a, ja), (b, jb) = _generate(tmp_path, "a", variant), _generate(tmp_path, "b", variant)
    assert ja == jb
    for f in sorted(os.listdir(a / "images")):
        assert np.array_equal(
            np.asarray(Image.open(a / "images" / f)), np.asarray(Image.open(b / "images" / f))
        )
    _, jc = _generate(tmp_path, "c", variant, seed=6)
    assert jc["annotations"] != ja["annotations"]


@pytest.mark.parametrize("variant", ["large", "small"])
def test_variant_boxes_inside_images_and_classes_valid(tmp_path, variant):
    _, coco = _generate(tmp_path, "v", variant, n=20)
    assert coco["annotations"], "no objects"
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and x + w <= SIZE[1] + 1e-6 and y + h <= SIZE[0] + 1e-6
        assert w > 0 and h > 0 and ann["category_id"] in (1, 2, 3, 4)
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])


def test_registered_designs():
    assert DESIGNS == {"large": "ring_decoy", "small": "small_packed"}


@pytest.mark.parametrize(
    "design, token, classes",
    [
        ("context_pair", PAIR_TOKEN, PAIR_CLASSES),  # large until 2026-12-07: two-tone tokens
        ("large_context", CONTEXT_TOKEN, SHAPE_CLASSES),  # tried before: plain tokens
    ],
)
def test_context_tokens_look_alike_and_sizes_as_documented(tmp_path, design, token, classes):
    out, coco = _generate(tmp_path, "large", design, n=30)
    by_image = {}
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        assert abs(w - h) < 0.02 and token[0] - 0.02 <= w <= token[1] + 0.02
        by_image.setdefault(a["image_id"], []).append(a)
    assert max(len(v) for v in by_image.values()) <= CONTEXT_COUNT[1]
    assert len(coco["annotations"]) >= 30 * CONTEXT_COUNT[0] * 0.9
    found = {a["category_id"] for a in coco["annotations"]}
    assert found == {SHAPE_CLASSES.index(c) + 1 for c in classes}
    looks = set()
    for image_id, anns in by_image.items():  # what decides the class lies outside the box
        img = np.asarray(Image.open(out / "images" / f"{image_id:06d}.png")).astype(int)
        for a in anns:
            x, y, w, h = (int(round(v)) for v in a["bbox"])
            frame = img[y + 1 : y + 3, x + 2 : x + w - 2].reshape(-1, 3)  # the token's top edge
            centre = img[y + h // 2, x + w // 2]
            assert (frame.max(0) - frame.min(0)).max() == 0, "a token's frame is one colour"
            looks.add((a["image_id"], tuple(frame[0]), tuple(centre)))
            ring = img[max(0, y - 30) : y + h + 30, max(0, x - 30) : x + w + 30]
            assert ring.reshape(-1, 3).std(0).max() > 20, "no satellites around the token"
    per_image = {}
    for image_id, frame, centre in looks:  # one token look per image, whatever the class
        per_image.setdefault(image_id, set()).add((frame, centre))
    assert all(len(v) == 1 for v in per_image.values())


@pytest.mark.parametrize("design", ["context_far", "context_colour"])
def test_far_designs_one_token_per_image_and_its_ring_far_away(tmp_path, design):
    out = tmp_path / "far"
    size = (256, 256)
    generate_shapes(os.fspath(out), num_images=12, seed=3, image_size=size, variant=design)
    coco = json.loads((out / "annotations.json").read_text())
    assert [a["image_id"] for a in coco["annotations"]] == list(range(1, 13))  # one per image
    assert {a["category_id"] for a in coco["annotations"]} == {
        SHAPE_CLASSES.index(c) + 1 for c in PAIR_CLASSES
    }
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        assert abs(w - h) < 0.02 and PAIR_TOKEN[0] - 0.02 <= w <= PAIR_TOKEN[1] + 0.02
        img = np.asarray(Image.open(out / "images" / f"{a['image_id']:06d}.png")).astype(float)
        distance = np.hypot(xx - (x + w / 2), yy - (y + h / 2))
        edge = np.zeros(size, bool)  # a drawn edge, well above the background noise (SD 8)
        edge[:, 1:] = np.abs(img[:, 1:] - img[:, :-1]).max(-1) > 60
        near = edge & (distance > w) & (distance < FAR_RADIUS[0] - FAR_SATELLITE)
        ring = edge & (distance > FAR_RADIUS[0] - FAR_SATELLITE)
        ring &= distance < FAR_RADIUS[1] + FAR_SATELLITE
        assert near.sum() == 0, "something drawn between the token and its ring"
        assert ring.sum() > 20, "no satellites on the ring"
        if design == "context_colour":  # the ring's fill tells the class, light or dark
            annulus = (distance > FAR_RADIUS[0] - FAR_SATELLITE) & (distance < FAR_RADIUS[1] + 9)
            light = (img[annulus].min(-1) >= COLOUR_CUE["disc"][0]).sum()
            dark = (img[annulus].max(-1) < COLOUR_CUE["cross"][1]).sum()
            kind = SHAPE_CLASSES[a["category_id"] - 1]
            assert (light > 200, dark > 200) == (kind == "disc", kind == "cross"), (light, dark)
            assert min(light, dark) < 10, "both fills on one ring"


DENSER_RINGS = {
    "ring_decoy": RING_SATELLITES,
    "dense_mid_decoy": DENSE_MID_SATELLITES,
    "big_token_decoy": BIG_SATELLITES,
}


@pytest.mark.parametrize(
    "design, size, radius",
    [
        ("colour_decoy", (192, 192), PAIR_RADIUS),
        ("far_decoy", (256, 256), FAR_RADIUS),
        ("mid_decoy", (192, 192), MID_RADIUS),
        ("near_decoy", (192, 192), PAIR_RADIUS),
        ("pair_mid_decoy", (320, 320), MID_RADIUS),
        ("ring_decoy", (192, 192), RING_RADIUS),
        ("dense_mid_decoy", (192, 192), MID_RADIUS),
        ("big_token_decoy", (192, 192), BIG_RADIUS),
    ],
)
def test_decoy_designs_annotate_only_light_ringed_tokens(tmp_path, design, size, radius):
    out = tmp_path / design
    generate_shapes(os.fspath(out), num_images=16, seed=5, image_size=size, variant=design)
    coco = json.loads((out / "annotations.json").read_text())
    assert {a["category_id"] for a in coco["annotations"]} == {SHAPE_CLASSES.index("disc") + 1}
    per_image = np.bincount([a["image_id"] for a in coco["annotations"]], minlength=17)[1:]
    assert per_image.max() <= DECOY_COUNT[1] and 0 in per_image, "no image with decoys only"
    assert design in EMPTY_IMAGES, "its empty images would be filtered out of training"
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        img = np.asarray(Image.open(out / "images" / f"{a['image_id']:06d}.png")).astype(float)
        distance = np.hypot(xx - (x + w / 2), yy - (y + h / 2))
        annulus = (distance > radius[0] - 6) & (distance < radius[1] + 6)
        light = (img[annulus].min(-1) >= COLOUR_CUE["disc"][0]).sum()
        assert light > 100, "an annotated token without its light ring"
        if design == "big_token_decoy":
            assert BIG_TOKEN[0] - 0.01 <= w <= BIG_TOKEN[1] + 0.01, (w, h)
        if design in DENSER_RINGS:  # >= 70 light pixels for each of the ring's fewest satellites
            assert light >= 70 * DENSER_RINGS[design][0], light
    for image_id in np.flatnonzero(per_image == 0) + 1:  # a decoy's ring is dark
        img = np.asarray(Image.open(out / "images" / f"{image_id:06d}.png")).astype(float)
        assert (img.max(-1) < COLOUR_CUE["cross"][1]).sum() > 100
        if design not in ("colour_decoy", "pair_mid_decoy"):  # one token: nothing light at all
            assert (img.min(-1) >= COLOUR_CUE["disc"][0]).sum() < 10


def test_large_outline_design_sizes_and_counts(tmp_path):
    _, coco = _generate(tmp_path, "outline", "large_outline", n=30)
    side = min(SIZE)
    longest = [max(a["bbox"][2:]) for a in coco["annotations"]]
    # a shape of size s spans between ~0.5 s (a flat box) and ~1.42 s (a box at 45 degrees)
    assert min(longest) >= 0.5 * LARGE_SIZES[0] * side
    assert max(longest) <= min(side, 1.42 * LARGE_SIZES[1] * side)
    per_image = np.bincount([a["image_id"] for a in coco["annotations"]], minlength=31)[1:]
    assert per_image.max() <= LARGE_COUNT[1] and per_image.mean() >= 1.0


@pytest.mark.parametrize(
    "design, sizes, count, gap",
    [
        ("small", PACKED_SIZES, PACKED_COUNT, PACKED_GAP),  # small_packed
        ("small_dense", SMALL_SIZES, SMALL_COUNT, SMALL_GAP),  # tried before
    ],
)
def test_small_designs_sizes_counts_and_gaps(tmp_path, design, sizes, count, gap):
    _, coco = _generate(tmp_path, "small", design, n=20)
    longest = [max(a["bbox"][2:]) for a in coco["annotations"]]
    assert min(longest) >= 0.5 * sizes[0] and max(longest) <= 1.42 * sizes[1]
    by_image = {}
    for a in coco["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a["bbox"])
    counts = [len(v) for v in by_image.values()]
    assert max(counts) <= count[1] and np.mean(counts) >= 0.6 * count[0] + 4
    for boxes in by_image.values():  # dense, but no two boxes closer than the gap
        for i, (x0, y0, w0, h0) in enumerate(boxes):
            for x1, y1, w1, h1 in boxes[i + 1 :]:
                gap_x = max(x1 - (x0 + w0), x0 - (x1 + w1))
                gap_y = max(y1 - (y0 + h0), y0 - (y1 + h1))
                assert max(gap_x, gap_y) >= gap - 1e-6


def test_unknown_variant_is_refused(tmp_path):
    with pytest.raises(ValueError, match="variant 'huge' unknown; accepted"):
        generate_shapes(os.fspath(tmp_path), num_images=1, seed=0, variant="huge")


def test_registered_variant_splits_and_unchanged_shapes_splits():
    for variant in ("large", "small"):
        for split in ("train", "arch", "dev", "val"):
            meta = MetadataCatalog.get(f"nats_{variant}_{split}")
            assert meta.nats_shapes["variant"] == variant
            side = (192, 192) if variant == "large" else SIZE
            assert tuple(meta.nats_shapes["image_size"]) == side
            assert f"nats_{variant}_{split}" in DatasetCatalog.list()
    for design in ("context_far", "context_colour"):  # the designs on trial, at their own size
        for split in ("train", "arch", "dev", "val"):
            meta = MetadataCatalog.get(f"nats_{design}_{split}").nats_shapes
            assert meta["variant"] == design and tuple(meta["image_size"]) == (256, 256)
    seeds = [s for _, s, _ in shapes_module.VARIANT_SPLITS.values()]
    seeds += [s for _, s, _ in shapes_module.TRIAL_SPLITS.values()]
    seeds += [s for s, _ in shapes_module.BUILTIN_SPLITS.values()]
    assert len(seeds) == len(set(seeds)), "two splits share a seed"
    meta = MetadataCatalog.get("nats_shapes_val").nats_shapes
    assert "variant" not in meta  # the old task's folder names and files are unchanged
    assert os.path.basename(shapes_module._split_dir(300, 3, (256, 320))).startswith(
        "shapes_v1_n300_256x320_seed3"
    )


def _testbed_cfg(config="configs/TestBed/faster_rcnn_R_50_FPN_nats_testbed.yaml"):
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, config))
    return cfg


@pytest.mark.parametrize(
    "variant, side, keep_empty",
    [("large", 192, True), ("small", 128, False), ("context_far", 256, False)]
    + [("dense_mid_decoy", 192, True), ("ring_decoy", 192, True), ("far_decoy", 256, True)],
)
def test_variant_config_opts_set_the_image_size_and_keep_empty_images(variant, side, keep_empty):
    cfg = _testbed_cfg()
    assert cfg.INPUT.MIN_SIZE_TEST == 128 and cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
    cfg.merge_from_list(shapes_module.variant_config_opts(variant))
    assert tuple(cfg.INPUT.MIN_SIZE_TRAIN) == (side,) and cfg.INPUT.MIN_SIZE_TEST == side
    assert cfg.INPUT.MAX_SIZE_TRAIN == side and cfg.INPUT.MAX_SIZE_TEST == side
    assert cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS is not keep_empty
    assert (design_of(variant) in EMPTY_IMAGES) is keep_empty


@pytest.mark.parametrize("name", [*PANEL, "random_a", "random_b"])
def test_panel_files_are_valid_and_fit_the_testbed_network(name):
    path = os.path.join(ROOT, "configs", "TestBed", "panel", f"{name}.json")
    arch = load_architecture(path)
    cfg = _testbed_cfg()
    cfg.MODEL.NATS.ARCHITECTURE = path
    check_train_config(cfg)  # parsed, matched against the ResNet the config builds
    rule = PANEL.get(name)
    if rule is not None:
        for block, b in arch.blocks.items():
            stage_rule = rule.get(block.split(".")[0], [((1, 1), 1.0)])
            shares = {g.dilation: g.channels / b.out_channels for g in b.genotypes}
            assert shares == {tuple(d): s for d, s in stage_rule}, block


def test_committed_panel_is_what_the_bench_writes(tmp_path):
    from bench_fixed_architectures import write_panel

    write_panel(os.fspath(tmp_path))
    committed = os.path.join(ROOT, "configs", "TestBed", "panel")
    assert sorted(os.listdir(tmp_path)) == sorted(os.listdir(committed))
    for f in os.listdir(tmp_path):
        with open(tmp_path / f) as a, open(os.path.join(committed, f)) as b:
            assert json.load(a) == json.load(b), f


def test_fixed_architecture_refuses_a_dilation_outside_the_candidates():
    cfg = _testbed_cfg("configs/TestBed/search_testbed_R_50_FPN_G16.yaml")
    import torch

    blocks = [("res3.0", torch.zeros(4, 5), cfg.MODEL.NATS.CANDIDATES.RES3, 64)]
    with pytest.raises(ValueError, match=r"block res3.0: dilation \(5, 5\) is not a candidate"):
        fixed_architecture(blocks, cfg, rule={"res3": [((5, 5), 1.0)]})
    with pytest.raises(ValueError, match="add up to"):
        fixed_architecture(blocks, cfg, rule={"res3": [((1, 1), 0.5)]})
