"""The supernet backbone: shapes, group modes, ResNeXt, freezing, the weight optimizer without the
logits, and function preservation from stock checkpoints (.pth and c2 .pkl via
DetectionCheckpointer)."""

import logging
import pickle

import pytest
import torch
from common import tiny_cfg
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import build_backbone, build_model

from projects.nats.config import SETTING_C_RES5, SETTING_C_RES34
from projects.nats.modeling import mixed_ops
from projects.nats.modeling.mixed_op import MixedDilationConv
from projects.nats.modeling.supernet_backbone import NATSSupernetBottleneck
from projects.nats.search.optim import (
    arch_parameters,
    build_weight_optimizer,
    is_arch_param_name,
    weight_parameters,
)


def supernet_cfg(name="build_nats_supernet_resnet_fpn_backbone", **groups):
    cfg = tiny_cfg()
    cfg.MODEL.BACKBONE.NAME = name
    cfg.MODEL.NATS.GROUPS.MODE = groups.get("mode", "count")
    cfg.MODEL.NATS.GROUPS.VALUE = groups.get("value", 4)
    return cfg


def stock_name(name):
    return name.replace("nats_supernet_", "")


@pytest.mark.parametrize("depth", [50, 101])
def test_shapes_strides_and_logits_follow_group_modes(depth):
    cfg = supernet_cfg(value=4)
    cfg.MODEL.RESNETS.DEPTH = depth
    stock_cfg = cfg.clone()
    stock_cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    supernet, stock = build_backbone(cfg), build_backbone(stock_cfg)
    assert supernet.output_shape() == stock.output_shape()
    x = torch.randn(1, 3, 64, 96)
    out, ref = supernet(x), stock(x)
    assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in ref.items()}
    arch = arch_parameters(supernet)
    depth_blocks = {"res3": 4, "res4": 6 if depth == 50 else 23, "res5": 3}
    assert [n for n, _ in arch] == [f"{s}.{i}" for s, n in depth_blocks.items() for i in range(n)]
    for name, alpha in arch:
        k = len(SETTING_C_RES5 if name.startswith("res5") else SETTING_C_RES34)
        assert alpha.shape == (4, k) and (alpha == 0).all()
    assert all(isinstance(b, NATSSupernetBottleneck) for b in supernet.bottom_up.res4)
    assert not isinstance(supernet.bottom_up.res2[0].conv2, MixedDilationConv)

    if depth != 50:
        return
    cfg = supernet_cfg(mode="channels", value=8)  # widths 16/32/64 (res3/4/5) -> 2/4/8 groups
    ops = dict(mixed_ops(build_backbone(cfg)))
    assert ops["res3.1"].alpha.shape == (2, 5)
    assert ops["res4.0"].alpha.shape == (4, 5)
    assert ops["res5.2"].alpha.shape == (8, 9)


@pytest.mark.parametrize("name", ["build_nats_supernet_retinanet_resnet_fpn_backbone"])
def test_retinanet_variant_and_path_level_g1(name):
    cfg = supernet_cfg(name, value=1)
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res3", "res4", "res5"]
    cfg.MODEL.FPN.IN_FEATURES = ["res3", "res4", "res5"]
    stock_cfg = cfg.clone()
    stock_cfg.MODEL.BACKBONE.NAME = stock_name(name)
    supernet = build_backbone(cfg)
    assert supernet.output_shape() == build_backbone(stock_cfg).output_shape()
    assert "p7" in supernet.output_shape()
    assert all(alpha.shape[0] == 1 for _, alpha in arch_parameters(supernet))
    out = supernet(torch.randn(1, 3, 64, 64))
    sum(v.sum() for v in out.values()).backward()
    assert all(alpha.grad is not None for _, alpha in arch_parameters(supernet))


def test_resnext_and_misaligned_division():
    cfg = supernet_cfg(value=2)
    cfg.MODEL.RESNETS.NUM_GROUPS = 4  # res3 conv2: 64 channels in 4 conv groups of 16
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 8
    backbone = build_backbone(cfg)
    op = dict(mixed_ops(backbone))["res3.0"]
    assert op.groups == 4 and op.alpha.shape == (2, 5)
    assert backbone(torch.randn(1, 3, 64, 64))["p2"].shape[1] == 16
    cfg.MODEL.NATS.GROUPS.MODE, cfg.MODEL.NATS.GROUPS.VALUE = "channels", 8
    with pytest.raises(ValueError, match=r"cuts through its conv groups of 16 channels"):
        build_backbone(cfg)


