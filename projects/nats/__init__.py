"""NATS-D2: channel-level neural architecture transformation search for Detectron2 backbones.

Importing the package registers its backbones (``modeling/``) and built-in datasets (``data/``).
The method: ``modeling/`` (the search op, the decoded op, their backbones), ``architecture/``
(the architecture file, eq. 4-6 decoding, the random-architecture control), ``search/`` (the
search trainer), ``erf/`` (effective receptive fields), ``pretrain/`` (the ImageNet stand-in).
"""

from . import compat as _compat

_compat.install()  # before detectron2.layers loads; used only where Detectron2 has no fallback

from . import modeling as _  # noqa: E402, F401  # only registration
from .architecture import load_architecture  # noqa: E402
from .checkpoint import NATSCheckpointer  # noqa: E402
from .config import add_nats_config  # noqa: E402
from .data import register_nats_shapes  # noqa: E402
from .evaluation import build_coco_evaluator  # noqa: E402

_compat.register_missing_ops()  # clear errors from the rotated ops where no _C exists

__all__ = [
    "NATSCheckpointer",
    "add_nats_config",
    "build_coco_evaluator",
    "load_architecture",
    "register_nats_shapes",
]
