#!/usr/bin/env python
"""Where a decoded block's extra CPU time comes from: a bare 3x3 conv at each candidate dilation,
and the split conv taken apart, against the stock dilation-1 conv measured in the same run.

    python benchmarks/bench_dilated_conv.py [--steady-malloc] [--threads 2] [--repeats 30]

Shapes: the searched 3x3 convs of R50 at a 512x672 input (res3: 128 channels at 64x84, res4: 256
at 32x42, res5: 512 at 16x21), one image, NCHW, float32, inference, on CPU. Every function of a
table is timed round-robin (each repeat calls each once, in alternating order; bench_decoded.py's
timer), so a slow spell of the host hits all columns alike. Tables:

- dilations: ``F.conv2d`` at each dilation, and two half-width convs (dilation 1 and 2) plus
  their concatenation;
- split conv: ``SplitDilationConv`` (projects/nats/modeling/split_conv.py) with one genotype
  (its blocked-input path: the input's conversions, no split), with two halves (1x1 | 2x2) on
  its blocked-input path and on its plain-conv path.
"""

import argparse
import os
import statistics
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench_decoded import STEADY_MALLOC, restart_with_steady_malloc, round_robin  # noqa: E402

from projects.nats.modeling.split_conv import SplitDilationConv  # noqa: E402

SHAPES = {"res3": (128, 64, 84), "res4": (256, 32, 42), "res5": (512, 16, 21)}
DILATIONS = [(1, 1), (2, 2), (3, 3), (5, 5), (1, 3), (3, 1)]


def median_ms(fns, *, repeats):
    """Median milliseconds per call of each of ``fns``, timed round-robin."""
    times = round_robin(dict(enumerate(fns)), repeats, 5, "cpu")
    return [statistics.median(times[i]) * 1e3 for i in range(len(fns))]


def split_conv(weight, splits, *, blocked):
    conv = SplitDilationConv(
        in_channels=weight.shape[1], out_channels=weight.shape[0], splits=splits
    )
    conv.weight.data.copy_(weight)
    conv.share_blocked_input = blocked
    conv.min_pieces_to_share = 1  # the path asked for, whatever the genotype count
    return conv.eval()


def print_table(title, columns, rows):
    print(f"\n{title}\n")
    print("| stage | channels x H x W | stock 1x1 ms | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 3) + "|")
    for stage, shape, ms in rows:
        ratios = " | ".join(f"{m / ms[0]:.3f}" for m in ms[1:])
        print(f"| {stage} | {shape} | {ms[0]:.2f} | {ratios} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--steady-malloc", action="store_true", help="set " + STEADY_MALLOC)
    args = parser.parse_args()
    if args.steady_malloc:
        restart_with_steady_malloc()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(
        f"threads={args.threads} repeats={args.repeats} "
        f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r}; "
        "x = median time / the stock conv's median"
    )
    dilation_rows, split_rows = [], []
    for stage, (c, h, w) in SHAPES.items():
        x, weight = torch.randn(1, c, h, w), torch.randn(c, c, 3, 3)
        top, bottom = weight[: c // 2].contiguous(), weight[c // 2 :].contiguous()
        halves = [((1, 1), c // 2), ((2, 2), c - c // 2)]
        whole = split_conv(weight, [((1, 1), c)], blocked=True)
        blocked, plain = (split_conv(weight, halves, blocked=b) for b in (True, False))

        def conv(d):
            return lambda: F.conv2d(x, weight, None, 1, d, d)

        def conv_halves():
            torch.cat([F.conv2d(x, top, None, 1, 1, 1), F.conv2d(x, bottom, None, 1, 2, 2)], 1)

        with torch.no_grad():
            ms = median_ms([conv(d) for d in DILATIONS] + [conv_halves], repeats=args.repeats)
            dilation_rows.append((stage, f"{c} x {h} x {w}", ms))
            fns = [conv((1, 1)), lambda: whole(x), lambda: blocked(x), lambda: plain(x)]
            split_rows.append((stage, f"{c} x {h} x {w}", median_ms(fns, repeats=args.repeats)))
    names = [f"x {dh}x{dw}" for dh, dw in DILATIONS[1:]] + ["x halves 1x1+2x2"]
    print_table("F.conv2d at each dilation", names, dilation_rows)
    names = ["x split conv, 1 genotype", "x halves, blocked input", "x halves, plain convs"]
    print_table("SplitDilationConv (no norm)", names, split_rows)


if __name__ == "__main__":
    main()
