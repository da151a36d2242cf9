"""Detectron2's ``TracingAdapter`` (TorchScript tracing) on a PyTorch without Caffe2.

``detectron2/export/__init__.py`` (v0.6) imports its Caffe2 exporter first, which needs
``caffe2.proto``: gone from PyTorch 2.x wheels, so ``from detectron2.export import
TracingAdapter`` (and ``detectron2.utils.analysis``, which does that) fails although tracing
needs no Caffe2. :func:`tracing_adapter_class` then registers ``detectron2.export`` without
running that ``__init__``, imports ``detectron2.export.flatten`` (the real ``TracingAdapter``)
and makes any other name of the package raise an error saying why.
"""

import importlib
import importlib.util
import sys

__all__ = ["tracing_adapter_class"]

_MISSING = (
    "detectron2.export.{name} needs Caffe2 (caffe2.proto), which this PyTorch does not ship; "
    "only TracingAdapter (TorchScript tracing) is available here"
)


def _caffe2_free_export_package():
    spec = importlib.util.find_spec("detectron2.export")
    package = importlib.util.module_from_spec(spec)  # its __init__ is not executed

    def missing(name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(_MISSING.format(name=name))

    package.__getattr__ = missing
    sys.modules["detectron2.export"] = package
    flatten = importlib.import_module("detectron2.export.flatten")
    package.TracingAdapter = flatten.TracingAdapter
    return package


def tracing_adapter_class():
    """``detectron2.export.TracingAdapter``, importable with or without Caffe2."""
    try:
        from detectron2.export import TracingAdapter
    except ImportError as e:
        if "caffe2" not in str(e):
            raise
        sys.modules.pop("detectron2.export", None)
        TracingAdapter = _caffe2_free_export_package().TracingAdapter
    return TracingAdapter
