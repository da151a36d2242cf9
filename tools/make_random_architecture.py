#!/usr/bin/env python
"""Write a random architecture of a search config's search space (the NAS sanity check).

Each channel group of each searched block gets a genotype drawn uniformly from its stage's
candidates with ``--seed``; the file has the format and group division of the search's own
``architecture.json`` and is retrained by the same decoded config (``MODEL.NATS.ARCHITECTURE``).
It is decoded as the search decodes (``MODEL.NATS.DECODE``, or ``--align-channels`` /
``--max-genotypes``, which set those keys), so compare it with a search of the same options.

    python tools/make_random_architecture.py \
        --config-file configs/NATS-Search/faster_rcnn_R_50_FPN_nats_search_G16.yaml \
        --seed 0 --output output/random_G16_seed0/architecture.json [KEY VALUE ...]
    python tools/make_random_architecture.py --config-file ... --seed 0 --output ... \
        --align-channels 16 --max-genotypes 4  # as a search with MODEL.NATS.DECODE.* so
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_backbone  # noqa: E402

from projects.nats import add_nats_config  # noqa: E402
from projects.nats.architecture import random_architecture, save_architecture  # noqa: E402
from projects.nats.config import check_search_config  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True, help="a search config (supernet)")
    parser.add_argument("--seed", type=int, required=True, help="the draw's seed")
    parser.add_argument("--output", required=True, help="architecture file to write (.json)")
    parser.add_argument(
        "--align-channels",
        type=int,
        help="MODEL.NATS.DECODE.ALIGN_CHANNELS: every genotype's channels a multiple of it "
        "(default: the config's, 1 = the paper's decoding)",
    )
    parser.add_argument(
        "--max-genotypes",
        type=int,
        help="MODEL.NATS.DECODE.MAX_GENOTYPES: the most genotypes per block (default: the "
        "config's, 0 = no cap)",
    )
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.MODEL.DEVICE, cfg.MODEL.WEIGHTS = "cpu", ""  # only the mixed ops' shapes are read
    if args.align_channels is not None:
        cfg.MODEL.NATS.DECODE.ALIGN_CHANNELS = args.align_channels
    if args.max_genotypes is not None:
        cfg.MODEL.NATS.DECODE.MAX_GENOTYPES = args.max_genotypes
    check_search_config(cfg)
    arch = random_architecture(build_backbone(cfg), cfg, seed=args.seed)
    save_architecture(arch, args.output)
    kept = [len(b.genotypes) for b in arch.blocks.values()]
    print(f"wrote {args.output} (format version {arch.version}): genotypes kept per block {kept}")


if __name__ == "__main__":
    main()
