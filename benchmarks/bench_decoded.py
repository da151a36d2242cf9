#!/usr/bin/env python
"""Inference latency of the decoded NATS network vs. the stock one, measured in the same run.

R50-FPN Faster R-CNN at 512x672 (random weights, eval mode), decoded with the committed
reference architecture (G=16, setting C). Variants, timed round-robin in alternating order (so
none always runs first):

- ``decoded``: this project's split conv (each genotype a contiguous slice of the stock weight);
  in the per-layer table also with ``plain convs`` (no shared oneDNN-blocked input, see
  ``projects/nats/modeling/split_conv.py``);
- ``straightforward``: the same architecture with each genotype's channel groups left where the
  search had them, gathered from the weight and scattered back to place in every forward (the
  issue's reference point);
- ``aligned`` (with ``--align-channels A`` > 1 or ``--max-genotypes M`` > 0): the same
  architecture decoded again with every genotype's channels a multiple of A and at most M
  genotypes per block (``MODEL.NATS.DECODE``; ``realign_architecture``, from the groups'
  choices);
- ``stock copy``: a second copy of the stock model: its ratio is this machine's noise floor.

Reported for the ResNet bottom-up, the FPN backbone and the whole detector: median ms, and three
ratios to stock (of the medians, of the minima, and the median of back-to-back pairs). Then each
searched conv alone on its real input, and what the summed extra time makes of each part.

    python benchmarks/bench_decoded.py                      # CPU, 2 threads
    python benchmarks/bench_decoded.py --steady-malloc      # no page faults from glibc's malloc
    python benchmarks/bench_decoded.py --device cuda --repeats 50
    python benchmarks/bench_decoded.py --steady-malloc --align-channels 16  # + aligned decoding
"""

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from projects.nats import add_nats_config  # noqa: E402
from projects.nats.architecture import (  # noqa: E402
    load_architecture,
    realign_architecture,
    save_architecture,
)
from projects.nats.modeling.split_conv import SplitDilationConv  # noqa: E402

__all__ = ["ReorderSplitConv", "main", "restart_with_steady_malloc", "round_robin"]

REFERENCE = "configs/NATS/architectures/reference_R50_G16_settingC.json"
# glibc keeps freed activations instead of unmapping them (each forward otherwise page-faults
# ~50k fresh pages, for both models alike): less noise.
STEADY_MALLOC = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=17179869184"


class ReorderSplitConv(nn.Module):
    """The straightforward split conv: genotype g convolves with its groups' weight rows,
    gathered in every forward, and its outputs are scattered back to those groups' channels."""

    def __init__(self, *, conv: SplitDilationConv, block_arch):
        super().__init__()
        self.weight, self.norm, self.stride = conv.weight, conv.norm, conv.stride
        size = block_arch.out_channels // block_arch.num_groups
        self.dilations, index = [], []
        for g in block_arch.genotypes:
            self.dilations.append(tuple(g.dilation))
            rows = [k * size + i for k in g.groups for i in range(size)]
            index.append(torch.tensor(rows, device=conv.weight.device))
        order = torch.cat(index)
        self.register_buffer("gather", order, persistent=False)
        self.register_buffer("scatter", torch.argsort(order), persistent=False)
        self.sizes = [len(i) for i in index]

    def forward(self, x):
        weights = self.weight.index_select(0, self.gather).split(self.sizes)
        outs = [F.conv2d(x, w, None, self.stride, d, d) for w, d in zip(weights, self.dilations)]
        return self.norm(torch.cat(outs, 1).index_select(1, self.scatter))


def _cfg(args, decoded, architecture=None):
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(args.config)
    cfg.MODEL.DEVICE = args.device
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.RESNETS.NORM = "FrozenBN"
    cfg.MODEL.BACKBONE.NAME = (
        "build_nats_resnet_fpn_backbone" if decoded else "build_resnet_fpn_backbone"
    )
    cfg.MODEL.NATS.ARCHITECTURE = architecture or args.architecture
    return cfg


