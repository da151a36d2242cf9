"""The decoded split-conv backbone: exact stock equivalence, stock keys, params/FLOPs, errors."""

import json

import pytest
import torch
import torch.nn.functional as F
from common import tiny_cfg
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.layers import Conv2d
from detectron2.modeling import build_backbone, build_model
from fvcore.nn import FlopCountAnalysis as FvcoreFlops

from projects.nats.architecture import (
    Architecture,
    ArchitectureError,
    BlockArchitecture,
    Genotype,
    save_architecture,
)
from projects.nats.compat import tracing_adapter_class
from projects.nats.config import SETTING_C_RES5, SETTING_C_RES34
from projects.nats.modeling.split_conv import SplitDilationConv

STAGES = ("res3", "res4", "res5")


def random_architecture(resnet, *, num_groups=4, seed=0, only_11=False):
    """A valid architecture for ``resnet``: each channel group's genotype drawn at random."""
    gen = torch.Generator().manual_seed(seed)
    cands = {
        s: [tuple(d) for d in (SETTING_C_RES5 if s == "res5" else SETTING_C_RES34)] for s in STAGES
    }
    blocks = {}
    for stage in STAGES:
        for i, block in enumerate(getattr(resnet, stage)):
            c = block.conv2.out_channels
            ind = (
                [0] * num_groups
                if only_11
                else torch.randint(len(cands[stage]), (num_groups,), generator=gen).tolist()
            )
            genotypes = []
            for j, d in enumerate(cands[stage]):
                chosen = tuple(k for k in range(num_groups) if ind[k] == j)
                if chosen:
                    channels = c // num_groups * len(chosen)
                    genotypes.append(Genotype(dilation=d, channels=channels, groups=chosen))
            blocks[f"{stage}.{i}"] = BlockArchitecture(
                out_channels=c, num_groups=num_groups, genotypes=tuple(genotypes)
            )
    return Architecture(candidates=cands, group_mode="count", group_value=num_groups, blocks=blocks)


def decoded_cfg(
    tmp_path, *, depth=50, num_groups=4, seed=0, only_11=False, resnext=False, norm="FrozenBN"
):
    """tiny_cfg with a NATS backbone over a random architecture written to ``tmp_path``."""
    cfg = tiny_cfg(tmp_path, depth=depth)
    cfg.MODEL.RESNETS.NORM = norm
    if resnext:
        cfg.MODEL.RESNETS.NUM_GROUPS, cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 32, 1
    stock = build_backbone(cfg).bottom_up
    path = str(tmp_path / f"arch_{depth}_{num_groups}_{seed}_{only_11}.json")
    save_architecture(
        random_architecture(stock, num_groups=num_groups, seed=seed, only_11=only_11), path
    )
    cfg.MODEL.NATS.ARCHITECTURE = path
    cfg.MODEL.BACKBONE.NAME = "build_nats_resnet_fpn_backbone"
    return cfg


def _stock(cfg):
    stock = cfg.clone()
    stock.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    return stock


