"""A tiny Faster R-CNN R50-FPN trains inside Detectron2's trainer on CPU and is COCO-evaluated."""

import json
import math
import os

import torch
from common import tiny_cfg
from detectron2.engine import DefaultTrainer

from projects.nats import build_coco_evaluator
from projects.nats.compat import has_real_extension


class _Trainer(DefaultTrainer):
    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_coco_evaluator(cfg, dataset_name, output_folder)


def test_tiny_faster_rcnn_trains_and_evaluates(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.SOLVER.MAX_ITER = 4
    cfg.freeze()
    trainer = _Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items() if "weight" in k}
    trainer.train()
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # weights moved

    lines = [json.loads(x) for x in open(os.path.join(cfg.OUTPUT_DIR, "metrics.json"))]
    train_lines = [x for x in lines if "total_loss" in x]
    assert train_lines and all(math.isfinite(x["total_loss"]) for x in train_lines)
    assert train_lines[-1]["iteration"] == cfg.SOLVER.MAX_ITER - 1

    results = _Trainer.test(cfg, trainer.model)
    bbox = results["bbox"]
    assert {"AP", "AP50", "AP75", "APs", "APm", "APl"} <= set(bbox)
    evaluator = build_coco_evaluator(cfg, cfg.DATASETS.TEST[0])
    assert evaluator._use_fast_impl == has_real_extension()  # pycocotools path without _C
    assert os.path.exists(os.path.join(cfg.OUTPUT_DIR, "inference", "coco_instances_results.json"))