def _straightforward(decoded, architecture):
    model = copy.deepcopy(decoded)
    arch = load_architecture(architecture)
    for name, m in list(model.backbone.bottom_up.named_modules()):
        if isinstance(m, SplitDilationConv):
            block = model.backbone.bottom_up.get_submodule(name[: -len(".conv2")])
            block.conv2 = ReorderSplitConv(conv=m, block_arch=arch.blocks[name[: -len(".conv2")]])
    return model


def _aligned(args, stock):
    """The decoded model of ``args.architecture`` decoded again with the alignment and cap."""
    arch = realign_architecture(
        load_architecture(args.architecture),
        align_channels=args.align_channels,
        max_genotypes=args.max_genotypes,
    )
    kept = [len(b.genotypes) for b in arch.blocks.values()]
    print(
        f"aligned: align_channels={args.align_channels} max_genotypes={args.max_genotypes}, "
        f"genotypes per block {kept}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "aligned.json")
        save_architecture(arch, path)
        model = build_model(_cfg(args, True, path)).eval()
    model.load_state_dict(stock.state_dict())
    return model


def restart_with_steady_malloc():
    """Run this script again with ``GLIBC_TUNABLES=STEADY_MALLOC`` unless it already has it
    (glibc reads the variable only at start)."""
    if os.environ.get("GLIBC_TUNABLES") != STEADY_MALLOC:
        os.environ["GLIBC_TUNABLES"] = STEADY_MALLOC
        os.execv(sys.executable, [sys.executable] + sys.argv)


def _time(fn, device):
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def round_robin(fns, repeats, warmup, device):
    """Seconds per call of each of ``fns``, all timed in every round, in alternating order."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times, keys = {k: [] for k in fns}, list(fns)
    for i in range(repeats):
        for k in keys if i % 2 == 0 else keys[::-1]:
            times[k].append(_time(fns[k], device))
    return times


def _ratios(times, k):
    """Ratios of ``k`` to stock: of the medians, of the minima, median of the pairs."""
    d, s = times[k], times["stock"]
    return (
        statistics.median(d) / statistics.median(s),
        min(d) / min(s),
        statistics.median(a / b for a, b in zip(d, s)),
    )


def _plain_convs(conv, x):
    """The decoded split conv without its shared blocked input: one ``conv2d`` per genotype."""
    conv.share_blocked_input = False
    try:
        return conv(x)
    finally:
        del conv.share_blocked_input  # back to the class default


def _per_layer(models, x, args, part_ms):
    """Each searched conv (with its norm) alone on its real input; summed extra time against
    each part's stock time."""
    mods = {k: dict(m.backbone.bottom_up.named_modules()) for k, m in models.items()}
    names = [n for n, m in mods["decoded"].items() if isinstance(m, SplitDilationConv)]
    inputs = {}
    handles = [
        mods["stock"][n].register_forward_pre_hook(lambda m, a, n=n: inputs.setdefault(n, a[0]))
        for n in names
    ]
    models["stock"].backbone.bottom_up(x)
    for h in handles:
        h.remove()
    keys = ["stock", "decoded", "plain convs", "straightforward"]
    if "aligned" in mods:
        keys.insert(2, "aligned")
    totals = dict.fromkeys(keys, 0.0)
    print("\n| block    | convs | " + " | ".join(f"{k} ms" for k in keys) + " |")
    print("|----------|-------|" + "|".join("-" * (len(k) + 5) for k in keys) + "|")
    for n in names:
        fns = {k: (lambda k=k, n=n: mods[k][n](inputs[n])) for k in keys if k in mods}
        fns["plain convs"] = lambda n=n: _plain_convs(mods["decoded"][n], inputs[n])
        times = round_robin(fns, args.layer_repeats, args.warmup, args.device)
        row = []
        for k in keys:
            ms = statistics.median(times[k]) * 1000
            totals[k] += ms
            row.append(f"{ms:{len(k) + 3}.2f}")
        block = n[: -len(".conv2")]
        print(f"| {block:8s} | {len(mods['decoded'][n].pieces):5d} | " + " | ".join(row) + " |")
    print("| all      |       | " + " | ".join(f"{totals[k]:{len(k) + 3}.2f}" for k in keys) + " |")
    for k in keys[1:]:
        extra = totals[k] - totals["stock"]
        shares = ", ".join(f"{p} {1 + extra / ms:.3f}x" for p, ms in part_ms.items())
        print(f"{k}: searched convs {extra:+.1f} ms per image -> {shares} by per-layer timing")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/Baselines/faster_rcnn_R_50_FPN_1x.yaml")
    parser.add_argument("--architecture", default=REFERENCE)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 672))
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--layer-repeats", type=int, default=60, help="per searched conv")
    parser.add_argument("--channels-last", action="store_true", help="all models in NHWC")
    parser.add_argument("--steady-malloc", action="store_true", help="set " + STEADY_MALLOC)
    parser.add_argument(
        "--align-channels",
        type=int,
        default=1,
        help="also time the architecture decoded with channels a multiple of this "
        "(MODEL.NATS.DECODE.ALIGN_CHANNELS; e.g. 16 on CPU, 8 on GPU)",
    )
    parser.add_argument(
        "--max-genotypes",
        type=int,
        default=0,
        help="with the aligned variant: at most this many genotypes per block "
        "(MODEL.NATS.DECODE.MAX_GENOTYPES; 0 = no cap)",
    )
    args = parser.parse_args()
    if args.steady_malloc:
        restart_with_steady_malloc()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    stock = build_model(_cfg(args, False)).eval()
    decoded = build_model(_cfg(args, True)).eval()
    decoded.load_state_dict(stock.state_dict())
    models = {
        "stock": stock,
        "decoded": decoded,
        "straightforward": _straightforward(decoded, args.architecture),
        "stock copy": copy.deepcopy(stock),
    }
    if args.align_channels > 1 or args.max_genotypes > 0:
        models["aligned"] = _aligned(args, stock)
    image = torch.rand(3, *args.size, device=args.device) * 255
    x = stock.preprocess_image([{"image": image}]).tensor
    if args.channels_last:  # oneDNN reads NHWC directly: no per-slice input reorder
        x = x.contiguous(memory_format=torch.channels_last)
        for m in models.values():
            m.backbone.to(memory_format=torch.channels_last)
    parts = {
        "ResNet": lambda m: m.backbone.bottom_up(x),
        "backbone": lambda m: m.backbone(x),
        "detector": lambda m: m([{"image": image}]),
    }
    n_split = sum(isinstance(m, SplitDilationConv) for m in decoded.modules())
    print(
        f"device={args.device} threads={torch.get_num_threads()} input={args.size} "
        f"channels_last={args.channels_last} split convs={n_split} repeats={args.repeats} "
        f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '')!r}"
    )
    print("ResNet = bottom-up; backbone = ResNet+FPN; detector = whole Faster R-CNN")
    print("\n| part     | variant         | median ms | x median | x min | x paired |")
    print("|----------|-----------------|-----------|----------|-------|----------|")
    part_ms = {}
    with torch.no_grad():
        for part, fn in parts.items():
            fns = {k: (lambda m=m: fn(m)) for k, m in models.items()}
            times = round_robin(fns, args.repeats, args.warmup, args.device)
            part_ms[part] = statistics.median(times["stock"]) * 1000
            for k in models:
                ms = statistics.median(times[k]) * 1000
                r = _ratios(times, k) if k != "stock" else (1.0, 1.0, 1.0)
                print(
                    f"| {part:8s} | {k:15s} | {ms:9.1f} | {r[0]:8.3f} | {r[1]:5.3f} | {r[2]:8.3f} |"
                )
        _per_layer(models, x, args, part_ms)


if __name__ == "__main__":
    main()
