"""README's own-dataset recipe, run as written on a tiny COCO-format dataset made here.

The python block under README's "own dataset" heading is copied into a file and run with this
interpreter from the repository root, as a user would. Only its clearly marked placeholders are
replaced (data paths, weights, GPU count, config files, output folders), and fast overrides are
appended after each ``OUTPUT_DIR``: 1/8-width networks, 96x128 images, two iterations each.
"""

import json
import os
import pickle
import re
import subprocess
import sys

import detectron2.data.datasets
import detectron2.engine
import pytest
from detectron2.data import DatasetCatalog
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone
from PIL import Image, ImageDraw

import search_net
import train_net
from projects.nats import add_nats_config
from projects.nats.architecture import (
    decode_architecture_from_cfg,
    load_architecture,
    save_architecture,
)
from projects.nats.config import check_search_config, check_train_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_SEARCH = "configs/Demo/demo_shapes_R_50_FPN_tiny.yaml"
DECODED = "configs/Demo/faster_rcnn_R_50_FPN_nats_shapes.yaml"
CATEGORIES = [{"id": 1, "name": "box"}, {"id": 2, "name": "bar"}, {"id": 3, "name": "post"}]
SPLITS = {"train": 6, "arch": 4, "val": 3}
H, W = 96, 128

_TINY = [
    "MODEL.DEVICE", "cpu",
    "MODEL.RESNETS.NORM", "BN",
    "MODEL.RESNETS.STEM_OUT_CHANNELS", "16",
    "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
    "MODEL.RESNETS.WIDTH_PER_GROUP", "8",
    "MODEL.FPN.OUT_CHANNELS", "32",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN", "200",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN", "50",
    "MODEL.RPN.PRE_NMS_TOPK_TEST", "200",
    "MODEL.RPN.POST_NMS_TOPK_TEST", "50",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
    "MODEL.ROI_BOX_HEAD.FC_DIM", "32",
    "INPUT.MIN_SIZE_TRAIN", f"({H},)",
    "INPUT.MAX_SIZE_TRAIN", str(W),
    "INPUT.MIN_SIZE_TEST", str(H),
    "INPUT.MAX_SIZE_TEST", str(W),
    "DATALOADER.NUM_WORKERS", "0",
    "SOLVER.IMS_PER_BATCH", "2",
    "SOLVER.MAX_ITER", "2",
    "SOLVER.STEPS", "()",
    "SOLVER.WARMUP_ITERS", "0",
    "SOLVER.CHECKPOINT_PERIOD", "100000",
]  # fmt: skip
FAST_SEARCH = _TINY + [
    "MODEL.NATS.GROUPS.VALUE", "4",
    "MODEL.NATS.SEARCH.EPOCHS", "0",
    "MODEL.NATS.SEARCH.WARMUP_ITERS", "1",
    "MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH", "2",
    "MODEL.NATS.SEARCH.LOG_PERIOD", "1",
]  # fmt: skip
FAST_RETRAIN = _TINY + [
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",  # a 2-iteration model: keep its detections
    "TEST.DETECTIONS_PER_IMAGE", "20",
]  # fmt: skip


def readme_recipe(readme=os.path.join(ROOT, "README.md")):
    """The first python block after the first heading that mentions "own dataset"."""
    text = open(readme, encoding="utf-8").read()
    heading = re.search(r"^#+ .*own dataset.*$", text, flags=re.MULTILINE | re.IGNORECASE)
    assert heading, "README.md has no heading with 'own dataset'"
    block = re.search(r"^```python\n(.*?)^```", text[heading.end() :], re.MULTILINE | re.DOTALL)
    assert block, "no ```python block after README's 'own dataset' heading"
    return block.group(1)


def make_coco_dataset(root):
    """Small images with 1-3 filled rectangles and one COCO json per split; returns the paths."""
    images_dir, ann_dir = root / "images", root / "annotations"
    images_dir.mkdir(parents=True)
    ann_dir.mkdir()
    image_id = ann_id = 0
    for split, n in SPLITS.items():
        images, annotations = [], []
        for _ in range(n):
            image_id += 1
            name = f"{split}_{image_id:03d}.jpg"
            img = Image.new("RGB", (W, H), (90, 90, 90))
            draw = ImageDraw.Draw(img)
            for k in range(1 + image_id % 3):
                cat = CATEGORIES[(image_id + k) % len(CATEGORIES)]["id"]
                w, h = [(40, 40), (56, 16), (14, 50)][cat - 1]
                x, y = 6 + 38 * k, 8 + 12 * (image_id % 3)
                draw.rectangle([x, y, x + w - 1, y + h - 1], fill=(60 * cat, 255 - 50 * cat, 40))
                ann_id += 1
                annotations.append(
                    {
                        "id": ann_id,
                        "image_id": image_id,
                        "category_id": cat,
                        "bbox": [x, y, w, h],
                        "area": w * h,
                        "iscrowd": 0,
                    }
                )
            img.save(images_dir / name)
            images.append({"id": image_id, "file_name": name, "height": H, "width": W})
        data = {"images": images, "annotations": annotations, "categories": CATEGORIES}
        (ann_dir / f"{split}.json").write_text(json.dumps(data))
    return images_dir, ann_dir


def _replace(code, old, new):
    assert old in code, f"README's recipe no longer contains {old!r}: update this test"
    return code.replace(old, new)


def _opts(opts):
    return ", ".join(json.dumps(o) for o in opts)


