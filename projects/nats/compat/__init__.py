"""Environment workarounds, kept apart from the method: nothing under ``modeling/``,
``architecture/`` or ``search/`` imports them, and none changes what NATS computes.

* :mod:`.extension_standin`: a ``detectron2._C`` for a Detectron2 installed from Python sources
  only (the registry's ``pb1-detectron2==0.6``), used only where Detectron2 imports it with no
  fallback of its own (v0.6, not main); with a compiled Detectron2 it is never used.
* :mod:`.events`: ``ETAMetricPrinter``, Detectron2's terminal printer with an ETA of one's own
  (the only override of its private ``_get_eta``), used by the search's printer.
* :mod:`.export_shim`: ``detectron2.export.TracingAdapter`` on a PyTorch without Caffe2. Where
  ``from detectron2.export import TracingAdapter`` works, it returns that class untouched.
* :mod:`.launch`: Detectron2's ``launch`` where CUDA exists; without CUDA, ``--num-gpus N``
  processes over gloo (v0.6's ``launch`` asserts CUDA). The scripts import it from there.
"""

from .export_shim import tracing_adapter_class
from .extension_standin import (
    MissingExtensionError,
    has_real_extension,
    install,
    register_missing_ops,
)

__all__ = [
    "MissingExtensionError",
    "has_real_extension",
    "install",
    "register_missing_ops",
    "tracing_adapter_class",
]
