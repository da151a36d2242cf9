"""The ImageNet stand-in: a classification task of shapes, and Detectron2's stock ResNet
pretrained on it and saved as an MSRA-style ``.pkl`` that ``MODEL.WEIGHTS`` loads."""

from .shapes_classes import shapes_classification
from .standin import ensure_standin_checkpoint

__all__ = ["ensure_standin_checkpoint", "shapes_classification"]
