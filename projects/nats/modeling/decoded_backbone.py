"""The decoded NATS backbone: a stock ResNet whose searched 3x3 convs become split convs.

The stock builders build the network, then each searched block's ``conv2`` is replaced by a
:class:`SplitDilationConv` sharing its weight and norm (a plain dilated ``Conv2d`` where a block
kept one genotype), as the architecture file (``MODEL.NATS.ARCHITECTURE``) says.
"""

from detectron2.layers import Conv2d
from detectron2.modeling import BACKBONE_REGISTRY, ResNet
from detectron2.modeling.backbone.fpn import (
    build_resnet_fpn_backbone,
    build_retinanet_resnet_fpn_backbone,
)
from detectron2.modeling.backbone.resnet import build_resnet_backbone

from ..architecture.file_format import ArchitectureError, load_architecture
from ..config import check_architecture_file
from .split_conv import SplitDilationConv

__all__ = [
    "apply_architecture",
    "build_nats_resnet_backbone",
    "build_nats_resnet_fpn_backbone",
    "build_nats_retinanet_resnet_fpn_backbone",
]


def _searched_conv(resnet, name, source):
    stage, _, index = name.partition(".")
    blocks = getattr(resnet, stage, None) if stage in resnet.stage_names else None
    if blocks is None or not index.isdigit() or int(index) >= len(blocks):
        size = f" (it has {len(blocks)} blocks)" if blocks is not None else ""
        raise ArchitectureError(
            f"{source}: 'blocks.{name}' is not a block of this ResNet{size}; blocks are named "
            f"'<stage>.<index>' with stage in {list(resnet.stage_names)}"
        )
    conv = getattr(blocks[int(index)], "conv2", None)
    if not isinstance(conv, Conv2d) or tuple(conv.kernel_size) != (3, 3):
        raise ArchitectureError(f"{source}: 'blocks.{name}' has no 3x3 conv2 (bottleneck only)")
    if tuple(conv.dilation) != (1, 1):
        raise ArchitectureError(
            f"{source}: 'blocks.{name}' conv2 has dilation {tuple(conv.dilation)}; searched "
            "convs must be stock 3x3 (set MODEL.RESNETS.RES5_DILATION = 1)"
        )
    return blocks[int(index)], conv


def apply_architecture(resnet: ResNet, arch, *, source="architecture"):
    """Replace the searched ``conv2`` modules of ``resnet`` in place; validate ``arch`` first.

    A block that kept one genotype gets a plain dilated ``Conv2d``, the others a
    :class:`SplitDilationConv`; both share the stock conv's weight parameter and norm, so
    stock-key checkpoints load unchanged. Nothing is replaced unless all of ``arch`` fits.
    ``resnet.nats_architecture`` and ``resnet.nats_architecture_file`` then hold ``arch`` and
    ``source``: what the network's checkpoints record they were trained for
    (:func:`~projects.nats.fingerprint.describe_model`).

    Args:
        resnet (ResNet): a stock Detectron2 ResNet/ResNeXt (e.g. an FPN's ``bottom_up``) with the
            depth and widths the architecture was searched with.
        arch (Architecture): the decoded architecture (e.g. from ``load_architecture``).
        source (str): what ``arch`` came from (its path): the first word of every error message.

    Returns:
        ResNet: ``resnet``.

    Raises:
        ArchitectureError: if a searched stage or block is not in ``resnet``, a block of a
            searched stage is missing from ``arch.blocks``, or a block's ``conv2`` is not a
            stock 3x3 conv (dilation 1) with the file's ``out_channels``.
    """
    for stage in arch.candidates:
        if stage not in resnet.stage_names:
            raise ArchitectureError(
                f"{source}: searched stage '{stage}' of 'candidates' is not a stage of this "
                f"ResNet; accepted: {list(resnet.stage_names)}"
            )
        expected = [f"{stage}.{i}" for i in range(len(getattr(resnet, stage)))]
        missing = [n for n in expected if n not in arch.blocks]
        if missing:
            raise ArchitectureError(
                f"{source}: 'blocks' lacks {missing}: every block of a searched stage is listed "
                f"(is the file from a search with the same MODEL.RESNETS.DEPTH?)"
            )
    replacements = []
    for name, block_arch in arch.blocks.items():
        block, conv = _searched_conv(resnet, name, source)
        if block_arch.out_channels != conv.out_channels:
            raise ArchitectureError(
                f"{source}: 'blocks.{name}.out_channels' is {block_arch.out_channels}, but this "
                f"network's conv has {conv.out_channels} (same DEPTH/NUM_GROUPS/WIDTH_PER_GROUP?)"
            )
        replacements.append((block, conv, block_arch.genotypes))
    for block, conv, genotypes in replacements:
        if len(genotypes) == 1:
            block.conv2 = _plain_dilated(conv, genotypes[0].dilation)
        else:
            splits = [(g.dilation, g.channels) for g in genotypes]
            block.conv2 = SplitDilationConv.from_conv(conv, splits)
    resnet.nats_architecture, resnet.nats_architecture_file = arch, source
    return resnet


