#!/usr/bin/env python
"""The main job on CPU, on the built-in shapes dataset: the whole NATS pipeline in minutes.

1. search (``search_net.py``: supernet, alternating weight/architecture steps) -> architecture.json
   and the architecture heatmap;
2. retrain the stock baseline and the decoded NATS network (``train_net.py``), each evaluated on
   ``nats_shapes_val`` with COCOEvaluator at the end;
3. ERF maps of both (``visualize_erf.py``);
4. a summary table. Everything lands in ``output/demo/`` (``--output`` to change).
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEARCH_CONFIG = "configs/Demo/search_shapes_R_50_FPN_G16.yaml"
BASELINE_CONFIG = "configs/Demo/faster_rcnn_R_50_FPN_shapes.yaml"
NATS_CONFIG = "configs/Demo/faster_rcnn_R_50_FPN_nats_shapes.yaml"


def step(title, args):
    print(f"\n=== {title}\n$ {' '.join(args)}", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)
    print(f"=== {title}: done in {time.perf_counter() - start:.0f} s", flush=True)


def final_metrics(output_dir):
    """The last evaluation results that Detectron2's trainer wrote to metrics.json."""
    rows = []
    with open(os.path.join(output_dir, "metrics.json")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    evals = [r for r in rows if "bbox/AP" in r]
    return evals[-1] if evals else {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="output/demo")
    args = parser.parse_args()
    out = args.output
    search_dir, base_dir, nats_dir = (os.path.join(out, d) for d in ("search", "baseline", "nats"))
    arch_file = os.path.join(search_dir, "architecture.json")

    step("1/4 search", ["search_net.py", "--config-file", SEARCH_CONFIG, "OUTPUT_DIR", search_dir])
    step(
        "2/4 retrain + evaluate the baseline",
        ["train_net.py", "--config-file", BASELINE_CONFIG, "OUTPUT_DIR", base_dir],
    )
    step(
        "3/4 retrain + evaluate the decoded NATS network",
        ["train_net.py", "--config-file", NATS_CONFIG, "OUTPUT_DIR", nats_dir]
        + ["MODEL.NATS.ARCHITECTURE", arch_file],
    )
    erf_png = os.path.join(out, "erf.png")
    step(
        "4/4 effective receptive fields",
        ["visualize_erf.py", "--output", erf_png]
        + ["--panel", f"baseline:{BASELINE_CONFIG}:{os.path.join(base_dir, 'model_final.pth')}"]
        + ["--panel", f"NATS:{NATS_CONFIG}:{os.path.join(nats_dir, 'model_final.pth')}"]
        + ["MODEL.NATS.ARCHITECTURE", arch_file],
    )

    print("\n=== summary (nats_shapes_val, bbox)")
    keys = ("AP", "AP50", "AP75", "APs", "APm", "APl")
    print(f"{'model':<10}" + "".join(f"{k:>8}" for k in keys))
    for name, d in (("baseline", base_dir), ("NATS", nats_dir)):
        m = final_metrics(d)
        print(f"{name:<10}" + "".join(f"{m.get('bbox/' + k, float('nan')):>8.2f}" for k in keys))
    with open(os.path.join(out, "erf.txt")) as f:
        print("\n=== effective receptive fields\n" + f.read(), end="")
    print(f"architecture: {arch_file}; pictures: {search_dir}/*.png, {erf_png}")


if __name__ == "__main__":
    main()
