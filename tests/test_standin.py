"""The ImageNet stand-in (projects/nats/pretrain/): its MSRA-style .pkl loads through
MODEL.WEIGHTS into the stock, supernet and decoded backbones with every trunk key, reproduces the
trained trunk exactly, and the trunk really learns its task."""

import json
import logging
import math
import pickle

import pytest
import torch
from common import tiny_cfg
from detectron2.modeling import build_model
from test_checkpoint import _randomize_bn
from test_decoded_backbone import decoded_cfg

from projects.nats.checkpoint import NATSCheckpointer
from projects.nats.pretrain import ensure_standin_checkpoint, shapes_classification
from projects.nats.pretrain.classifier import ResNetClassifier, save_msra_pkl
from projects.nats.pretrain.shapes_classes import NUM_CLASSES


def _load_logged(model, path, caplog):
    checkpointer = NATSCheckpointer(model)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=checkpointer.logger.name):
        checkpointer.load(str(path))
    return caplog.text


@pytest.fixture(scope="module")
def pkl(tmp_path_factory):
    """A tiny trunk with non-trivial BN statistics, saved as the stand-in saves it."""
    out = tmp_path_factory.mktemp("standin")
    torch.manual_seed(0)
    classifier = ResNetClassifier(tiny_cfg(), num_classes=NUM_CLASSES).eval()
    _randomize_bn(classifier)
    save_msra_pkl(classifier.trunk, str(out / "model.pkl"), meta={"test": 1})
    return out / "model.pkl", classifier


def test_the_pkl_is_msra_style_and_reproduces_the_trunk_with_frozen_bn(pkl, tmp_path, caplog):
    path, classifier = pkl
    data = pickle.loads(path.read_bytes())
    assert {"conv1_w", "res_conv1_bn_s", "res2_0_branch1_w", "res5_2_branch2c_bn_b"} <= set(
        data["blobs"]
    )
    cfg = tiny_cfg(tmp_path)
    cfg.MODEL.RESNETS.NORM, cfg.MODEL.BACKBONE.FREEZE_AT = "FrozenBN", 2  # fine-tuning defaults
    model = build_model(cfg).eval()
    log = _load_logged(model, path, caplog)
    assert "bottom_up" not in log.split("not found in the checkpoint")[-1], log
    assert "were not used" not in log or "bottom_up" not in log.split("were not used")[-1]
    x = torch.rand(2, 3, 64, 64) * 255
    trunk = model.backbone.bottom_up
    with torch.no_grad():
        expected = classifier.trunk((x - classifier.pixel_mean) / classifier.pixel_std)["res5"]
        got = trunk((x - model.pixel_mean) / model.pixel_std)["res5"]
    # Equal up to float rounding (folding reorders the arithmetic), not up to FrozenBN's eps.
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4 * expected.abs().max().item())


@pytest.mark.parametrize("kind", ["supernet", "decoded"])
def test_the_pkl_loads_into_searched_and_decoded_backbones(pkl, tmp_path, caplog, kind):
    path, classifier = pkl
    cfg = decoded_cfg(tmp_path)  # FrozenBN
    if kind == "supernet":
        cfg.MODEL.BACKBONE.NAME = "build_nats_supernet_resnet_fpn_backbone"
        cfg.MODEL.NATS.GROUPS.MODE, cfg.MODEL.NATS.GROUPS.VALUE = "count", 4
    model = build_model(cfg)
    log = _load_logged(model, path, caplog)
    assert "bottom_up" not in log.split("not found in the checkpoint")[-1], log
    state = model.backbone.bottom_up.state_dict()
    trunk = classifier.trunk.state_dict()
    assert torch.equal(state["res2.0.conv1.weight"], trunk["res2.0.conv1.weight"])
    for name in ("res3.0", "res4.2", "res5.1"):
        w = trunk[f"{name}.conv2.weight"]
        if kind == "supernet":  # every dilated replica holds the ImageNet 3x3 weight
            replicas = [v for k, v in state.items() if k.startswith(f"{name}.conv2.replicas.")]
            replicas = [r for r in replicas if r.dim() == 4]
            assert replicas and all(torch.equal(r, w) for r in replicas)
        else:  # the split convs together hold it, channels in the decoded order
            parts = [v for k, v in state.items() if k.startswith(f"{name}.conv2.") and v.dim() == 4]
            assert sum(p.shape[0] for p in parts) == w.shape[0]
            assert {tuple(r.flatten().tolist()) for p in parts for r in p} == {
                tuple(r.flatten().tolist()) for r in w
            }


def test_the_standin_trains_once_and_beats_chance(tmp_path, monkeypatch):
    cfg = tiny_cfg()
    settings = dict(num_train=2048, num_val=600, size=64, iters=300, batch=32)
    path = ensure_standin_checkpoint(cfg, cache_dir=str(tmp_path), **settings)
    report = json.loads((tmp_path / path.split("/")[-2] / "standin.json").read_text())
    # Well above chance: 4 binomial standard deviations (the tiny trunk reaches ~0.16 vs 0.083).
    p = report["chance"]
    assert report["val_accuracy"] > p + 4 * math.sqrt(p * (1 - p) / 600), report
    assert (tmp_path / path.split("/")[-2] / "metrics.json").is_file()
    # Cached: the same settings never train again; other settings get another folder.
    import projects.nats.pretrain.standin as standin

    monkeypatch.setattr(standin, "_train", lambda *a: pytest.fail("trained again"))
    assert ensure_standin_checkpoint(cfg, cache_dir=str(tmp_path), **settings) == path
    with pytest.raises(KeyError, match="accepted"):
        ensure_standin_checkpoint(cfg, cache_dir=str(tmp_path), epochs=3)


def test_the_task_is_seeded_by_split():
    a, la = shapes_classification(num_images=6, split="train", size=32)
    b, lb = shapes_classification(num_images=6, split="train", size=32)
    c, _ = shapes_classification(num_images=6, split="val", size=32)
    assert (a == b).all() and (la == lb).all() and not (a == c).all()
    assert a.shape == (6, 32, 32, 3) and a.dtype.name == "uint8" and la.max() < NUM_CLASSES