def test_readme_own_dataset_recipe_searches_and_retrains(tmp_path):
    images_dir, ann_dir = make_coco_dataset(tmp_path / "my")
    search_dir, retrain_dir = tmp_path / "my_search", tmp_path / "my_nats"
    code = readme_recipe()
    code = _replace(code, '"my/annotations/', f'"{ann_dir}/')
    code = _replace(code, '"my/images"', f'"{images_dir}"')
    code = _replace(code, 'WEIGHTS = "/path/to/R-50.pkl"', 'WEIGHTS = ""')  # random init
    code = re.sub(r"^NUM_GPUS = \d+", "NUM_GPUS = 1", code, count=1, flags=re.MULTILINE)
    assert "NUM_GPUS = 1" in code
    code = _replace(
        code, '"configs/NATS-Search/faster_rcnn_R_50_FPN_nats_search_G16.yaml"', f'"{TINY_SEARCH}"'
    )
    code = _replace(code, '"configs/NATS/faster_rcnn_R_50_FPN_nats_G16_1x.yaml"', f'"{DECODED}"')
    code = _replace(
        code,
        '"OUTPUT_DIR", "output/my_search"',
        f'"OUTPUT_DIR", "{search_dir}", {_opts(FAST_SEARCH)}',
    )
    code = _replace(
        code,
        '"OUTPUT_DIR", "output/my_nats"',
        f'"OUTPUT_DIR", "{retrain_dir}", {_opts(FAST_RETRAIN)}',
    )
    code = _replace(
        code, '"output/my_search/architecture.json"', f'"{search_dir}/architecture.json"'
    )
    assert "output/my_" not in code and '"my/' not in code
    script = tmp_path / "my_nats.py"
    script.write_text(code)

    # As `.venv/bin/python my_nats.py` from the repository root: the root is on sys.path.
    path = [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    arch = load_architecture(os.path.join(search_dir, "architecture.json"))
    stages = sorted(name.split(".")[0] for name in arch.blocks)
    assert stages == ["res3"] * 4 + ["res4"] * 6 + ["res5"] * 3
    assert all(b.num_groups == 4 for b in arch.blocks.values())
    assert os.path.isfile(search_dir / "architecture_heatmap.png")

    assert os.path.isfile(retrain_dir / "model_final.pth")
    with open(retrain_dir / "inference" / "coco_instances_results.json") as f:
        detections = json.load(f)
    assert detections and {d["category_id"] for d in detections} <= {1, 2, 3}
    val_ids = set(range(SPLITS["train"] + SPLITS["arch"] + 1, sum(SPLITS.values()) + 1))
    assert {d["image_id"] for d in detections} <= val_ids
    with open(retrain_dir / "metrics.json") as f:
        records = [json.loads(line) for line in f if line.strip()]
    assert "bbox/AP" in records[-1]


def test_readme_recipe_configs_pass_the_checks_as_written(tmp_path, monkeypatch):
    # The recipe as written (the paper's configs, 8 GPUs) up to launch(): every override is a
    # valid key of the config it is given to, and the search and retraining checks accept them.
    weights = tmp_path / "R-50.pkl"
    with open(weights, "wb") as f:
        pickle.dump({"model": {}}, f)  # the checks read the file
    code = _replace(readme_recipe(), '"/path/to/R-50.pkl"', f'"{weights}"')
    code = _replace(code, '"output/my_', f'"{tmp_path}/my_')
    registered, launched = [], []

    def register(name, *args):  # registered (the checks look) but never loaded
        registered.append((name, *args))
        DatasetCatalog.register(name, lambda: [])

    monkeypatch.setattr(detectron2.data.datasets, "register_coco_instances", register)
    monkeypatch.setattr(
        detectron2.engine, "launch", lambda main, n, **kw: launched.append((main, n, kw["args"]))
    )
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
        _check_recipe_configs(registered, launched, weights)
    finally:
        for name, *_ in registered:
            DatasetCatalog.remove(name)


def _check_recipe_configs(registered, launched, weights):
    assert [r[0] for r in registered] == ["my_train", "my_arch", "my_val"]
    assert [(main, n) for main, n, _ in launched] == [(search_net.main, 8), (train_net.main, 8)]
    (search_args,), (train_args,) = (args for _, _, args in launched)
    search = search_net.get_cfg()
    add_nats_config(search)
    search.merge_from_file(search_args.config_file)
    search.merge_from_list(search_args.opts)
    check_search_config(search, resume=False)
    assert search.DATASETS.TRAIN == ("my_train",)
    assert search.MODEL.NATS.SEARCH.ARCH.DATASETS == ("my_arch",)

    train = train_net.get_cfg()
    add_nats_config(train)
    train.merge_from_file(train_args.config_file)
    train.merge_from_list(train_args.opts)
    assert train.MODEL.NATS.ARCHITECTURE == os.path.join(search.OUTPUT_DIR, "architecture.json")
    # An architecture of the search's space for the config's R50 (the checks build it).
    supernet = build_backbone(search, ShapeSpec(channels=3))
    save_architecture(decode_architecture_from_cfg(supernet, search), train.MODEL.NATS.ARCHITECTURE)
    check_train_config(train)
    assert train.DATASETS.TRAIN == ("my_train", "my_arch") and train.DATASETS.TEST == ("my_val",)
    assert search.MODEL.ROI_HEADS.NUM_CLASSES == train.MODEL.ROI_HEADS.NUM_CLASSES == 3
    assert search.MODEL.WEIGHTS == train.MODEL.WEIGHTS == str(weights)
    assert max(train.SOLVER.STEPS) < train.SOLVER.MAX_ITER


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
