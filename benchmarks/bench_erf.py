#!/usr/bin/env python
"""Time of one ERF measurement (every ResNet stage and FPN level, ``erf_maps``) on CPU.

For the demo network (``configs/Demo/faster_rcnn_R_50_FPN_shapes.yaml``, at the ERF hook's
default 512x512 input) and for R50-FPN (``configs/Baselines/faster_rcnn_R_50_FPN_1x.yaml``) at
800x1216, random weights, FrozenBN; beside each, one inference forward of the same backbone on the
same input, measured in the same run, so the ratio says what a measurement costs.

    python benchmarks/bench_erf.py            # 2 threads, ~1-2 minutes
"""

import argparse
import os
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_backbone  # noqa: E402

from projects.nats import add_nats_config  # noqa: E402
from projects.nats.erf import available_features, erf_maps  # noqa: E402

CASES = {
    "demo network, 512x512": ("configs/Demo/faster_rcnn_R_50_FPN_shapes.yaml", (512, 512)),
    "R50-FPN, 800x1216": ("configs/Baselines/faster_rcnn_R_50_FPN_1x.yaml", (800, 1216)),
}


def _median_seconds(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'case':<24}{'maps':>6}{'ERF (s)':>10}{'forward (s)':>13}{'ratio':>8}")
    for name, (config, size) in CASES.items():
        cfg = get_cfg()
        add_nats_config(cfg)
        cfg.merge_from_file(os.path.join(ROOT, config))
        cfg.MODEL.DEVICE, cfg.MODEL.WEIGHTS, cfg.MODEL.RESNETS.NORM = "cpu", "", "FrozenBN"
        torch.manual_seed(0)
        backbone = build_backbone(cfg).eval()
        features = available_features(backbone)
        x = torch.ones(1, 3, *size)

        def forward():
            with torch.no_grad():
                backbone(x)

        erf = _median_seconds(lambda: erf_maps(backbone, features, size), args.repeat)
        fwd = _median_seconds(forward, args.repeat)
        print(f"{name:<24}{len(features):>6}{erf:>10.2f}{fwd:>13.2f}{erf / fwd:>8.1f}")


if __name__ == "__main__":
    main()
