#!/usr/bin/env python
"""How noisy is AP on an evaluation split of N images? Disjoint folds of a finished evaluation.

Reads the detections a retraining wrote (``inference/coco_instances_results.json``) and its
dataset's annotations, splits the images into ``--folds`` disjoint folds, and prints the AP of
each fold with pycocotools. The standard deviation over folds of n images is the noise of AP on an
n-image split; divided by sqrt(folds), it approximates the standard error of the AP on all of them.

    python benchmarks/bench_eval_split.py --run output/demo/baseline --dataset nats_shapes_val
"""

import argparse
import contextlib
import io
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def fold_aps(results_file, annotations_file, folds):
    """bbox AP (x100) on each of ``folds`` disjoint, interleaved folds of the images."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(annotations_file)
        with open(results_file) as f:
            dets = gt.loadRes(json.load(f))
    ids = sorted(gt.getImgIds())
    aps = []
    for k in range(folds):
        ev = COCOeval(gt, dets, "bbox")
        ev.params.imgIds = ids[k::folds]
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        aps.append(100 * ev.stats[0])
    return aps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a train_net.py OUTPUT_DIR, evaluated")
    parser.add_argument("--dataset", default="nats_shapes_val")
    parser.add_argument("--folds", type=int, default=10)
    args = parser.parse_args()
    from detectron2.data import DatasetCatalog, MetadataCatalog

    import projects.nats  # noqa: F401  # registers the built-in datasets

    DatasetCatalog.get(args.dataset)  # generates a built-in split if needed
    annotations = MetadataCatalog.get(args.dataset).json_file
    results = os.path.join(args.run, "inference", "coco_instances_results.json")
    aps = fold_aps(results, annotations, args.folds)
    n = len(json.load(open(annotations))["images"])
    sd = statistics.stdev(aps)
    print(f"{args.dataset}: {n} images in {args.folds} folds of ~{n // args.folds}")
    print("fold AP: " + " ".join(f"{a:.1f}" for a in aps))
    print(
        f"sd of AP on {n // args.folds} images: {sd:.2f}; "
        f"approx. standard error on all {n}: {sd / args.folds ** 0.5:.2f}"
    )


if __name__ == "__main__":
    main()
