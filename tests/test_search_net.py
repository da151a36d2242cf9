"""search_net.py end to end on the built-in dataset (tiny config, epochs schedule, CPU)."""

import json
import os

import pytest
import torch
import torchvision
from common import register_tiny_shapes
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser
from test_search_trainer import search_cfg

import search_net
from projects.nats import add_nats_config
from projects.nats.architecture import load_architecture
from projects.nats.modeling import mixed_ops
from projects.nats.search import SearchTrainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "Demo", "demo_shapes_R_50_FPN_tiny.yaml")


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


@pytest.mark.parametrize("align", [1, 8])
def test_search_net_writes_architecture_and_heatmap(tmp_path, align):
    # 8 weight images / SOLVER.IMS_PER_BATCH 2 = 4 iterations per epoch: 8 iterations, 4 warm-up.
    cap = 2 if align > 1 else 0  # tiny widths: res3 16 channels in 4 groups of 4
    opts = ["MODEL.NATS.DECODE.ALIGN_CHANNELS", str(align), "MODEL.NATS.DECODE.MAX_GENOTYPES"]
    trainer = search_net.main(_args(tmp_path, *opts, str(cap)))
    assert trainer.max_iter == 8 and trainer.schedule.arch_start_iter == 4
    arch = load_architecture(os.path.join(tmp_path, "architecture.json"))
    assert arch.meta["iteration"] == 8
    assert (arch.version, arch.align_channels, arch.max_genotypes) == (
        (1, 1, 0) if align == 1 else (2, align, cap)
    )
    for block in arch.blocks.values():
        assert all(g.channels % align == 0 for g in block.genotypes)
        assert len(block.genotypes) <= (cap or len(block.genotypes))
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
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]  # atomic writes


def test_epochs_conflicting_with_max_iter_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"MODEL.NATS.SEARCH.EPOCHS=2 .*SOLVER.MAX_ITER=5"):
        search_net.main(_args(tmp_path, "SOLVER.MAX_ITER", "5"))


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("MODEL.BACKBONE.NAME", "build_resnet_fpn_backbone", "a search needs a NATS supernet"),
        ("MODEL.NATS.SEARCH.ARCH.BASE_LR", "-0.01", r"ARCH.BASE_LR must be a number > 0"),
        ("MODEL.NATS.SEARCH.ARCH.WEIGHT_DECAY", "-1.0", r"ARCH.WEIGHT_DECAY must be a number >= 0"),
        ("MODEL.NATS.GROUPS.VALUE", "0", r"MODEL.NATS.GROUPS.VALUE"),
        ("MODEL.NATS.DECODE.ALIGN_CHANNELS", "0", r"DECODE.ALIGN_CHANNELS must be an integer >= 1"),
        ("MODEL.NATS.DECODE.MAX_GENOTYPES", "-1", r"DECODE.MAX_GENOTYPES must be an integer >= 0"),
        (  # the demo's tiny widths: res3 16 channels
            "MODEL.NATS.DECODE.ALIGN_CHANNELS",
            "32",
            r"ALIGN_CHANNELS = 32 does not divide the 3x3 width of searched stage res3 \(16 ",
        ),
        ("MODEL.WEIGHTS", "/no/such/R-50.pkl", r"MODEL.WEIGHTS = /no/such/R-50.pkl does not exist"),
    ],
)
def test_bad_search_config_stops_before_data_and_output(tmp_path, key, value, message):
    out = tmp_path / "never_created"
    args = _args(out, key, value, "DATASETS.TRAIN", "('no_such_dataset',)")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        search_net.setup(args)
    assert not out.exists()
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    with pytest.raises((ValueError, FileNotFoundError), match=message):  # not the dataset's error
        SearchTrainer(cfg)


def test_search_starts_from_torchvision_imagenet_weights(tmp_path):
    # A narrow torchvision ResNet-50 (bottleneck widths 8-64): its names are converted at load,
    # and every dilated replica starts from its 3x3 weight.
    torch.manual_seed(0)
    tv = torchvision.models.resnet.ResNet(
        torchvision.models.resnet.Bottleneck, [3, 4, 6, 3], width_per_group=8
    )
    weights = tmp_path / "resnet50-narrow.pth"
    torch.save(tv.state_dict(), weights)
    cfg = search_cfg(tmp_path / "search", max_iter=1, warmup_iters=0)
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64, 256
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.WEIGHTS = str(weights)
    trainer = SearchTrainer(cfg)
    trainer.resume_or_load(resume=False)
    ops = dict(mixed_ops(trainer.model))
    for name, tv_name in (("res3.1", "layer2.1"), ("res5.2", "layer4.2")):
        pretrained = tv.state_dict()[f"{tv_name}.conv2.weight"]
        replicas = [ops[name].weight, *ops[name].replicas.values()]
        assert len(replicas) == len(ops[name].candidates)
        assert all(torch.equal(w, pretrained) for w in replicas), name
