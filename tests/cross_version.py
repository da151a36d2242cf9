"""What test_detectron2_versions.py runs under each Detectron2: in this process, and as
``python tests/cross_version.py COMMAND FOLDER`` in the other version's venv.

Commands: ``search-cut`` (a tiny search that stops after iteration 3, its checkpoint from
iteration 2 left in FOLDER), ``search-resume`` (resumes FOLDER's search to the end),
``search-full`` (the same search uninterrupted), ``train`` (a tiny retraining whose
``model_final.pth`` lands in FOLDER), ``outputs WEIGHTS`` (the stock tiny backbone's features
with MODEL.WEIGHTS, saved to FOLDER/outputs.pth).
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import tiny_cfg  # noqa: E402
from detectron2.engine import hooks  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.utils.env import seed_all_rng  # noqa: E402

import train_net  # noqa: E402
from projects.nats import NATSCheckpointer  # noqa: E402
from projects.nats.search import SearchTrainer  # noqa: E402


class Stop(Exception):
    """Ends a run after iteration 3, as a killed process would."""


def search_cfg(folder):
    cfg = tiny_cfg(folder)
    cfg.MODEL.BACKBONE.NAME = "build_nats_supernet_resnet_fpn_backbone"
    cfg.MODEL.NATS.GROUPS.VALUE = 4
    cfg.MODEL.NATS.SEARCH.ARCH.DATASETS = ("tiny_shapes_arch",)
    cfg.MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH = 2
    cfg.MODEL.NATS.SEARCH.EPOCHS = 0
    cfg.MODEL.NATS.SEARCH.WARMUP_ITERS = 1
    cfg.MODEL.NATS.SEARCH.BASE_LR_END = 0.0001
    cfg.SOLVER.BASE_LR = 0.002
    cfg.SOLVER.MAX_ITER = 5
    cfg.SOLVER.CHECKPOINT_PERIOD = 2
    return cfg


def search(folder, *, resume=False, stop_at=None):
    """Run (or resume) the tiny search in ``folder``; returns the trainer."""
    seed_all_rng(0)
    trainer = SearchTrainer(search_cfg(folder))
    trainer.resume_or_load(resume=resume)
    if stop_at is not None:

        def stop(t):
            if t.iter == stop_at:
                raise Stop()

        trainer.register_hooks([hooks.CallbackHook(before_step=stop)])
    try:
        trainer.train()
    except Stop:
        pass
    return trainer


def train(folder):
    """A tiny stock retraining through train_net's Trainer; returns its model_final.pth."""
    cfg = tiny_cfg(folder)
    cfg.SOLVER.MAX_ITER = 2
    seed_all_rng(0)
    trainer = train_net.Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return os.path.join(folder, "model_final.pth")


def outputs(weights):
    """The stock tiny backbone's features on a fixed input, with ``weights`` loaded."""
    cfg = tiny_cfg()
    cfg.MODEL.WEIGHTS = weights
    model = build_model(cfg).eval()
    NATSCheckpointer(model).load(weights)
    x = torch.linspace(0, 255, 3 * 96 * 128).reshape(1, 3, 96, 128)
    with torch.no_grad():
        return model.backbone(x)


if __name__ == "__main__":
    command, folder = sys.argv[1], sys.argv[2]
    if command == "search-cut":
        search(folder, stop_at=3)
    elif command == "search-resume":
        search(folder, resume=True)
    elif command == "search-full":
        search(folder)
    elif command == "train":
        train(folder)
    elif command == "outputs":
        torch.save(outputs(sys.argv[3]), os.path.join(folder, "outputs.pth"))
    else:
        sys.exit(f"unknown command {command}")
