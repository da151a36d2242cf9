"""ERF maps (paper 4.4): exact footprints, ReLU removal in this thread only, dilation widens the
field at every later map, a failed measurement leaves no trace, the script."""

import json
import os
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from common import tiny_cfg
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_backbone, build_model
from PIL import Image
from test_decoded_backbone import _randomize_norms

import visualize_erf
from projects.nats.architecture import Architecture, BlockArchitecture, Genotype, save_architecture
from projects.nats.erf import compute_erf, erf_maps, erf_radius, linear_relus
from projects.nats.erf import measure as erf_measure


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
    cfg.MODEL.RESNETS.NORM = "FrozenBN"
    config = tmp_path / "tiny.yaml"
    config.write_text(cfg.dump())
    DetectionCheckpointer(build_model(cfg), str(tmp_path)).save("weights")
    weights = tmp_path / "weights.pth"
    out = tmp_path / "erf.png"
    result = visualize_erf.main(
        [
            "--panel",
            f"a:{config}:{weights}",
            "--panel",
            f"b:{config}:{weights}",
            "--output",
            os.fspath(out),
            "--size",
            "64",
            "64",
            "MODEL.RESNETS.NORM",
            "FrozenBN",
        ]
    )
    features = ["res2", "res3", "res4", "res5", "p2", "p3", "p4", "p5", "p6"]
    assert result["features"] == features  # every stage and level, from one pass each
    radii = result["radii"]
    assert set(radii) == {"a", "b"} and result["reference"] == "a"
    assert all(radii["a"][f]["radius90"] >= radii["a"][f]["radius50"] > 0 for f in features)
    assert result["ratios"]["b"] == {f: 1.0 for f in features}  # the same model twice
    # At 64x64 the deepest map fills the input (its radii are lower bounds), the first does not;
    # the same model twice: the same maps.
    cut = result["reaches_border"]
    assert ["a", "p6"] in cut and ["a", "res2"] not in cut
    assert [f for label, f in cut if label == "a"] == [f for label, f in cut if label == "b"]
    assert json.loads((tmp_path / "erf.json").read_text()) == result
    table = (tmp_path / "erf.txt").read_text()
    assert "b/a" in table and all(f in table for f in features)
    width, height = Image.open(out).size
    assert width > 3 * height  # a row per model, a column per feature map


def test_linear_relus_covers_every_relu_in_this_thread_only():
    x = -torch.ones(3)
    relus = [
        F.relu,
        lambda t: F.relu_(t.clone()),
        torch.relu,
        lambda t: t.relu(),
        lambda t: t.clone().relu_(),
        torch.nn.ReLU(),
        torch.nn.ReLU(inplace=True),
    ]
    inside, other_thread = threading.Event(), []

    def elsewhere():  # runs while the main thread measures
        inside.wait()
        other_thread.append(F.relu(x))

    worker = threading.Thread(target=elsewhere)
    worker.start()
    with linear_relus():
        inside.set()
        worker.join()
        assert all(torch.equal(relu(x), x) for relu in relus)
    assert torch.equal(other_thread[0], torch.zeros(3))
    assert all(torch.equal(relu(x), torch.zeros(3)) for relu in relus)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_k_all_ones_3x3_convs_see_exactly_2k_plus_1_pixels(k):
    convs = [torch.nn.Conv2d(3 if i == 0 else 2, 2, 3, padding=1, bias=False) for i in range(k)]
    model = torch.nn.Sequential(*convs)
    for conv in convs:
        torch.nn.init.ones_(conv.weight)
    erf = compute_erf(model, model[-1], (31, 31))
    ys, xs = np.nonzero(erf)
    assert ys.max() - ys.min() + 1 == 2 * k + 1 and xs.max() - xs.min() + 1 == 2 * k + 1


def _tiny_fpn(norm="FrozenBN"):
    cfg = tiny_cfg()
    cfg.MODEL.RESNETS.NORM = norm
    torch.manual_seed(0)
    return cfg, build_backbone(cfg)


def test_a_measurement_that_raises_leaves_the_model_as_it_was(monkeypatch):
    _, backbone = _tiny_fpn(norm="BN")
    backbone.train()
    modes = {n: m.training for n, m in backbone.named_modules()}
    relu = F.relu
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = backbone.eval()(x)
    backbone.train()

    def fail(*args, **kwargs):
        raise RuntimeError("midway")

    monkeypatch.setattr(erf_measure, "_centre_grad", fail)  # after the forward, hooks in place
    with pytest.raises(RuntimeError, match="midway"):
        erf_maps(backbone, ["res4", "p3"], (64, 64))
    monkeypatch.undo()
    assert {n: m.training for n, m in backbone.named_modules()} == modes
    assert F.relu is relu and torch.equal(F.relu(-torch.ones(2)), torch.zeros(2))
    assert not any(m._forward_hooks for m in backbone.modules())
    assert all(p.grad is None for p in backbone.parameters())
    with torch.no_grad():
        after = backbone.eval()(x)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_larger_dilations_widen_every_searched_and_later_map(tmp_path):
    cfg, stock = _tiny_fpn()
    _randomize_norms(stock)
    dilated = {"res3": [(2, 2), (3, 3)], "res4": [(2, 2), (3, 3)], "res5": [(3, 3), (5, 5)]}
    blocks = {}
    for stage, (d1, d2) in dilated.items():
        for i, block in enumerate(getattr(stock.bottom_up, stage)):
            c = block.conv2.out_channels
            blocks[f"{stage}.{i}"] = BlockArchitecture(
                out_channels=c,
                num_groups=4,
                genotypes=(
                    Genotype(dilation=d1, channels=c // 2, groups=(0, 1)),
                    Genotype(dilation=d2, channels=c // 2, groups=(2, 3)),
                ),
            )
    arch = Architecture(
        candidates={s: list(d) for s, d in dilated.items()},
        group_mode="count",
        group_value=4,
        blocks=blocks,
    )
    path = str(tmp_path / "dilated.json")
    save_architecture(arch, path)
    cfg.MODEL.BACKBONE.NAME = "build_nats_resnet_fpn_backbone"
    cfg.MODEL.NATS.ARCHITECTURE = path
    decoded = build_backbone(cfg)
    decoded.load_state_dict(stock.state_dict())  # the same weights, other dilations
    features = ["res2", "res3", "res4", "res5", "p2", "p3", "p4", "p5", "p6"]
    a, b = erf_maps(stock, features, (192, 192)), erf_maps(decoded, features, (192, 192))
    assert np.array_equal(a["res2"], b["res2"])  # before the first searched stage
    for f in features[1:]:
        assert erf_radius(b[f]) > erf_radius(a[f]), f
