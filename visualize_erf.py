#!/usr/bin/env python
"""Effective receptive field maps (paper 4.4) of one or more trained backbones, side by side.

Example (stock vs NATS, as in the paper's Fig. 4)::

    python visualize_erf.py --output output/erf.png \
        --panel "R50:configs/Baselines/faster_rcnn_R_50_FPN_1x.yaml:output/base/model_final.pth" \
        --panel "NATS:configs/NATS/faster_rcnn_R_50_FPN_nats_G16_1x.yaml:output/nats/model.pth" \
        MODEL.NATS.ARCHITECTURE output/search/architecture.json

Each panel is ``LABEL:CONFIG[:WEIGHTS]``; trailing ``KEY VALUE`` pairs override every config.
"""

import argparse
import json
import logging
import os

import torch
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger

from projects.nats import add_nats_config
from projects.nats.atomic import atomic_open
from projects.nats.checkpoint import NATSCheckpointer
from projects.nats.erf import compute_erf, erf_radius, save_erf_figure

logger = logging.getLogger("nats.erf")


def setup(config_file, opts, weights=None):
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(opts)
    if weights:
        cfg.MODEL.WEIGHTS = weights
    cfg.MODEL.DEVICE = "cpu" if not torch.cuda.is_available() else cfg.MODEL.DEVICE
    cfg.freeze()
    return cfg


def backbone_erf(cfg, feature, size):
    """Build the detector, load its weights, and return the ERF of ``feature`` in its ResNet."""
    model = build_model(cfg)
    NATSCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    bottom_up = getattr(model.backbone, "bottom_up", model.backbone)
    if not hasattr(bottom_up, feature):
        raise ValueError(f"--feature {feature!r} is not a stage of the backbone; use res2..res5")
    device = next(model.parameters()).device
    return compute_erf(bottom_up, getattr(bottom_up, feature), size, device=device)


def parse_panel(text):
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise argparse.ArgumentTypeError(f"--panel must be LABEL:CONFIG[:WEIGHTS], got {text!r}")
    if not os.path.isfile(parts[1]):
        raise argparse.ArgumentTypeError(f"--panel {text!r}: config file {parts[1]} not found")
    return parts if len(parts) == 3 else parts + [None]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--panel", type=parse_panel, action="append", required=True)
    parser.add_argument("--output", required=True, help="PNG path; radii go to <output>.json")
    parser.add_argument("--feature", default="res5", help="stage whose centre neuron is used")
    parser.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"))
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    args = parser.parse_args(argv)
    setup_logger(name="nats")
    erfs = {}
    for label, config_file, weights in args.panel:
        cfg = setup(config_file, args.opts, weights)
        erfs[label] = backbone_erf(cfg, args.feature, tuple(args.size))
        logger.info(f"ERF of {label} ({args.feature}): 90% radius {erf_radius(erfs[label]):.1f} px")
    save_erf_figure(erfs, args.output)
    radii = {
        k: {"radius50": erf_radius(v, 0.5), "radius90": erf_radius(v, 0.9)} for k, v in erfs.items()
    }
    with atomic_open(os.path.splitext(args.output)[0] + ".json", "w") as f:
        json.dump(radii, f, indent=1)
    logger.info(f"wrote {args.output}")
    return radii


if __name__ == "__main__":
    main()
