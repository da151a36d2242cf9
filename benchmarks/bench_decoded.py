#!/usr/bin/env python
"""Inference latency of the decoded NATS network vs. the stock one, measured in the same run.

R50-FPN Faster R-CNN at 512x672 (random weights, eval mode), decoded with the committed
reference architecture (G=16, setting C). Stock and decoded runs alternate; reported for the
ResNet bottom-up, the FPN backbone and the whole detector: the ratio of the medians, and the
median of the ratios of back-to-back pairs (steadier when the machine's speed drifts).

    python benchmarks/bench_decoded.py                      # CPU, 2 threads
    python benchmarks/bench_decoded.py --device cuda --repeats 50
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from projects.nats import add_nats_config  # noqa: E402
from projects.nats.split_conv import SplitDilationConv  # noqa: E402

__all__ = ["main"]

REFERENCE = "configs/NATS/architectures/reference_R50_G16_settingC.json"


def _cfg(args, decoded):
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(args.config)
    cfg.MODEL.DEVICE = args.device
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.RESNETS.NORM = "FrozenBN"
    cfg.MODEL.BACKBONE.NAME = (
        "build_nats_resnet_fpn_backbone" if decoded else "build_resnet_fpn_backbone"
    )
    cfg.MODEL.NATS.ARCHITECTURE = args.architecture
    return cfg


def _timer(fn, device):
    def run():
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/Baselines/faster_rcnn_R_50_FPN_1x.yaml")
    parser.add_argument("--architecture", default=REFERENCE)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 672))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--channels-last", action="store_true", help="both models in NHWC")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models = {}
    for name, decoded in (("stock", False), ("decoded", True)):
        models[name] = build_model(_cfg(args, decoded)).eval()
    models["decoded"].load_state_dict(models["stock"].state_dict())
    n_split = sum(isinstance(m, SplitDilationConv) for m in models["decoded"].modules())
    image = torch.rand(3, *args.size, device=args.device) * 255
    x = models["stock"].preprocess_image([{"image": image}]).tensor
    if args.channels_last:  # oneDNN reads NHWC directly: no per-slice input reorder
        x = x.contiguous(memory_format=torch.channels_last)
        for m in models.values():
            m.backbone.to(memory_format=torch.channels_last)
    parts = {
        "bottom-up (ResNet)": lambda m: m.backbone.bottom_up(x),
        "backbone (ResNet+FPN)": lambda m: m.backbone(x),
        "whole detector": lambda m: m([{"image": image}]),
    }
    print(
        f"device={args.device} threads={torch.get_num_threads()} input={args.size} "
        f"channels_last={args.channels_last} split convs={n_split} repeats={args.repeats}"
    )
    print(f"| {'part':24s} | stock ms | decoded ms | ratio (median) | ratio (paired) |")
    print(f"|{'-' * 26}|----------|------------|----------------|--------------|")
    with torch.no_grad():
        for part, fn in parts.items():
            runs = {k: _timer(lambda m=m: fn(m), args.device) for k, m in models.items()}
            for _ in range(args.warmup):
                for run in runs.values():
                    run()
            times = {k: [] for k in runs}
            for _ in range(args.repeats):
                for k, run in runs.items():
                    times[k].append(run())
            s, d = (statistics.median(times[k]) * 1000 for k in ("stock", "decoded"))
            paired = statistics.median(a / b for a, b in zip(times["decoded"], times["stock"]))
            print(f"| {part:24s} | {s:8.1f} | {d:10.1f} | {d / s:14.3f} | {paired:12.3f} |")


if __name__ == "__main__":
    main()
