"""ERF maps (paper 4.4): exact footprints, ReLU removal, dilation widens the field, the script."""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from common import tiny_cfg
from detectron2.modeling import build_backbone
from PIL import Image

import visualize_erf
from projects.nats.erf import compute_erf, erf_radius, linear_relus


def test_dilated_conv_footprint_is_exact():
    for d in (1, 2, 3):
        conv = torch.nn.Conv2d(3, 4, 3, padding=d, dilation=d)
        erf = compute_erf(conv, conv, (15, 15))
        ys, xs = np.nonzero(erf)
        assert sorted(set(ys - 7)) == [-d, 0, d] and sorted(set(xs - 7)) == [-d, 0, d]
        assert len(ys) == 9


def test_linear_relus_is_scoped():
    x = -torch.ones(3)
    with linear_relus():
        assert torch.equal(F.relu(x), x) and torch.equal(F.relu_(x.clone()), x)
    assert torch.equal(F.relu(x), torch.zeros(3))


def test_dilation_widens_the_erf():
    radii = []
    for dilation in (1, 2, 3):
        cfg = tiny_cfg()
        cfg.MODEL.BACKBONE.NAME = "build_resnet_backbone"
        torch.manual_seed(0)
        bottom_up = build_backbone(cfg)
        for block in bottom_up.res4:  # same weights, only the 3x3 dilations change
            block.conv2.dilation = block.conv2.padding = (dilation, dilation)
        erf = compute_erf(bottom_up, bottom_up.res5, (256, 256))
        assert erf.shape == (256, 256) and erf.sum() > 0
        radii.append(erf_radius(erf))
    assert radii[0] < radii[1] < radii[2]


def test_erf_radius_of_known_maps():
    erf = np.zeros((21, 21))
    erf[10, 10] = 1.0
    assert erf_radius(erf) == 0.0
    erf[10, 15] = erf[10, 5] = 4.0
    assert erf_radius(erf, 0.9) == 5.0


def test_visualize_erf_script(tmp_path):
    cfg = tiny_cfg()
    config = tmp_path / "tiny.yaml"
    config.write_text(cfg.dump())
    out = tmp_path / "erf.png"
    radii = visualize_erf.main(
        [
            "--panel",
            f"a:{config}",
            "--panel",
            f"b:{config}",
            "--output",
            os.fspath(out),
            "--size",
            "64",
            "64",
            "MODEL.RESNETS.NORM",
            "FrozenBN",
        ]
    )
    assert set(radii) == {"a", "b"} and radii["a"]["radius90"] >= radii["a"]["radius50"] > 0
    assert Image.open(out).size[0] > Image.open(out).size[1]  # two panels side by side
    assert json.loads((tmp_path / "erf.json").read_text()) == radii
