#!/usr/bin/env python
"""The main job on CPU, on the built-in shapes dataset: NATS against the baseline and a random
architecture, from one ImageNet stand-in, in minutes.

0. pretrain the ImageNet stand-in (Detectron2's stock ResNet of the demo on a shapes
   classification task; cached, so it trains once) -> an MSRA-style ``.pkl``;
1. search from it (``search_net.py``) -> ``architecture.json``, its heatmap, and whether the
   search decided (``search_decision.json``: per-stage entropy and argmax stability);
2. draw a random architecture of the same search space (``tools/make_random_architecture.py``);
3. retrain the stock baseline, the NATS network and the random one from the stand-in with one
   schedule, data and seed (``train_net.py``), each evaluated on ``nats_shapes_val`` by
   COCOEvaluator;
4. their ERF maps (``visualize_erf.py``);
5. ``summary.json`` and ``summary.md``, printed at the end. Everything lands in ``output/demo/``.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pipeline import run_pipeline, summary_markdown  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="output/demo")
    parser.add_argument("--seed", type=int, default=1, help="of the search, retrainings, draw")
    args = parser.parse_args()
    summary = run_pipeline(args.output, seed=args.seed)
    print("\n" + summary_markdown(summary))
    print(
        f"summary: {args.output}/summary.json, {args.output}/summary.md; pictures: "
        f"{args.output}/search/architecture_heatmap.png, {args.output}/erf.png"
    )


if __name__ == "__main__":
    main()
