"""ImageNet checkpoints: torchvision .pth names are converted; Caffe2-format .pkl loads as-is."""

import pickle

import torch
import torchvision
from common import tiny_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone
from detectron2.modeling.backbone.resnet import build_resnet_backbone
from test_decoded_backbone import decoded_cfg

from projects.nats.checkpoint import NATSCheckpointer, convert_torchvision_resnet


def _randomize_bn(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def test_torchvision_resnet50_loads_and_matches(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet50(weights=None).eval()
    _randomize_bn(tv)
    path = tmp_path / "resnet50-tv.pth"
    torch.save(tv.state_dict(), path)

    cfg = tiny_cfg()
    cfg.MODEL.RESNETS.STEM_OUT_CHANNELS, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64, 256
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 64
    cfg.MODEL.RESNETS.NORM, cfg.MODEL.BACKBONE.FREEZE_AT = "FrozenBN", 0
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False  # torchvision's stride is in the 3x3 conv
    d2 = build_resnet_backbone(cfg, ShapeSpec(channels=3)).eval()
    before = {k: v.clone() for k, v in d2.state_dict().items()}
    NATSCheckpointer(d2).load(str(path))
    assert all(not torch.equal(before[k], v) for k, v in d2.state_dict().items())  # all loaded

    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = tv.layer4(tv.layer3(tv.layer2(tv.layer1(tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))))))
        out = d2(x)["res5"]
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_conversion_names():
    tv = {
        "conv1.weight": 0,
        "bn1.running_var": 1,
        "bn1.num_batches_tracked": 2,
        "layer3.5.bn2.bias": 3,
        "layer1.0.downsample.0.weight": 4,
        "layer4.2.downsample.1.running_mean": 5,
        "layer2.1.conv3.weight": 6,
        "fc.weight": 7,
    }
    assert convert_torchvision_resnet(tv) == {
        "stem.conv1.weight": 0,
        "stem.conv1.norm.running_var": 1,
        "res4.5.conv2.norm.bias": 3,
        "res2.0.shortcut.weight": 4,
        "res5.2.shortcut.norm.running_mean": 5,
        "res3.1.conv3.weight": 6,
    }


def _c2_name(key):
    """Detectron2 -> Caffe2 (MSRA R-50.pkl) names, the reverse of Detectron2's own renaming."""
    key = key.replace("stem.conv1.norm.weight", "res_conv1_bn_s").replace(
        "stem.conv1.norm.bias", "res_conv1_bn_b"
    )
    key = key.replace("stem.conv1.weight", "conv1_w")
    for d2, c2 in (
        ("conv1", "branch2a"),
        ("conv2", "branch2b"),
        ("conv3", "branch2c"),
        ("shortcut", "branch1"),
    ):
        key = key.replace(f".{d2}.norm.weight", f"_{c2}_bn_s").replace(
            f".{d2}.norm.bias", f"_{c2}_bn_b"
        )
        key = key.replace(f".{d2}.weight", f"_{c2}_w")
    return key.replace(".", "_")


def test_caffe2_pkl_loads_into_a_decoded_backbone(tmp_path):
    cfg = decoded_cfg(tmp_path, num_groups=8, seed=4)
    torch.manual_seed(0)
    source = build_backbone(cfg).bottom_up  # a decoded net has the stock keys
    blobs = {
        _c2_name(k): v.numpy()
        for k, v in source.state_dict().items()
        if not k.endswith(("running_mean", "running_var"))
    }
    path = tmp_path / "R-tiny.pkl"
    path.write_bytes(pickle.dumps({"blobs": blobs}))
    decoded, reference = build_backbone(cfg), build_backbone(_stock_cfg(cfg))
    for model in (decoded, reference):
        NATSCheckpointer(model).load(str(path))
    loaded, expected = decoded.bottom_up.state_dict(), reference.bottom_up.state_dict()
    assert loaded.keys() == expected.keys()
    for k, v in source.state_dict().items():
        if k.endswith("weight") or k.endswith("bias"):
            assert torch.equal(loaded[k], v), k  # read from the file
        torch.testing.assert_close(loaded[k], expected[k], rtol=0, atol=0)  # as stock reads it


def _stock_cfg(cfg):
    cfg = cfg.clone()
    cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    return cfg
