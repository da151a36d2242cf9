"""Detectron2's stock ResNet as an image classifier, and its trunk saved as an MSRA ``.pkl``.

The classifier is the trunk a detector builds from the same config (``build_resnet_backbone``:
depth, widths, ``STRIDE_IN_1X1``, input format and pixel normalisation), global average pooling
and one linear layer. :func:`save_msra_pkl` writes the trunk in the form of Detectron2's
``ImageNetPretrained/MSRA/R-50.pkl``: Caffe2 names (``res2_0_branch2a_w``...) and each batch norm
folded into a scale and a bias (``_bn_s``, ``_bn_b``), which Detectron2's checkpointer converts
back on load exactly as it does for MSRA's files.
"""

import math
import pickle

import torch
from detectron2.layers import ShapeSpec
from detectron2.modeling.backbone import build_resnet_backbone
from torch import nn
from torch.nn import functional as F

from ..atomic import atomic_open

__all__ = ["ResNetClassifier", "save_msra_pkl"]


class ResNetClassifier(nn.Module):
    """``build_resnet_backbone(cfg)`` up to res5, average pooling and a linear classifier.

    ``forward`` takes ``{"images": uint8 [N, H, W, 3], "labels": int64 [N]}`` batches; it returns
    ``{"loss_cls": ...}`` in training (as a Detectron2 model does) and the logits otherwise.
    """

    def __init__(self, cfg, *, num_classes):
        """
        Args:
            cfg (CfgNode): a detection config; reads ``MODEL.RESNETS`` (``NORM`` as given),
                ``MODEL.PIXEL_MEAN``/``PIXEL_STD``, ``MODEL.DEVICE``; ``FREEZE_AT`` is ignored
                (everything trains).
            num_classes (int): the classifier's outputs.
        """
        super().__init__()
        cfg = cfg.clone()
        cfg.defrost()
        cfg.MODEL.BACKBONE.FREEZE_AT = 0
        cfg.MODEL.RESNETS.OUT_FEATURES = ["res5"]
        self.trunk = build_resnet_backbone(cfg, ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN)))
        for block in self.trunk.modules():  # zero-init residuals: each block starts as identity
            if hasattr(block, "conv3") and block.conv3.norm is not None:
                torch.nn.init.zeros_(block.conv3.norm.weight)
        channels = self.trunk.output_shape()["res5"].channels
        self.linear = nn.Linear(channels, num_classes)
        self.register_buffer("pixel_mean", torch.tensor(cfg.MODEL.PIXEL_MEAN).view(1, -1, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(cfg.MODEL.PIXEL_STD).view(1, -1, 1, 1))
        self.to(torch.device(cfg.MODEL.DEVICE))

    def forward(self, batch):
        images = batch["images"].to(self.pixel_mean.device).permute(0, 3, 1, 2).float()
        features = self.trunk((images - self.pixel_mean) / self.pixel_std)["res5"]
        logits = self.linear(features.mean(dim=(2, 3)))
        if not self.training:
            return logits
        return {"loss_cls": F.cross_entropy(logits, batch["labels"].to(logits.device))}


LOADING_EPS = 1e-5  # Detectron2's FrozenBatchNorm2d and torch's BatchNorm2d default
BRANCHES = {"shortcut": "branch1", "conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c"}


def _c2_prefix(conv_name):
    """Caffe2 prefix of a Detectron2 ResNet conv (``res2.0.conv1`` -> ``res2_0_branch2a``)."""
    if conv_name == "stem.conv1":
        return "conv1"
    stage, block, conv = conv_name.split(".")
    return f"{stage}_{block}_{BRANCHES[conv]}"


def save_msra_pkl(trunk, path, *, meta=None):
    """Write ``trunk``'s weights as an MSRA-style ``.pkl`` (atomically).

    Args:
        trunk (ResNet): a Detectron2 ResNet whose convs have ``BatchNorm2d`` or
            ``FrozenBatchNorm2d`` norms, folded into ``_bn_s = weight / sqrt(running_var + eps)``
            and ``_bn_b = bias - running_mean * _bn_s`` as in MSRA's files; ``_bn_s`` is also
            multiplied by ``sqrt(1 + 1e-5)``, which the loading FrozenBN divides by, so that
            the loaded trunk computes what the trained one did.
        path (str): the ``.pkl`` to write.
        meta (dict or None): stored beside the weights under ``"nats_standin"``.
    """
    blobs = {}
    for name, conv in trunk.named_modules():
        if not isinstance(conv, nn.Conv2d):
            continue
        prefix = _c2_prefix(name)
        blobs[f"{prefix}_w"] = conv.weight.detach().cpu().numpy()
        norm = getattr(conv, "norm", None)
        if norm is None:
            continue
        # The loading norm (FrozenBN, or BN with fresh statistics) divides by sqrt(1 + eps).
        scale = norm.weight.detach() / torch.sqrt(norm.running_var + norm.eps)
        scale = scale * math.sqrt(1 + LOADING_EPS)
        bias = norm.bias.detach() - norm.running_mean * scale
        norm_prefix = "res_conv1" if prefix == "conv1" else prefix
        blobs[f"{norm_prefix}_bn_s"] = scale.cpu().numpy()
        blobs[f"{norm_prefix}_bn_b"] = bias.cpu().numpy()
    with atomic_open(path, "wb") as f:
        pickle.dump({"blobs": blobs, "nats_standin": dict(meta or {})}, f)
