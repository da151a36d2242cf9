#!/usr/bin/env python
"""Effective receptive field maps (paper 4.4) of trained models, every stage and level at once.

Example (stock vs NATS, as in the paper's Fig. 4)::

    python visualize_erf.py --output output/erf.png \
        --panel "R50:configs/Baselines/faster_rcnn_R_50_FPN_1x.yaml:output/base/model_final.pth" \
        --panel "NATS:configs/NATS/faster_rcnn_R_50_FPN_nats_G16_1x.yaml:output/nats/model.pth" \
        MODEL.NATS.ARCHITECTURE output/search/architecture.json

Each panel is ``LABEL:CONFIG[:WEIGHTS]``; trailing ``KEY VALUE`` pairs override every config.
Every ResNet stage and FPN level (``--features`` to choose) is measured in one forward pass per
model. Writes the figure (a row per model, a column per feature map), ``<output>.json`` (50%/90%
radii, each model's 90% radius over the first panel's, per feature, and the maps that reach the
input's border, whose radii are lower bounds) and ``<output>.txt``.
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
from projects.nats.config import check_weights_file
from projects.nats.data.cli_datasets import add_dataset_argument, register_datasets
from projects.nats.erf import available_features, erf_maps, erf_radius, save_erf_figure
from projects.nats.preflight import check_backbone_builds

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
    check_backbone_builds(cfg)  # a bad architecture file or weights stop before any panel
    check_weights_file(cfg)
    return cfg


def backbone_erfs(cfg, features, size):
    """Build the detector, load its weights, and return ``{feature: ERF map}`` of its backbone
    (``features`` empty: every ResNet stage and FPN level it has)."""
    model = build_model(cfg)
    NATSCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    accepted = available_features(model.backbone)
    unknown = [f for f in features if f not in accepted]
    if unknown:
        raise ValueError(
            f"--features {unknown} are not maps of this backbone; accepted: {accepted}"
        )
    return erf_maps(model.backbone, list(features) or accepted, size)


def radii_table(radii, ratios):
    """The radii as text: per model a row of 90% radii (px), then its ratios to the first."""
    features = list(next(iter(radii.values())))
    width = max(len(k) for k in radii) + 10
    lines = [f"{'90% radius (px)':<{width}}" + "".join(f"{f:>8}" for f in features)]
    for label, per_feature in radii.items():
        lines.append(
            f"{label:<{width}}" + "".join(f"{per_feature[f]['radius90']:>8.1f}" for f in features)
        )
    first = next(iter(radii))
    for label, per_feature in list(ratios.items())[1:]:
        name = f"{label}/{first}"
        lines.append(f"{name:<{width}}" + "".join(f"{per_feature[f]:>8.3f}" for f in features))
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--output", required=True, help="PNG path; radii go to <output>.json/.txt")
    parser.add_argument(
        "--features", nargs="*", default=[], help="e.g. res5 p3 (default: every stage and level)"
    )
    parser.add_argument("--size", type=int, nargs=2, default=[512, 512], metavar=("H", "W"))
    add_dataset_argument(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    args = parser.parse_args(argv)
    register_datasets(args.dataset)
    setup_logger(name="nats")
    erfs = {}
    for label, config_file, weights in args.panel:
        cfg = setup(config_file, args.opts, weights)
        erfs[label] = backbone_erfs(cfg, args.features, tuple(args.size))
        logger.info(f"ERFs of {label}: {', '.join(erfs[label])}")
    features = [f for f in next(iter(erfs.values())) if all(f in e for e in erfs.values())]
    erfs = {label: {f: maps[f] for f in features} for label, maps in erfs.items()}
    radii = {
        label: {f: {"radius50": erf_radius(m, 0.5), "radius90": erf_radius(m, 0.9)}
                for f, m in maps.items()}
        for label, maps in erfs.items()
    }  # fmt: skip
    first = next(iter(radii.values()))
    ratios = {
        label: {f: r[f]["radius90"] / max(first[f]["radius90"], 1e-9) for f in features}
        for label, r in radii.items()
    }
    cut = save_erf_figure(erfs, args.output)  # warns of each map that reaches the border
    stem = os.path.splitext(args.output)[0]
    result = {
        "image_size": list(args.size),
        "features": features,
        "radii": radii,  # label -> feature -> radius50/radius90, in pixels
        "reference": next(iter(radii)),  # the first panel
        "ratios": ratios,  # label -> feature -> radius90 / the reference's radius90
        # [label, feature] of the maps the input cut off: their radii are lower bounds
        "reaches_border": [list(c) for c in cut],
    }
    with atomic_open(stem + ".json", "w") as f:
        json.dump(result, f, indent=1)
    table = radii_table(radii, ratios)
    with atomic_open(stem + ".txt", "w") as f:
        f.write(table)
    logger.info(f"ERF radii (wrote {args.output}, {stem}.json, {stem}.txt):\n{table}")
    return result


if __name__ == "__main__":
    main()
