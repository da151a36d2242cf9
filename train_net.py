#!/usr/bin/env python
"""Train and evaluate a detector with Detectron2: stock baselines and decoded NATS networks
(paper section 4.2, "Training details"), from ImageNet weights (.pkl or torchvision .pth).

    python train_net.py --config-file configs/NATS/faster_rcnn_R_50_FPN_nats_G16_1x.yaml \
        --num-gpus 8
    python train_net.py --config-file configs/Baselines/faster_rcnn_R_50_FPN_1x.yaml --num-gpus 8
    python train_net.py --config-file ... --eval-only MODEL.WEIGHTS output/.../model_final.pth
    python train_net.py --config-file ... --resume      # continue from OUTPUT_DIR/last_checkpoint
"""

import weakref

from detectron2.config import get_cfg
from detectron2.data import build_detection_train_loader
from detectron2.engine import (
    DefaultTrainer,
    default_argument_parser,
    default_setup,
    hooks,
)
from detectron2.evaluation import verify_results
from detectron2.utils import comm

from projects.nats import NATSCheckpointer, add_nats_config, build_coco_evaluator
from projects.nats.atomic import remove_stale_temporaries
from projects.nats.compat.engine import InnerTrainerState
from projects.nats.compat.launch import launch
from projects.nats.config import check_train_config
from projects.nats.data.checks import load_checked_dataset_dicts
from projects.nats.data.cli_datasets import add_dataset_argument, register_datasets
from projects.nats.erf import build_erf_hook
from projects.nats.preflight import check_device

__all__ = ["Trainer", "setup", "main"]


class Trainer(InnerTrainerState, DefaultTrainer):
    """``DefaultTrainer`` with COCO evaluation, torchvision-aware checkpoint loading, and the
    optimizer state in its checkpoints on Detectron2 v0.6 as on main."""

    def build_hooks(self):
        # DefaultTrainer.__init__ made a DetectionCheckpointer just before asking for the hooks:
        # resume and the periodic checkpoints go through NATSCheckpointer instead.
        self.checkpointer = NATSCheckpointer(
            self._trainer.model, self.cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
        )
        ret = super().build_hooks()
        erf = build_erf_hook(self.cfg, self._trainer.model) if comm.is_main_process() else None
        if erf is not None:  # before the writers (last on rank 0), which then write its data
            writer = ret and isinstance(ret[-1], hooks.PeriodicWriter)
            ret.insert(len(ret) - 1 if writer else len(ret), erf)
        return ret

    @classmethod
    def build_train_loader(cls, cfg):
        """Detectron2's training loader over dicts checked before the first step (missing image
        files, boxes of negative size, empty or unreadable datasets stop the run at once)."""
        proposals = cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None
        dicts = load_checked_dataset_dicts(
            cfg, cfg.DATASETS.TRAIN, key="DATASETS.TRAIN", proposal_files=proposals
        )
        return build_detection_train_loader(cfg, dataset=dicts)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_coco_evaluator(cfg, dataset_name, output_folder)


def setup(args):
    """Config from file + command-line overrides, checked before any output or data is touched:
    the architecture file of a NATS config and a local MODEL.WEIGHTS must exist."""
    register_datasets(getattr(args, "dataset", []))  # --dataset: in every process launch starts
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    check_device(cfg)
    check_train_config(cfg, resume=args.resume, eval_only=args.eval_only)
    default_setup(cfg, args)
    if comm.is_main_process():
        remove_stale_temporaries(cfg.OUTPUT_DIR)
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        NATSCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        results = Trainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, results)
        return results
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


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
