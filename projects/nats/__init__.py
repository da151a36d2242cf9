"""NATS-D2: channel-level neural architecture transformation search for Detectron2 backbones.

Importing the package registers everything it builds (backbones, datasets).
"""

from .d2_compat import install as _install_d2_compat

_install_d2_compat()  # before anything below imports detectron2.layers

from .config import add_nats_config  # noqa: E402
from .data import register_nats_shapes  # noqa: E402
from .decoded import (  # noqa: E402
    build_nats_resnet_backbone,
    build_nats_resnet_fpn_backbone,
    build_nats_retinanet_resnet_fpn_backbone,
)
from .evaluation import build_coco_evaluator  # noqa: E402
from .supernet import (  # noqa: E402
    build_nats_supernet_resnet_backbone,
    build_nats_supernet_resnet_fpn_backbone,
    build_nats_supernet_retinanet_resnet_fpn_backbone,
)

__all__ = [
    "add_nats_config",
    "build_coco_evaluator",
    "register_nats_shapes",
    "build_nats_supernet_resnet_backbone",
    "build_nats_supernet_resnet_fpn_backbone",
    "build_nats_supernet_retinanet_resnet_fpn_backbone",
    "build_nats_resnet_backbone",
    "build_nats_resnet_fpn_backbone",
    "build_nats_retinanet_resnet_fpn_backbone",
]