def _randomize_norms(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for name, buf in model.named_buffers():
        if name.endswith("running_var"):
            buf.copy_(torch.rand(buf.shape, generator=gen) + 0.5)
        elif name.endswith("running_mean"):
            buf.copy_(torch.randn(buf.shape, generator=gen) * 0.1)


@pytest.mark.parametrize(
    "groups,splits",
    [(1, [((1, 1), 8), ((2, 3), 16), ((5, 1), 8)]), (4, [((1, 1), 12), ((3, 3), 4), ((1, 5), 16)])],
)
def test_split_conv_equals_slices_of_full_dilated_convs(groups, splits):
    torch.manual_seed(0)
    conv = SplitDilationConv(
        in_channels=16, out_channels=32, splits=splits, stride=2, groups=groups
    )
    x = torch.randn(2, 16, 13, 11)
    expected, start = [], 0
    for d, c in splits:  # genotype g: its slice of the full conv with dilation g
        full = F.conv2d(x, conv.weight, None, 2, d, d, groups)
        expected.append(full[:, start : start + c])
        start += c
    torch.testing.assert_close(conv(x), torch.cat(expected, 1), rtol=1e-5, atol=1e-5)
    assert [n for n, _ in conv.named_parameters()] == ["weight"]


def test_all_11_equals_stock_and_any_architecture_loads_stock_keys(tmp_path):
    cfg = decoded_cfg(tmp_path, only_11=True)
    torch.manual_seed(0)
    stock = build_backbone(_stock(cfg)).eval()
    _randomize_norms(stock)
    decoded = build_backbone(cfg).eval()
    decoded.load_state_dict(stock.state_dict(), strict=True)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        a, b = stock(x), decoded(x)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-5)
    for block in decoded.bottom_up.res4:  # all groups chose one genotype: a plain conv
        assert type(block.conv2) is Conv2d and block.conv2.dilation == (1, 1)
    for seed in (1, 2):
        other = build_backbone(decoded_cfg(tmp_path, num_groups=8, seed=seed))
        shapes = {k: v.shape for k, v in other.state_dict().items()}
        assert shapes == {k: v.shape for k, v in stock.state_dict().items()}
        assert isinstance(other.bottom_up.res4[0].conv2, SplitDilationConv)
        with torch.no_grad():
            out = other(x)
        assert not torch.allclose(out["p2"], a["p2"])  # dilations do act


def test_save_load_same_outputs(tmp_path):
    cfg = decoded_cfg(tmp_path, num_groups=8, seed=3, norm="BN")
    model = build_model(cfg).eval()
    _randomize_norms(model)
    DetectionCheckpointer(model, str(tmp_path)).save("decoded")
    again = build_model(cfg).eval()
    DetectionCheckpointer(again).load(str(tmp_path / "decoded.pth"))
    x = torch.rand(3, 96, 128) * 255
    with torch.no_grad():
        a = model([{"image": x}])[0]["instances"]
        b = again([{"image": x}])[0]["instances"]
    torch.testing.assert_close(a.pred_boxes.tensor, b.pred_boxes.tensor)
    torch.testing.assert_close(a.scores, b.scores)


