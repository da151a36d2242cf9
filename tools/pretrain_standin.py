#!/usr/bin/env python
"""Pretrain the ImageNet stand-in for a config's ResNet and print its MSRA-style ``.pkl``.

Trains Detectron2's stock ResNet of ``--config-file`` (depth, widths, pixel normalisation) on the
shapes classification task (``projects/nats/pretrain/``), or reuses the cached checkpoint of the
same settings, and prints the path to give as ``MODEL.WEIGHTS``:

    python tools/pretrain_standin.py --config-file configs/Demo/Base-Demo-RCNN-FPN.yaml
    python train_net.py --config-file configs/Demo/faster_rcnn_R_50_FPN_shapes.yaml \
        MODEL.WEIGHTS <printed path> MODEL.RESNETS.NORM FrozenBN MODEL.BACKBONE.FREEZE_AT 2
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from detectron2.config import get_cfg  # noqa: E402
from detectron2.utils.logger import setup_logger  # noqa: E402

from projects.nats import add_nats_config  # noqa: E402
from projects.nats.pretrain import ensure_standin_checkpoint  # noqa: E402
from projects.nats.pretrain.standin import DEFAULT_TRAINING  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", required=True, help="the detection config to pretrain")
    for key, value in DEFAULT_TRAINING.items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--cache-dir", default=None, help="default: $NATS_DATA_CACHE/standin")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    setup_logger()
    setup_logger(name="projects")
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    training = {k: getattr(args, k) for k in DEFAULT_TRAINING}
    path = ensure_standin_checkpoint(cfg, cache_dir=args.cache_dir, **training)
    with open(os.path.join(os.path.dirname(path), "standin.json")) as f:
        accuracy = json.load(f)["val_accuracy"]
    print(f"stand-in held-out accuracy {accuracy:.3f}")
    print(path)


if __name__ == "__main__":
    main()
