#!/usr/bin/env python
"""NATS architecture search with Detectron2 (paper section 3.2): alternates weight steps on the
weight split with architecture steps on the architecture split, logs the architecture as it
learns and writes ``OUTPUT_DIR/architecture.json`` plus a heatmap of the chosen dilations,
decoded with ``MODEL.NATS.DECODE`` (``ALIGN_CHANNELS``, ``MAX_GENOTYPES``; defaults: eq. 4-6).

    python search_net.py --num-gpus 8 \
        --config-file configs/NATS-Search/faster_rcnn_R_50_FPN_nats_search_G16.yaml
    python search_net.py --config-file configs/Demo/demo_shapes_R_50_FPN_tiny.yaml  # CPU
    python search_net.py --config-file ... --resume          # continue from OUTPUT_DIR exactly
    python search_net.py --config-file ... MODEL.NATS.DECODE.ALIGN_CHANNELS 16  # CPU-friendly
"""

import logging
import os

from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup
from detectron2.utils import comm

from projects.nats import add_nats_config
from projects.nats.atomic import remove_stale_temporaries
from projects.nats.compat.launch import launch
from projects.nats.config import check_search_config
from projects.nats.data.cli_datasets import add_dataset_argument, register_datasets
from projects.nats.preflight import check_device
from projects.nats.search import SearchTrainer

__all__ = ["setup", "main"]


def setup(args):
    """Config from file + command-line overrides, with the NATS keys, checked before Detectron2's
    usual setup writes anything to OUTPUT_DIR."""
    register_datasets(getattr(args, "dataset", []))  # --dataset: in every process launch starts
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    check_device(cfg)
    check_search_config(cfg, resume=args.resume)
    default_setup(cfg, args)
    if comm.is_main_process():
        remove_stale_temporaries(cfg.OUTPUT_DIR)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        raise ValueError("search_net.py searches; evaluate a decoded network with train_net.py")
    trainer = SearchTrainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    trainer.train()
    if comm.is_main_process():
        logging.getLogger("detectron2").info(
            f"Searched architecture: {os.path.join(cfg.OUTPUT_DIR, 'architecture.json')}"
        )
    return trainer


if __name__ == "__main__":
    args = add_dataset_argument(default_argument_parser()).parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
