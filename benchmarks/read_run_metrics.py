"""Read the evaluations (AP, AP50, AP75 at each evaluated iteration) and the last box-classifier
accuracies out of finished ``bench_fixed_architectures.py`` runs, into one JSON.

``bench_fixed_architectures.py`` keeps AP, APs, APm and APl; whether a design's class (or
objectness) cue was learned shows in AP50 and in ``fast_rcnn/fg_cls_accuracy``, which each run's
``metrics.json`` holds. Read-only: nothing is retrained.

    python benchmarks/read_run_metrics.py output/colour_decoy output/far_decoy \\
        --json benchmarks/results/design_cues_2026-12-07_ap50.json
"""

import argparse
import glob
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from projects.nats.atomic import atomic_open  # noqa: E402

KEYS = ("AP", "AP50", "AP75")
LAST = 5  # the last logged fg_cls_accuracy values (every 20 iterations: the last 100)


def read_run(path):
    """One run's evaluations and last ``fg_cls_accuracy`` values from its metrics.json."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    evals = [r for r in rows if "bbox/AP50" in r]
    if not evals:
        raise RuntimeError(f"{path} has no bbox evaluation (bbox/AP50)")
    fg = [r["fast_rcnn/fg_cls_accuracy"] for r in rows if "fast_rcnn/fg_cls_accuracy" in r]
    return {
        "evaluations": [
            {"iteration": r["iteration"], **{k: round(r[f"bbox/{k}"], 2) for k in KEYS}}
            for r in evals
        ],
        "fg_cls_accuracy_last": [round(v, 3) for v in fg[-LAST:]],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outputs", nargs="+", help="bench_fixed_architectures.py --output dirs")
    parser.add_argument("--json", required=True, help="where to write the table")
    args = parser.parse_args(argv)
    runs = {}
    for out in args.outputs:
        paths = sorted(glob.glob(os.path.join(out, "*", "*", "seed*", "metrics.json")))
        if not paths:
            parser.error(f"{out}: no <design>/<arch>/seed<k>/metrics.json under it")
        for path in paths:
            key = os.path.relpath(os.path.dirname(path), os.path.dirname(out.rstrip("/")))
            runs[key] = read_run(path)
            print(key, runs[key]["evaluations"], runs[key]["fg_cls_accuracy_last"])
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    table = {"command": "python " + " ".join(sys.argv), "commit": commit, "runs": runs}
    with atomic_open(args.json, "w") as f:
        json.dump(table, f, indent=1)


if __name__ == "__main__":
    main()
