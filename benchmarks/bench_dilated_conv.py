#!/usr/bin/env python
"""The cost of a bare 3x3 conv at each candidate dilation, and of one conv split in two halves,
against the dilation-1 conv measured in the same run: is a decoded block's extra time in the
dilations' arithmetic, or in the split?

    python benchmarks/bench_dilated_conv.py [--threads 2]

Shapes: the searched 3x3 convs of R50 at a 512x672 input (res3: 128 channels at 64x84, res4: 256
at 32x42, res5: 512 at 16x21), one image, NCHW, on CPU.
"""

import argparse
import time

import torch
import torch.nn.functional as F

SHAPES = {"res3": (128, 64, 84), "res4": (256, 32, 42), "res5": (512, 16, 21)}
DILATIONS = [(1, 1), (2, 2), (3, 3), (5, 5), (1, 3), (3, 1)]


def median_ms(fns, *, repeats, warmup=5):
    """Median time of each function in milliseconds, measured round-robin (each repeat calls every
    function once, starting at a different one) so that a slow spell of the host hits them all."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for r in range(repeats):
        for i in range(len(fns)):
            j = (i + r) % len(fns)
            start = time.perf_counter()
            fns[j]()
            times[j].append(time.perf_counter() - start)
    return [sorted(t)[len(t) // 2] * 1e3 for t in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"threads={args.threads} repeats={args.repeats}; x = median time / dilation 1's median\n")
    names = [f"{dh}x{dw}" for dh, dw in DILATIONS] + ["halves 1x1|2x2"]
    print("| stage | channels x H x W | 1x1 ms | " + " | ".join(f"x {n}" for n in names) + " |")
    print("|---" * (len(names) + 3) + "|")
    for stage, (c, h, w) in SHAPES.items():
        x, weight = torch.randn(1, c, h, w), torch.randn(c, c, 3, 3)
        top, bottom = weight[: c // 2].contiguous(), weight[c // 2 :].contiguous()

        def conv(d):
            return lambda: F.conv2d(x, weight, None, 1, d, d)

        def halves():
            torch.cat([F.conv2d(x, top, None, 1, 1, 1), F.conv2d(x, bottom, None, 1, 2, 2)], 1)

        ms = median_ms([conv(d) for d in DILATIONS] + [halves], repeats=args.repeats)
        ratios = " | ".join(f"{m / ms[0]:.3f}" for m in ms)
        print(f"| {stage} | {c} x {h} x {w} | {ms[0]:.2f} | {ratios} |")


if __name__ == "__main__":
    main()
