"""The NATS supernet backbone: Detectron2's ResNet/ResNeXt whose searched bottlenecks' 3x3 convs
are :class:`MixedDilationConv` (paper section 3.4), and its FPN variants.

The stock builders build the network; each block of a searched stage is then rebuilt as a
:class:`NATSSupernetBottleneck` taking over the stock block's weights (so the same seed gives
the same supernet function at init as the stock net when the logits pick (1, 1)).
"""

from detectron2.modeling import BACKBONE_REGISTRY
from detectron2.modeling.backbone.fpn import (
    build_resnet_fpn_backbone,
    build_retinanet_resnet_fpn_backbone,
)
from detectron2.modeling.backbone.resnet import BottleneckBlock, build_resnet_backbone

from ..search_space import check_search_mode_config, parse_search_space
from .mixed_op import MixedDilationConv

__all__ = [
    "NATSSupernetBottleneck",
    "make_supernet_resnet",
    "build_nats_supernet_resnet_backbone",
    "build_nats_supernet_resnet_fpn_backbone",
    "build_nats_supernet_retinanet_resnet_fpn_backbone",
]


class NATSSupernetBottleneck(BottleneckBlock):
    """A ``BottleneckBlock`` whose ``conv2`` is a :class:`MixedDilationConv`; freezing it
    freezes the weights but never the architecture logits."""

    def __init__(
        self,
        in_channels,
        out_channels,
        *,
        candidates,
        search_groups,
        search_mode="mix",
        shared_weights=False,
        **kwargs,
    ):
        """
        Args:
            in_channels (int): input channels of the block.
            out_channels (int): output channels of the block.
            candidates: (dh, dw) dilations of the mixed op, in the order of its logits' columns.
            search_groups (int): channel groups N of the mixed op (a divisor of the bottleneck
                channels).
            search_mode (str): the mixed op's ``mode``: "mix" or "sample".
            shared_weights (bool): one 3x3 weight for every dilation (no replicas).
            kwargs: ``BottleneckBlock``'s other arguments (``bottleneck_channels``, ``stride``,
                ``num_groups``, ``norm``, ``stride_in_1x1``); the mixed op takes the stock
                ``conv2``'s shape, stride, groups and norm.
        """
        super().__init__(in_channels, out_channels, **kwargs)
        self.conv2 = MixedDilationConv.from_conv(
            self.conv2,
            candidates=candidates,
            num_groups=search_groups,
            mode=search_mode,
            shared_weights=shared_weights,
        )

    def freeze(self):
        """Freeze the block as ``BottleneckBlock.freeze`` does, but keep the logits trainable."""
        super().freeze()
        self.conv2.alpha.requires_grad_(True)
        return self


def _supernet_block(block, *, name, candidates, space, norm, frozen, mode, shared):
    conv = block.conv2
    if type(block) is not BottleneckBlock:
        raise ValueError(
            f"MODEL.NATS.STAGES: block {name} is a {type(block).__name__}; NATS searches "
            f"BottleneckBlock 3x3 convs only (MODEL.RESNETS.DEPTH 50/101/152 and "
            f"MODEL.RESNETS.DEFORM_ON_PER_STAGE False on searched stages)"
        )
    if tuple(conv.dilation) != (1, 1):
        raise ValueError(
            f"MODEL.NATS.STAGES: block {name} has dilation {tuple(conv.dilation)}; searched "
            f"stages need dilation 1 (MODEL.RESNETS.RES5_DILATION 1 when res5 is searched)"
        )
    new = NATSSupernetBottleneck(
        block.in_channels,
        block.out_channels,
        candidates=candidates,
        search_groups=space.num_groups(conv.out_channels, conv_groups=conv.groups, where=name),
        search_mode=mode,
        shared_weights=shared,
        bottleneck_channels=conv.out_channels,
        stride=block.stride,
        num_groups=conv.groups,
        norm=norm,
        stride_in_1x1=tuple(block.conv1.stride) != (1, 1),
    )
    if frozen:
        new.freeze()
    new.load_state_dict(block.state_dict())  # the replicas are filled from conv2.weight
    return new


