"""Datasets of NATS-D2; importing this registers the built-in ``nats_shapes_*`` splits."""

from .shapes import (
    BUILTIN_SPLITS,
    SHAPE_CLASSES,
    ensure_shapes_generated,
    generate_shapes,
    register_nats_shapes,
    shapes_cache_dir,
)

__all__ = [
    "BUILTIN_SPLITS",
    "SHAPE_CLASSES",
    "ensure_shapes_generated",
    "generate_shapes",
    "register_nats_shapes",
    "shapes_cache_dir",
]
