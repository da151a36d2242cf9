"""Own data from the command line alone (docs/OWN_DATA.md): --dataset, make_retrain_config.py's
errors, MODEL.DEVICE checked first, and no config/preflight import circle. The documented command
sequence itself runs in tests/test_readme_recipe.py."""

import argparse
import ast
import json
import os
import subprocess
import sys

import pytest
import torch

from projects.nats.data import generate_shapes
from projects.nats.data.cli_datasets import parse_dataset, register_datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_SEARCH = "configs/Demo/demo_shapes_R_50_FPN_tiny.yaml"
TINY_RETRAIN = "configs/Demo/faster_rcnn_R_50_FPN_nats_tiny.yaml"


def _own_dataset(root):
    """20 images as a user's COCO files: train (12), arch (4), val (4), one image folder."""
    generate_shapes(os.fspath(root / "all"), num_images=20, seed=77, image_size=(96, 128))
    coco = json.loads((root / "all" / "annotations.json").read_text())
    specs = {}
    for name, ids in (("train", range(1, 13)), ("arch", range(13, 17)), ("val", range(17, 21))):
        part = dict(coco)
        part["images"] = [i for i in coco["images"] if i["id"] in ids]
        part["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
        path = root / f"{name}.json"
        path.write_text(json.dumps(part))
        specs[name] = f"my_{name}={path}:{root / 'all' / 'images'}"
    return specs


def _run(args, cwd=ROOT):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_dataset_option_errors(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "img").mkdir()
    for text, match in (
        ("no_equals", "expected NAME=COCO_JSON:IMAGE_DIR"),
        ("x=only_json", "expected NAME=COCO_JSON:IMAGE_DIR"),
        (f"x={tmp_path}/missing.json:{tmp_path}/img", "is not a file"),
        (f"x={tmp_path}/a.json:{tmp_path}/nope", "is not a folder"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=match):
            parse_dataset(text)
    name, json_file, image_dir = parse_dataset(f"cli_ok={tmp_path}/a.json:{tmp_path}/img")
    register_datasets([(name, json_file, image_dir)])
    register_datasets([(name, json_file, image_dir)])  # the same files again: fine
    with pytest.raises(ValueError, match="cli_ok is registered already"):
        register_datasets([(name, json_file, os.fspath(tmp_path))])


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_cuda_device_without_cuda_is_refused_before_writing(tmp_path):
    out_dir = tmp_path / "out"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    for script, config in (("train_net.py", TINY_RETRAIN), ("search_net.py", TINY_SEARCH)):
        proc = subprocess.run(
            [sys.executable, script, "--config-file", config]
            + ["MODEL.DEVICE", "cuda", "OUTPUT_DIR", os.fspath(out_dir)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode != 0
        assert "MODEL.DEVICE = 'cuda'" in proc.stderr and "'cpu'" in proc.stderr
        assert not out_dir.exists()


def test_make_retrain_config_errors(tmp_path):
    proc = subprocess.run(
        [sys.executable, "tools/make_retrain_config.py", "--search-dir", os.fspath(tmp_path)]
        + ["--output", os.fspath(tmp_path / "x.yaml")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and "no architecture.json" in proc.stderr
    assert not (tmp_path / "x.yaml").exists()
    src = os.path.join(ROOT, "configs", "TestBed", "panel", "all_d1.json")  # no network recorded
    (tmp_path / "architecture.json").write_text(open(src).read())
    proc = subprocess.run(
        [sys.executable, "tools/make_retrain_config.py", "--search-dir", os.fspath(tmp_path)]
        + ["--output", os.fspath(tmp_path / "x.yaml"), "--base", "configs/none.yaml"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and "no config.yaml beside it" in proc.stderr


def _imports(path):
    tree = ast.parse(open(os.path.join(ROOT, path)).read())
    names = set()
    for node in ast.walk(tree):  # module-level and function-level imports alike
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
    return names


def test_config_and_preflight_do_not_import_each_other():
    assert ".config" not in _imports("projects/nats/preflight.py")
    assert ".preflight" in _imports("projects/nats/config.py")
    assert ".config" not in _imports("projects/nats/defaults.py")
    out = subprocess.run(
        [sys.executable, "-c", "import projects.nats.preflight as p; print(p.add_nats_config)"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
