"""README's own-dataset recipe, run as written (bash) on a generated 20-image COCO-format dataset.

The ```bash block under README's "own dataset" heading is run from the repository root with this
interpreter for ``.venv/bin/python``; only the placeholders are replaced: ``my/`` (the user's
files) and ``output/`` (a temporary folder). Each step's output is checked: the search's recorded
network and final flag, the written config, COCO AP printed by training and by ``--eval-only``.
"""

import json
import os
import re
import subprocess
import sys

from projects.nats.data import generate_shapes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_recipe(readme=os.path.join(ROOT, "README.md")):
    text = open(readme).read()
    heading = re.search(r"^## .*own dataset.*$", text, flags=re.M | re.I)
    assert heading, "README.md has no heading with 'own dataset'"
    block = re.search(r"```bash\n(.*?)```", text[heading.end() :], flags=re.S)
    assert block, "no ```bash block after README's 'own dataset' heading"
    return block.group(1)


def _user_files(my):
    generate_shapes(os.fspath(my / "all"), num_images=20, seed=78, image_size=(96, 128))
    coco = json.loads((my / "all" / "annotations.json").read_text())
    (my / "images").symlink_to(my / "all" / "images")
    for name, ids in (("train", range(1, 13)), ("arch", range(13, 17)), ("val", range(17, 21))):
        part = dict(coco)
        part["images"] = [i for i in coco["images"] if i["id"] in ids]
        part["annotations"] = [a for a in coco["annotations"] if a["image_id"] in ids]
        (my / f"{name}.json").write_text(json.dumps(part))


def test_readme_own_data_recipe_runs_as_written(tmp_path):
    script = readme_recipe()
    for placeholder in ("my/", "output/", ".venv/bin/python"):
        assert placeholder in script, f"the recipe no longer uses {placeholder!r}: update this test"
    my, out = tmp_path / "my", tmp_path / "output"
    my.mkdir()
    _user_files(my)
    script = script.replace(".venv/bin/python", sys.executable)
    script = script.replace("my/", f"{my}/").replace("output/", f"{out}/")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    meta = json.loads((out / "my_search" / "architecture.json").read_text())["meta"]
    assert meta["final"] is True and meta["network"]["DATASETS.TRAIN"] == ["my_train"]
    assert "build_nats_resnet_fpn_backbone" in (out / "my_retrain.yaml").read_text()
    assert log.count("Evaluation results for bbox") == 2, "training and --eval-only print AP"
    assert (out / "my_search_retrain" / "model_final.pth").is_file()
