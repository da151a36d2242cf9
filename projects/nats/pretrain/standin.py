"""The ImageNet stand-in checkpoint: a stock ResNet trained on the shapes classification task.

:func:`ensure_standin_checkpoint` trains Detectron2's ResNet of a detection config (its depth,
widths, stride placement and pixel normalisation, with BN) on
:func:`~projects.nats.pretrain.shapes_classification` with Detectron2's ``SimpleTrainer``
(progress and ETA logged, ``metrics.json``), measures its accuracy on a held-out split and saves
the trunk as an MSRA-style ``.pkl`` under ``$NATS_DATA_CACHE/standin/<settings hash>/``. The
folder is named by every setting, so the stand-in trains once per setting and is reused; it is
written under a temporary name and renamed when complete, so an interrupted run never leaves a
checkpoint that looks finished. Searches and retrainings then load it through ``MODEL.WEIGHTS``,
the path a user's ImageNet checkpoint takes.
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile

import torch
from detectron2.engine import SimpleTrainer, hooks
from detectron2.solver import LRMultiplier, WarmupParamScheduler
from detectron2.utils.events import CommonMetricPrinter, JSONWriter
from fvcore.common.param_scheduler import CosineParamScheduler

from ..data.shapes import shapes_cache_dir
from .classifier import ResNetClassifier, save_msra_pkl
from .shapes_classes import NUM_CLASSES, shapes_classification

__all__ = ["ensure_standin_checkpoint", "standin_settings"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when the task, the training or the file changes
# The demo's stand-in: 12 classes of 64 px images (res5 sees 2x2), 800 iterations of 64 images
# (~4 epochs), AdamW with warm-up and cosine decay; chosen on the stand-in's own held-out split
# and the search's decision metrics (benchmarks/README.md), never on a detection split.
DEFAULT_TRAINING = {
    "num_train": 12000,
    "num_val": 1200,
    "size": 64,
    "iters": 800,
    "batch": 64,
    "lr": 0.002,
    "weight_decay": 0.05,
    "seed": 0,
}
TRUNK_KEYS = (
    "DEPTH",
    "NUM_GROUPS",
    "WIDTH_PER_GROUP",
    "STEM_OUT_CHANNELS",
    "RES2_OUT_CHANNELS",
    "STRIDE_IN_1X1",
    "RES5_DILATION",
)


def standin_settings(cfg, **training):
    """Everything the stand-in checkpoint depends on, as a JSON-serializable dict.

    Args:
        cfg (CfgNode): the detection config whose trunk is pretrained (``MODEL.RESNETS``,
            ``MODEL.PIXEL_MEAN``/``PIXEL_STD``, ``INPUT.FORMAT``).
        training: overrides of ``DEFAULT_TRAINING`` (``num_train``, ``num_val``, ``size``,
            ``iters``, ``batch``, ``lr``, ``weight_decay``, ``seed``).

    Raises:
        KeyError: for a training setting that is not one of ``DEFAULT_TRAINING``.
    """
    unknown = sorted(set(training) - set(DEFAULT_TRAINING))
    if unknown:
        raise KeyError(f"stand-in settings {unknown} unknown; accepted: {sorted(DEFAULT_TRAINING)}")
    return {
        "version": FORMAT_VERSION,
        "trunk": {k: cfg.MODEL.RESNETS[k] for k in TRUNK_KEYS},
        "pixel_mean": list(cfg.MODEL.PIXEL_MEAN),
        "pixel_std": list(cfg.MODEL.PIXEL_STD),
        "input_format": cfg.INPUT.FORMAT,
        "training": {**DEFAULT_TRAINING, **training},
    }


class _Batches:
    """Infinite seeded batches of the training split, randomly flipped."""

    def __init__(self, images, labels, *, batch, seed):
        self.images, self.labels = torch.from_numpy(images), torch.from_numpy(labels)
        self.batch = batch
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        while True:
            idx = torch.randint(len(self.labels), (self.batch,), generator=self.generator)
            images = self.images[idx]
            flip = torch.rand(self.batch, generator=self.generator) < 0.5
            images[flip] = images[flip].flip(2)
            yield {"images": images, "labels": self.labels[idx]}


@torch.no_grad()
def _accuracy(model, images, labels, batch=256):
    model.eval()
    correct = 0
    for i in range(0, len(labels), batch):
        logits = model({"images": torch.from_numpy(images[i : i + batch])})
        correct += int((logits.argmax(1).cpu() == torch.from_numpy(labels[i : i + batch])).sum())
    model.train()
    return correct / len(labels)


def _train(cfg, settings, out_dir):
    t = settings["training"]
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.RESNETS.NORM = "BN"  # batch statistics while pretraining; folded into the file
    torch.manual_seed(t["seed"])
    model = ResNetClassifier(cfg, num_classes=NUM_CLASSES)
    images, labels = shapes_classification(
        num_images=t["num_train"], split="train", seed=t["seed"], size=t["size"]
    )
    loader = _Batches(images, labels, batch=t["batch"], seed=t["seed"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=t["lr"], weight_decay=t["weight_decay"])
    schedule = WarmupParamScheduler(
        CosineParamScheduler(1.0, 0.0), 0.01, min(0.05, 100 / t["iters"])
    )
    trainer = SimpleTrainer(model, loader, optimizer)
    trainer.register_hooks(
        [
            hooks.IterationTimer(),
            hooks.LRScheduler(optimizer, LRMultiplier(optimizer, schedule, t["iters"])),
            hooks.PeriodicWriter(
                [
                    CommonMetricPrinter(t["iters"]),
                    JSONWriter(os.path.join(out_dir, "metrics.json")),
                ],
                period=20,
            ),
        ]
    )
    logger.info(f"Pretraining the ImageNet stand-in: {settings}")
    trainer.train(0, t["iters"])
    val_images, val_labels = shapes_classification(
        num_images=t["num_val"], split="val", seed=t["seed"], size=t["size"]
    )
    accuracy = _accuracy(model, val_images, val_labels)
    logger.info(f"Stand-in accuracy on its held-out split: {accuracy:.3f} ({NUM_CLASSES} classes)")
    report = {"settings": settings, "val_accuracy": accuracy, "chance": 1 / NUM_CLASSES}
    with open(os.path.join(out_dir, "standin.json"), "w") as f:
        json.dump(report, f, indent=2)
    save_msra_pkl(model.trunk, os.path.join(out_dir, "model.pkl"), meta=report)


def ensure_standin_checkpoint(cfg, *, cache_dir=None, **training):
    """The stand-in's ``model.pkl`` for ``cfg``'s trunk, trained first if not cached.

    Args:
        cfg (CfgNode): the detection config whose trunk is pretrained (see
            :func:`standin_settings`).
        cache_dir (str or None): where checkpoints are kept; None: ``$NATS_DATA_CACHE/standin``.
        training: overrides of ``DEFAULT_TRAINING``.

    Returns:
        str: the path of ``model.pkl``, for ``MODEL.WEIGHTS``; ``standin.json`` beside it holds
        the settings and the held-out accuracy, ``metrics.json`` the training curve.
    """
    settings = standin_settings(cfg, **training)
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    root = cache_dir or os.path.join(shapes_cache_dir(), "standin")
    folder = os.path.join(root, f"standin_v{FORMAT_VERSION}_{key}")
    path = os.path.join(folder, "model.pkl")
    if os.path.isfile(path):
        logger.info(f"Using the cached ImageNet stand-in {path}")
        return path
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".standin_{key}.", dir=root)
    try:
        _train(cfg, settings, tmp)
        try:
            os.rename(tmp, folder)
        except OSError:  # another process finished the same settings first: keep its folder
            if not os.path.isfile(path):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path
