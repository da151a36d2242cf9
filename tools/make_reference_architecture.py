#!/usr/bin/env python
"""Write the committed reference architecture: R50, G=16, setting C, from seeded random logits.

It stands in for a searched architecture in benchmarks (the hard case: most blocks keep 4-9
genotypes): each block's logits ``[16, num_candidates]`` are drawn with a fixed seed and decoded
by eq. 4-6 (``projects.nats.architecture.decode_block``: argmax per group, channels by intensity).

    python tools/make_reference_architecture.py  # -> configs/NATS/architectures/...json
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from projects.nats.architecture import Architecture, decode_block, save_architecture  # noqa: E402
from projects.nats.config import SETTING_C_RES5, SETTING_C_RES34  # noqa: E402

__all__ = ["seeded_architecture"]

DEFAULT_OUT = "configs/NATS/architectures/reference_R50_G16_settingC.json"
# ResNet-50 (Detectron2 defaults): blocks per stage and the 3x3 conv's output channels.
R50_STAGES = {"res3": (4, 128), "res4": (6, 256), "res5": (3, 512)}


def seeded_architecture(*, stages=R50_STAGES, num_groups=16, seed=0):
    """Decode seeded N(0, 1) logits [num_groups, num_candidates] per block; an ``Architecture``."""
    gen = torch.Generator().manual_seed(seed)
    candidates = {
        s: [tuple(d) for d in (SETTING_C_RES5 if s == "res5" else SETTING_C_RES34)] for s in stages
    }
    blocks = {}
    for stage, (num_blocks, channels) in stages.items():
        for i in range(num_blocks):
            logits = torch.randn(num_groups, len(candidates[stage]), generator=gen)
            blocks[f"{stage}.{i}"] = decode_block(logits, candidates[stage], channels)
    meta = {
        "source": "tools/make_reference_architecture.py",
        "seed": seed,
        "setting": "C",
        "note": "random: decoded from seeded N(0, 1) logits, not from a search",
    }
    return Architecture(
        candidates=candidates, group_mode="count", group_value=num_groups, blocks=blocks, meta=meta
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    arch = seeded_architecture(seed=args.seed)
    save_architecture(arch, args.output)
    kept = [len(b.genotypes) for b in arch.blocks.values()]
    print(f"wrote {args.output}: genotypes kept per block {kept}")