@pytest.mark.parametrize(
    "norm,norm_type",
    [
        ("FrozenBN", FrozenBatchNorm2d),
        ("BN", torch.nn.BatchNorm2d),
        ("SyncBN", torch.nn.SyncBatchNorm),
    ],
)
def test_one_norm_after_the_mix_of_each_type(norm, norm_type):
    cfg = supernet_cfg()
    cfg.MODEL.RESNETS.NORM = norm
    cfg.MODEL.BACKBONE.FREEZE_AT = 2
    backbone = build_backbone(cfg)
    for name, op in mixed_ops(backbone):
        assert type(op.norm) is norm_type, name
        assert op.norm.num_features == op.out_channels
    assert all(alpha.requires_grad for _, alpha in arch_parameters(backbone))
    norm_keys = [k for k in backbone.state_dict() if k.startswith("bottom_up.res4.0.conv2.norm.")]
    assert "bottom_up.res4.0.conv2.norm.weight" in norm_keys  # the stock key layout


def test_freeze_and_weight_optimizer_exclude_logits():
    cfg = supernet_cfg()
    cfg.MODEL.BACKBONE.FREEZE_AT = 4  # stem, res2, res3, res4 frozen
    cfg.MODEL.RESNETS.NORM = "FrozenBN"
    model = build_model(cfg)
    ops = dict(mixed_ops(model))
    assert (
        not ops["res4.0"].weight.requires_grad and not ops["res4.0"].replicas["2x2"].requires_grad
    )
    assert isinstance(ops["res4.0"].norm, FrozenBatchNorm2d)
    assert all(alpha.requires_grad for _, alpha in arch_parameters(model))
    assert ops["res5.0"].weight.requires_grad
    logit_names = [n for n, _ in model.named_parameters() if is_arch_param_name(n)]
    assert len(logit_names) == len(ops) == 13
    assert len(weight_parameters(model)) == len(list(model.parameters())) - 13

    cfg.SOLVER.WEIGHT_DECAY = 0.1
    opt = build_weight_optimizer(cfg, model)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not any(id(alpha) in in_opt for _, alpha in arch_parameters(model))
    assert id(ops["res5.0"].replicas["3x3"]) in in_opt
    assert all(alpha.requires_grad for _, alpha in arch_parameters(model))  # restored
    before = [alpha.detach().clone() for _, alpha in arch_parameters(model)]
    for _, alpha in arch_parameters(model):
        alpha.grad = torch.ones_like(alpha)
    opt.step()
    assert all(torch.equal(b, a) for b, (_, a) in zip(before, arch_parameters(model)))


def test_arch_parameters_through_ddp_style_wrapper():
    model = build_backbone(supernet_cfg())
    wrapper = torch.nn.Module()
    wrapper.module = model  # what DistributedDataParallel exposes
    names = [n for n, _ in arch_parameters(wrapper)]
    assert names == [n for n, _ in arch_parameters(model)] and names[0] == "res3.0"


def _one_hot_11(model):
    with torch.no_grad():
        for _, op in mixed_ops(model):
            op.alpha.fill_(-30.0)
            op.alpha[:, op.anchor] = 30.0


def _c2_name(key):
    """Detectron2 ResNet key -> Caffe2 (Detectron1) blob name (inverse of the c2 renaming)."""
    stem = {"stem.conv1.weight": "conv1_w"}
    if key in stem:
        return stem[key]
    if key.startswith("stem.conv1.norm."):
        return "res_conv1_bn_" + {"weight": "s", "bias": "b"}.get(key.split(".")[-1], "")
    stage, index, conv, *rest = key.split(".")
    branch = {"conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c", "shortcut": "branch1"}
    base = f"{stage}_{index}_{branch[conv]}"
    if not rest[0] == "norm":
        return base + "_w"
    return base + "_bn_" + {"weight": "s", "bias": "b"}[rest[1]]