@pytest.mark.parametrize(
    "depth,resnext,num_groups", [(50, False, 8), (101, False, 16), (101, True, 64)]
)
def test_params_and_fvcore_flops_equal_stock(tmp_path, depth, resnext, num_groups):
    cfg = decoded_cfg(tmp_path, depth=depth, resnext=resnext, num_groups=num_groups, seed=depth)
    stock, decoded = build_backbone(_stock(cfg)).eval(), build_backbone(cfg).eval()
    if resnext:  # 64 groups of 1-4 channels cut through ResNeXt's conv groups (2-8 wide)
        assert any(
            p[4] == 1 and p[1] - p[0] < p[3] - p[2] for p in decoded.bottom_up.res5[0].conv2.pieces
        )
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(decoded) == count(stock)
    x = torch.randn(1, 3, 64, 96)
    flops = [
        FvcoreFlops(m, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()
        for m in (stock, decoded)
    ]
    assert flops[0] == flops[1] > 0


def test_whole_detector_fvcore_flops_equal_stock(tmp_path):
    tracing_adapter_class()  # detectron2.utils.analysis imports detectron2.export
    from detectron2.utils.analysis import FlopCountAnalysis

    cfg = decoded_cfg(tmp_path, num_groups=8, seed=5)
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 20
    inputs = [{"image": torch.rand(3, 96, 128) * 255}]
    totals, counts = [], []
    for c in (_stock(cfg), cfg):
        torch.manual_seed(0)
        model = build_model(c).eval()
        with torch.no_grad():  # proposals = anchors: the heads cost the same in both models
            for p in model.proposal_generator.rpn_head.parameters():
                p.zero_()
            images = model.preprocess_image(inputs)
            proposals, _ = model.proposal_generator(images, model.backbone(images.tensor))
        counts.append(len(proposals[0]))
        totals.append(FlopCountAnalysis(model, inputs).unsupported_ops_warnings(False).total())
    assert counts[0] == counts[1] > 0  # the heads see as many proposals: same head FLOPs
    assert totals[0] == totals[1] > 0


def test_missing_architecture_file_names_the_search_config(tmp_path):
    cfg = decoded_cfg(tmp_path)
    cfg.MODEL.NATS.ARCHITECTURE = str(tmp_path / "output" / "architecture.json")
    cfg.MODEL.NATS.ARCHITECTURE_SEARCH_CONFIG = "configs/NATS-Search/x.yaml"
    with pytest.raises(
        FileNotFoundError, match="run search_net.py with configs/NATS-Search/x.yaml first"
    ):
        build_backbone(cfg)


def test_architecture_not_fitting_the_network_is_rejected(tmp_path):
    cfg = decoded_cfg(tmp_path)
    data = json.load(open(cfg.MODEL.NATS.ARCHITECTURE))
    bad = tmp_path / "bad.json"
    for edit, message in [
        (lambda d: d["blocks"].pop("res4.5"), r"'blocks' lacks \['res4.5'\]"),
        (
            lambda d: d["blocks"].__setitem__("res4.9", d["blocks"]["res4.0"]),
            "'blocks.res4.9' is not a block",
        ),
        (
            lambda d: d["blocks"]["res3.1"].update(
                out_channels=128,
                genotypes=[{"dilation": [1, 1], "channels": 128, "groups": [0, 1, 2, 3]}],
            ),
            "'blocks.res3.1.out_channels' is 128",
        ),
    ]:
        d = json.loads(json.dumps(data))
        edit(d)
        bad.write_text(json.dumps(d))
        cfg.MODEL.NATS.ARCHITECTURE = str(bad)
        with pytest.raises(ArchitectureError, match=message):
            build_backbone(cfg)
    cfg.MODEL.NATS.ARCHITECTURE = ""
    with pytest.raises(ArchitectureError, match="MODEL.NATS.ARCHITECTURE is empty"):
        build_backbone(cfg)


@pytest.mark.parametrize("resnext", [False, True])
def test_aligned_architecture_builds_with_stock_params_and_flops(tmp_path, resnext):
    from projects.nats.architecture import load_architecture, realign_architecture

    cfg = decoded_cfg(tmp_path, num_groups=8, seed=3, resnext=resnext)  # 2-8 channels per group
    exact = load_architecture(cfg.MODEL.NATS.ARCHITECTURE)
    aligned = realign_architecture(exact, align_channels=8, max_genotypes=3)
    path = str(tmp_path / "aligned.json")
    save_architecture(aligned, path)
    cfg.MODEL.NATS.ARCHITECTURE = path
    stock, decoded = build_backbone(_stock(cfg)).eval(), build_backbone(cfg).eval()
    changed = 0
    for name, block in aligned.blocks.items():
        stage, index = name.split(".")
        conv = getattr(decoded.bottom_up, stage)[int(index)].conv2
        want = [(g.dilation, g.channels) for g in block.genotypes]
        if isinstance(conv, SplitDilationConv):  # each genotype's slice as the file says
            assert conv.splits == want and all(c % 8 == 0 for _, c in conv.splits)
        else:
            assert len(want) == 1 and tuple(conv.dilation) == want[0][0]
        changed += block != exact.blocks[name]
    assert changed > 0
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(decoded) == count(stock)
    decoded.load_state_dict(stock.state_dict())  # stock keys and shapes
    x = torch.randn(1, 3, 64, 96)
    flops = [
        FvcoreFlops(m, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()
        for m in (stock, decoded)
    ]
    assert flops[0] == flops[1] > 0
