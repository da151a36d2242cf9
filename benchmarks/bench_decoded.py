#!/usr/bin/env python
"""Inference latency of the decoded NATS network vs. the stock one, measured in the same run.

R50-FPN Faster R-CNN at 512x672 (random weights, eval mode), decoded with the committed
reference architecture (G=16, setting C). Stock and decoded runs alternate in ABBA order (so
neither always runs second); reported for the ResNet bottom-up, the FPN backbone and the whole
detector: the ratio of the medians, and the median of the ratios of back-to-back pairs (steadier
when the machine's speed drifts). Then each searched conv alone on its real input, stock vs
decoded (short ABBA runs, which machine drift hardly enters), and what their summed extra time
makes of the ResNet.

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


def _ab(runs, repeats, warmup):
    """Median ms of ``runs["stock"]`` and ``runs["decoded"]`` in ABBA order (so neither always
    runs second), and the median ratio of back-to-back pairs."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times = {k: [] for k in runs}
    for i in range(repeats):
        for k in ("stock", "decoded") if i % 2 == 0 else ("decoded", "stock"):
            times[k].append(runs[k]())
    s, d = (statistics.median(times[k]) * 1000 for k in ("stock", "decoded"))
    return s, d, statistics.median(a / b for a, b in zip(times["decoded"], times["stock"]))


def _per_layer(models, x, args, bottom_up_ms):
    """Each searched conv (with its norm) alone on its real input, stock vs decoded: short
    runs, so machine drift hardly enters; their summed extra time against the whole ResNet."""
    stock, decoded = (dict(m.backbone.bottom_up.named_modules()) for m in models.values())
    names = [  # in module order: res3.0, res3.1, ...
        n
        for n, m in decoded.items()
        if isinstance(m, SplitDilationConv) or (n.endswith(".conv2") and m.dilation != (1, 1))
    ]
    inputs = {}
    handles = [
        stock[n].register_forward_pre_hook(lambda m, a, n=n: inputs.setdefault(n, a[0]))
        for n in names
    ]
    models["stock"].backbone.bottom_up(x)
    for h in handles:
        h.remove()
    totals, rows = [0.0, 0.0], []
    for n in names:
        runs = {
            "stock": _timer(lambda n=n: stock[n](inputs[n]), args.device),
            "decoded": _timer(lambda n=n: decoded[n](inputs[n]), args.device),
        }
        s, d, _ = _ab(runs, args.layer_repeats, args.warmup)
        totals[0], totals[1] = totals[0] + s, totals[1] + d
        pieces = len(getattr(decoded[n], "pieces", [None]))
        rows.append(f"| {n[: -len('.conv2')]:8s} | {pieces:6d} | {s:8.2f} | {d:10.2f} |")
    print("\n| block    | convs  | stock ms | decoded ms |")
    print("|----------|--------|----------|------------|")
    print("\n".join(rows))
    extra = totals[1] - totals[0]
    print(
        f"| all      |        | {totals[0]:8.2f} | {totals[1]:10.2f} |\nsearched convs: "
        f"{extra:+.1f} ms per image = {extra / bottom_up_ms:+.1%} of the stock ResNet "
        f"({bottom_up_ms:.0f} ms): ResNet ratio {1 + extra / bottom_up_ms:.3f} by per-layer timing"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/Baselines/faster_rcnn_R_50_FPN_1x.yaml")
    parser.add_argument("--architecture", default=REFERENCE)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 672))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--layer-repeats", type=int, default=100, help="per searched conv")
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
    bottom_up_ms = None
    with torch.no_grad():
        for part, fn in parts.items():
            runs = {k: _timer(lambda m=m: fn(m), args.device) for k, m in models.items()}
            s, d, paired = _ab(runs, args.repeats, args.warmup)
            print(f"| {part:24s} | {s:8.1f} | {d:10.1f} | {d / s:14.3f} | {paired:12.3f} |")
            if part.startswith("bottom-up"):
                bottom_up_ms = s
        _per_layer(models, x, args, bottom_up_ms)


if __name__ == "__main__":
    main()