@pytest.mark.parametrize("fmt", ["pth", "c2pkl"])
def test_function_preservation_from_stock_checkpoint(tmp_path, fmt):
    torch.manual_seed(3)
    cfg = supernet_cfg("build_nats_supernet_resnet_backbone")
    cfg.MODEL.RESNETS.NORM = "FrozenBN"
    stock_cfg = cfg.clone()
    stock_cfg.MODEL.BACKBONE.NAME = "build_resnet_backbone"
    stock = build_backbone(stock_cfg)
    with torch.no_grad():  # random, non-trivial FrozenBN statistics and weights
        for name, buf in stock.named_buffers():
            buf.copy_(torch.rand_like(buf) + 0.5 if "var" in name else torch.randn_like(buf) * 0.1)
        for p in stock.parameters():
            p.mul_(torch.rand_like(p) + 0.5)
    state = {k: v.clone() for k, v in stock.state_dict().items()}
    if fmt == "pth":
        path = tmp_path / "stock.pth"
        torch.save({"model": state}, path)
    else:  # Caffe2-style names (res3_0_branch2b_w ...), no "__author__": renamed + suffix-matched
        path = tmp_path / "stock.pkl"
        blobs = {}
        for k, v in state.items():
            if k.endswith("running_mean") or k.endswith("running_var"):
                continue  # c2 keeps BN as an affine scale/bias; fold the stats in below
            blobs[_c2_name(k)] = v.numpy()
        for k in [k for k in state if k.endswith("norm.weight")]:
            prefix = k[: -len("weight")]
            inv = (state[prefix + "running_var"] + 1e-5).rsqrt()
            blobs[_c2_name(k)] = (state[k] * inv).numpy()
            bias = state[prefix + "bias"] - state[prefix + "running_mean"] * state[k] * inv
            blobs[_c2_name(prefix + "bias")] = bias.numpy()
        with open(path, "wb") as f:
            pickle.dump({"blobs": blobs}, f)

    supernet = build_backbone(cfg)
    assert not torch.equal(dict(mixed_ops(supernet))["res4.1"].weight, stock.res4[1].conv2.weight)
    checkpointer, warnings = DetectionCheckpointer(supernet), []
    handler = logging.Handler(logging.WARNING)  # its logger may not propagate (setup_logger)
    handler.emit = lambda record: warnings.append(record.getMessage())
    checkpointer.logger.addHandler(handler)
    try:
        checkpointer.load(str(path))  # logs the model's keys missing from the checkpoint
    finally:
        checkpointer.logger.removeHandler(handler)
    assert not [w for w in warnings if "conv2" in w], warnings  # the replicas were filled
    assert not [w for w in warnings if "replicas" in w or "alpha" in w], warnings
    for _, op in mixed_ops(supernet):
        for w in op.candidate_weights():
            assert torch.equal(w, op.weight)  # every replica filled from the pretrained weight
    _one_hot_11(supernet)
    stock.eval(), supernet.eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        ref, out = stock(x), supernet(x)
    for k in ref:
        torch.testing.assert_close(out[k], ref[k], rtol=1e-4, atol=1e-5)
    # the logits matter: uniform mixing changes the output
    with torch.no_grad():
        for _, op in mixed_ops(supernet):
            op.alpha.zero_()
        assert not torch.allclose(supernet(x)["res5"], ref["res5"], atol=1e-3)


def test_supernet_checkpoint_round_trip_keeps_replicas(tmp_path):
    torch.manual_seed(4)
    a = build_backbone(supernet_cfg("build_nats_supernet_resnet_backbone"))
    with torch.no_grad():
        for _, op in mixed_ops(a):
            op.alpha.normal_()
            op.replicas["2x2"].add_(1.0)
    DetectionCheckpointer(a, str(tmp_path)).save("supernet")
    b = build_backbone(supernet_cfg("build_nats_supernet_resnet_backbone"))
    DetectionCheckpointer(b).load(str(tmp_path / "supernet.pth"))
    for (_, oa), (_, ob) in zip(mixed_ops(a), mixed_ops(b)):
        assert torch.equal(oa.alpha, ob.alpha)
        assert torch.equal(oa.replicas["2x2"], ob.replicas["2x2"])
        assert not torch.equal(ob.replicas["2x2"], ob.weight)


def test_bad_stage_and_depth_refused():
    cfg = supernet_cfg("build_nats_supernet_resnet_backbone")
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    with pytest.raises(ValueError, match="BottleneckBlock"):
        build_backbone(cfg, ShapeSpec(channels=3))
    cfg = supernet_cfg("build_nats_supernet_resnet_backbone")
    cfg.MODEL.RESNETS.RES5_DILATION = 2
    with pytest.raises(ValueError, match="RES5_DILATION"):
        build_backbone(cfg)