def _plain_dilated(conv, dilation):
    new = Conv2d(
        conv.in_channels,
        conv.out_channels,
        kernel_size=3,
        stride=conv.stride,
        padding=tuple(dilation),
        dilation=tuple(dilation),
        groups=conv.groups,
        bias=False,
        norm=conv.norm,
        activation=conv.activation,
    )
    new.weight = conv.weight
    return new


def _architecture(cfg):
    """The checked architecture file of ``cfg``: read before the stock builder runs."""
    path = check_architecture_file(cfg)
    return load_architecture(path), path


@BACKBONE_REGISTRY.register()
def build_nats_resnet_backbone(cfg, input_shape):
    """The decoded ResNet (``MODEL.NATS.ARCHITECTURE``) over Detectron2's ResNet config.

    The architecture file is checked and read before the stock builder runs.

    Args:
        cfg (CfgNode): reads ``MODEL.NATS.ARCHITECTURE`` (and, for its error message,
            ``MODEL.NATS.ARCHITECTURE_SEARCH_CONFIG``), and what ``build_resnet_backbone``
            reads: ``MODEL.RESNETS.*`` and ``MODEL.BACKBONE.FREEZE_AT``.
        input_shape (ShapeSpec): the input's shape (its channels).

    Returns:
        ResNet: with the searched convs as in :func:`apply_architecture`.

    Raises:
        ArchitectureError: if MODEL.NATS.ARCHITECTURE is empty, malformed or does not fit.
        FileNotFoundError: if MODEL.NATS.ARCHITECTURE does not exist.
    """
    arch, path = _architecture(cfg)
    return apply_architecture(build_resnet_backbone(cfg, input_shape), arch, source=path)


@BACKBONE_REGISTRY.register()
def build_nats_resnet_fpn_backbone(cfg, input_shape):
    """FPN over the decoded ResNet, as ``build_resnet_fpn_backbone`` (Faster/Mask/Cascade).

    The architecture file is checked and read before the stock builder runs.

    Args:
        cfg (CfgNode): reads ``MODEL.NATS.ARCHITECTURE`` (and, for its error message,
            ``MODEL.NATS.ARCHITECTURE_SEARCH_CONFIG``), and what ``build_resnet_fpn_backbone``
            reads: ``MODEL.RESNETS.*``, ``MODEL.BACKBONE.FREEZE_AT`` and ``MODEL.FPN.*``.
        input_shape (ShapeSpec): the input's shape (its channels).

    Returns:
        FPN: whose ``bottom_up`` is the decoded ResNet.

    Raises:
        ArchitectureError: if MODEL.NATS.ARCHITECTURE is empty, malformed or does not fit.
        FileNotFoundError: if MODEL.NATS.ARCHITECTURE does not exist.
    """
    arch, path = _architecture(cfg)
    backbone = build_resnet_fpn_backbone(cfg, input_shape)
    apply_architecture(backbone.bottom_up, arch, source=path)
    return backbone


@BACKBONE_REGISTRY.register()
def build_nats_retinanet_resnet_fpn_backbone(cfg, input_shape):
    """FPN with P6/P7 over the decoded ResNet, as ``build_retinanet_resnet_fpn_backbone``.

    The architecture file is checked and read before the stock builder runs.

    Args:
        cfg (CfgNode): reads ``MODEL.NATS.ARCHITECTURE`` (and, for its error message,
            ``MODEL.NATS.ARCHITECTURE_SEARCH_CONFIG``), and what
            ``build_retinanet_resnet_fpn_backbone`` reads: ``MODEL.RESNETS.*``,
            ``MODEL.BACKBONE.FREEZE_AT`` and ``MODEL.FPN.*``.
        input_shape (ShapeSpec): the input's shape (its channels).

    Returns:
        FPN: with P6/P7, whose ``bottom_up`` is the decoded ResNet.

    Raises:
        ArchitectureError: if MODEL.NATS.ARCHITECTURE is empty, malformed or does not fit.
        FileNotFoundError: if MODEL.NATS.ARCHITECTURE does not exist.
    """
    arch, path = _architecture(cfg)
    backbone = build_retinanet_resnet_fpn_backbone(cfg, input_shape)
    apply_architecture(backbone.bottom_up, arch, source=path)
    return backbone
