"""A stand-in for ``detectron2._C`` when detectron2 was installed without its C++ extension.

detectron2 v0.6 imports ``detectron2._C`` while importing ``detectron2.layers`` (so modeling,
engine and evaluation), although only deformable convs, rotated-box ops and the fast COCO
evaluator call into it. :func:`install` appends an import finder to the END of
``sys.meta_path`` that answers only for ``detectron2._C``: a real build, found by the normal
finders first, always wins and nothing here runs. The stand-in:

* answers Detectron2's environment queries truthfully (``get_compiler_version()`` and
  ``get_cuda_version()`` say "not built", ``has_cuda()`` is False);
* raises :class:`MissingExtensionError`, naming the op, on any use of an op it lacks.

It must work whatever is imported first, so the set-up installs it at interpreter start through
a ``.pth`` file in ``.venv`` (``scripts/setup_env.py``), and ``projects.nats`` calls
:func:`install` too for other environments. This file imports only the standard library.
"""

import importlib.abc
import importlib.machinery
import sys
import types

__all__ = ["MissingExtensionError", "install", "has_real_extension"]

_NAME = "detectron2._C"
_MARK = "_nats_d2_standin"
# What each op of detectron2._C (v0.6) is for, so the error can say what the user asked for.
_OP_FEATURES = {
    "deform_conv": "deformable convolution (DeformConv, DEFORM_ON_PER_STAGE)",
    "modulated_deform_conv": "modulated deformable convolution (ModulatedDeformConv)",
    "box_iou_rotated": "rotated boxes (pairwise_iou_rotated, RotatedBoxes)",
    "roi_align_rotated": "rotated RoI align (ROIAlignRotated)",
    "nms_rotated": "rotated NMS (nms_rotated, batched_nms_rotated)",
    "COCOeval": "the fast COCO evaluation (COCOEvaluator(use_fast_impl=True))",
    "InstanceAnnotation": "the fast COCO evaluation (COCOEvaluator(use_fast_impl=True))",
}


class MissingExtensionError(RuntimeError):
    """An op of detectron2's C++ extension was used, and this detectron2 has none."""


def _missing(op):
    feature = next((f for key, f in _OP_FEATURES.items() if op.startswith(key)), "this op")
    message = (
        f"detectron2._C.{op} is not available: {feature} needs a full detectron2 build with its "
        "C++/CUDA extension, and this detectron2 was installed from Python sources only "
        "(pb1-detectron2==0.6, see README). Build detectron2 from source to use it, or choose "
        "a model and evaluator that do not need it."
    )

    def raise_missing(*args, **kwargs):
        raise MissingExtensionError(message)

    raise_missing.__name__ = op
    return raise_missing


class _StandInModule(types.ModuleType):
    """``detectron2._C`` without the extension: truthful env queries, clear errors otherwise."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _missing(name)


class _StandInLoader(importlib.abc.Loader):
    def create_module(self, spec):
        module = _StandInModule(spec.name)
        module.get_compiler_version = lambda: "not built (detectron2._C stand-in)"
        module.get_cuda_version = lambda: "not built (detectron2._C stand-in)"
        module.has_cuda = lambda: False
        setattr(module, _MARK, True)
        return module

    def exec_module(self, module):
        _register_torch_ops()


class _StandInFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != _NAME:
            return None
        return importlib.machinery.ModuleSpec(fullname, _StandInLoader(), origin="stand-in")


def _register_torch_ops():
    """``layers/nms.py`` calls ``torch.ops.detectron2.nms_rotated``: make it raise clearly."""
    torch = sys.modules.get("torch")
    if torch is None or hasattr(_register_torch_ops, "lib"):
        return
    try:
        lib = torch.library.Library("detectron2", "DEF")
        lib.define("nms_rotated(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor")
        fail = _missing("nms_rotated")
        lib.impl("nms_rotated", lambda *a: fail(), "CompositeExplicitAutograd")
    except RuntimeError:  # already defined by a real build or an earlier stand-in
        return
    _register_torch_ops.lib = lib  # the library lives as long as the registration


def install():
    """Add the stand-in finder at the end of ``sys.meta_path`` (idempotent)."""
    if not any(getattr(f, _MARK, False) for f in sys.meta_path):
        finder = _StandInFinder()
        setattr(finder, _MARK, True)
        sys.meta_path.append(finder)


def has_real_extension():
    """True when ``detectron2._C`` is a real build (its fast ops can be used)."""
    try:
        import detectron2._C as C
    except ImportError:
        return False
    return not getattr(C, _MARK, False)


# The .pth hook loads this file at start-up as "_nats_d2_compat"; the module
# `projects.nats.compat.extension_standin` is then a second copy of it. Both must hand out the
# same objects (``except MissingExtensionError``).
_first = sys.modules.setdefault("_nats_d2_compat", sys.modules[__name__])
if _first is not sys.modules[__name__]:
    MissingExtensionError = _first.MissingExtensionError
    install = _first.install
    has_real_extension = _first.has_real_extension
