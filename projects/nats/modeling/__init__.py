"""The search op and the decoded op, and the backbones built from them.

* :class:`MixedDilationConv` (``mixed_op.py``): the supernet's searched 3x3 conv (eq. 2-3);
* :class:`SplitDilationConv` (``split_conv.py``): the decoded 3x3 conv, split by output channels;
* ``supernet_backbone.py`` / ``decoded_backbone.py``: Detectron2's ResNet(-FPN) builders with the
  searched stages turned into either, registered in ``BACKBONE_REGISTRY`` on import.
"""

from .decoded_backbone import (
    apply_architecture,
    build_nats_resnet_backbone,
    build_nats_resnet_fpn_backbone,
    build_nats_retinanet_resnet_fpn_backbone,
)
from .mixed_op import MixedDilationConv, mixed_ops
from .split_conv import SplitDilationConv
from .supernet_backbone import (
    NATSSupernetBottleneck,
    build_nats_supernet_resnet_backbone,
    build_nats_supernet_resnet_fpn_backbone,
    build_nats_supernet_retinanet_resnet_fpn_backbone,
)

__all__ = [
    "MixedDilationConv",
    "NATSSupernetBottleneck",
    "SplitDilationConv",
    "apply_architecture",
    "build_nats_resnet_backbone",
    "build_nats_resnet_fpn_backbone",
    "build_nats_retinanet_resnet_fpn_backbone",
    "build_nats_supernet_resnet_backbone",
    "build_nats_supernet_resnet_fpn_backbone",
    "build_nats_supernet_retinanet_resnet_fpn_backbone",
    "mixed_ops",
]
