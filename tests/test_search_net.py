"""search_net.py end to end on the built-in dataset (tiny config, epochs schedule, CPU)."""

import json
import os

import pytest
from common import register_tiny_shapes
from detectron2.engine import default_argument_parser

import search_net
from projects.nats.architecture import load_architecture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "NATS-Search", "demo_shapes_R_50_FPN_tiny.yaml")


def _args(output_dir, *opts):
    train, arch, _ = register_tiny_shapes()
    return default_argument_parser().parse_args(
        [
            "--config-file",
            CONFIG,
            "OUTPUT_DIR",
            str(output_dir),
            "DATASETS.TRAIN",
            f"('{train}',)",
            "MODEL.NATS.SEARCH.ARCH.DATASETS",
            f"('{arch}',)",
            "INPUT.MIN_SIZE_TRAIN",
            "(96,)",
            "INPUT.MAX_SIZE_TRAIN",
            "128",
            "MODEL.NATS.SEARCH.LOG_PERIOD",
            "3",
            *opts,
        ]
    )


def test_search_net_writes_architecture_and_heatmap(tmp_path):
    # 8 weight images / SOLVER.IMS_PER_BATCH 2 = 4 iterations per epoch: 8 iterations, 4 warm-up.
    trainer = search_net.main(_args(tmp_path))
    assert trainer.max_iter == 8 and trainer.schedule.arch_start_iter == 4
    arch = load_architecture(os.path.join(tmp_path, "architecture.json"))
    assert arch.meta["iteration"] == 8
    assert arch.group_mode == "count" and arch.group_value == 4
    assert (
        sorted(b.split(".")[0] for b in arch.blocks) == ["res3"] * 4 + ["res4"] * 6 + ["res5"] * 3
    )
    with open(os.path.join(tmp_path, "architecture_heatmap.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(tmp_path, "metrics.json")) as f:
        records = [json.loads(line) for line in f]
    assert "arch/res5.2/entropy" in records[-1] and "arch/res3.0/I_1x1" in records[-1]
    assert records[-1]["iteration"] == 7
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".architecture-")]  # atomic


def test_epochs_conflicting_with_max_iter_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"MODEL.NATS.SEARCH.EPOCHS=2 .*SOLVER.MAX_ITER=5"):
        search_net.main(_args(tmp_path, "SOLVER.MAX_ITER", "5"))