def make_supernet_resnet(resnet, cfg):
    """Turn the searched stages (``MODEL.NATS``) of a stock Detectron2 ``ResNet`` into supernet
    stages in place; returns ``resnet``.

    Every block of a searched stage becomes a :class:`NATSSupernetBottleneck` that takes over its
    weights (each replica a copy of ``conv2.weight``); in stages up to
    ``MODEL.BACKBONE.FREEZE_AT`` the new blocks are frozen, except their logits.

    Args:
        resnet (ResNet): a stock ResNet/ResNeXt built from ``cfg`` (e.g. an FPN's ``bottom_up``).
        cfg (CfgNode): reads ``MODEL.NATS.STAGES``, ``CANDIDATES`` and ``GROUPS``,
            ``MODEL.NATS.SEARCH.{MODE, SHARED_WEIGHTS}``, ``MODEL.RESNETS.NORM`` and
            ``MODEL.BACKBONE.FREEZE_AT``.

    Returns:
        ResNet: ``resnet``.

    Raises:
        ValueError: for a bad ``MODEL.NATS`` key, a searched stage that ``resnet`` does not
            build, a searched block that is not a plain ``BottleneckBlock`` or has dilation != 1,
            or channel groups that do not fit a conv.
    """
    space = parse_search_space(cfg)
    norm = cfg.MODEL.RESNETS.NORM
    freeze_at = cfg.MODEL.BACKBONE.FREEZE_AT
    mode, shared = check_search_mode_config(cfg)
    for stage in space.stages:
        if stage not in resnet.stage_names:
            raise ValueError(
                f"MODEL.NATS.STAGES: stage {stage} is not built by this ResNet (it has "
                f"{list(resnet.stage_names)}); MODEL.RESNETS.OUT_FEATURES must reach it"
            )
        blocks = getattr(resnet, stage)
        frozen = freeze_at >= int(stage[len("res") :])
        for i, block in enumerate(blocks):
            blocks[i] = _supernet_block(
                block,
                name=f"{stage}.{i}",
                candidates=space.candidates[stage],
                space=space,
                norm=norm,
                frozen=frozen,
                mode=mode,
                shared=shared,
            )
    return resnet


@BACKBONE_REGISTRY.register()
def build_nats_supernet_resnet_backbone(cfg, input_shape):
    """The supernet ResNet (bottom-up only) over Detectron2's ``MODEL.RESNETS`` config.

    Args:
        cfg (CfgNode): reads ``MODEL.NATS.STAGES``, ``CANDIDATES`` and ``GROUPS`` (checked before
            anything is built), and what ``build_resnet_backbone`` reads: ``MODEL.RESNETS.*``
            and ``MODEL.BACKBONE.FREEZE_AT``.
        input_shape (ShapeSpec): the input's shape (its channels).

    Returns:
        ResNet: with the searched stages as in :func:`make_supernet_resnet`.
    """
    parse_search_space(cfg)  # fail on a bad MODEL.NATS before building anything
    return make_supernet_resnet(build_resnet_backbone(cfg, input_shape), cfg)


@BACKBONE_REGISTRY.register()
def build_nats_supernet_resnet_fpn_backbone(cfg, input_shape):
    """FPN over the supernet ResNet, as ``build_resnet_fpn_backbone`` (Faster/Mask/Cascade).

    Args:
        cfg (CfgNode): reads ``MODEL.NATS.STAGES``, ``CANDIDATES`` and ``GROUPS`` (checked before
            anything is built), and what ``build_resnet_fpn_backbone`` reads:
            ``MODEL.RESNETS.*``, ``MODEL.BACKBONE.FREEZE_AT`` and ``MODEL.FPN.*``.
        input_shape (ShapeSpec): the input's shape (its channels).

    Returns:
        FPN: whose ``bottom_up`` is the supernet ResNet.
    """
    parse_search_space(cfg)
    backbone = build_resnet_fpn_backbone(cfg, input_shape)
    make_supernet_resnet(backbone.bottom_up, cfg)
    return backbone


@BACKBONE_REGISTRY.register()
def build_nats_supernet_retinanet_resnet_fpn_backbone(cfg, input_shape):
    """FPN with P6/P7 over the supernet ResNet, as ``build_retinanet_resnet_fpn_backbone``.

    Args:
        cfg (CfgNode): reads ``MODEL.NATS.STAGES``, ``CANDIDATES`` and ``GROUPS`` (checked before
            anything is built), and what ``build_retinanet_resnet_fpn_backbone`` reads:
            ``MODEL.RESNETS.*``, ``MODEL.BACKBONE.FREEZE_AT`` and ``MODEL.FPN.*``.
        input_shape (ShapeSpec): the input's shape (its channels).

    Returns:
        FPN: with P6/P7, whose ``bottom_up`` is the supernet ResNet.
    """
    parse_search_space(cfg)
    backbone = build_retinanet_resnet_fpn_backbone(cfg, input_shape)
    make_supernet_resnet(backbone.bottom_up, cfg)
    return backbone
