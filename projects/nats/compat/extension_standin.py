"""A stand-in for ``detectron2._C`` when detectron2 was installed without its C++ extension.

detectron2 v0.6 imports ``detectron2._C`` while importing ``detectron2.layers`` (so modeling,
engine and evaluation), although only deformable convs, rotated-box ops and the fast COCO
evaluator call into it. Detectron2's main imports it inside ``try`` blocks and has fallbacks of
its own (dummy deformable convs, ``COCOEvaluator`` on plain pycocotools). :func:`install` appends
an import finder to the END of ``sys.meta_path`` that answers only for ``detectron2._C``, and only
for an import statement with no ``except ImportError`` around it: a real build, found by the
normal finders first, always wins, and Detectron2's own fallbacks stay in charge. The stand-in:

* answers Detectron2's environment queries truthfully (``get_compiler_version()`` and
  ``get_cuda_version()`` say "not built", ``has_cuda()`` is False);
* raises :class:`MissingExtensionError`, naming the op, on any use of an op it lacks.

Both versions also call the rotated-box ops through ``torch.ops.detectron2.*``, which only the
real extension registers, and neither has a fallback for them: :func:`register_missing_ops`
registers ops that raise :class:`MissingExtensionError` instead, where no real build exists.

It must work whatever is imported first, so the set-up installs it at interpreter start through
a ``.pth`` file in ``.venv`` (``scripts/setup_env.py``), and ``projects.nats`` calls
:func:`install` too for other environments. This file imports only the standard library.
"""

import ast
import functools
import importlib.abc
import importlib.machinery
import os
import sys
import types

__all__ = ["MissingExtensionError", "install", "has_real_extension", "register_missing_ops"]

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
# The ops the real extension registers under torch.ops.detectron2 (csrc/vision.cpp).
_TORCH_OPS = {
    "nms_rotated": "(Tensor boxes, Tensor scores, float iou_threshold) -> Tensor",
    "box_iou_rotated": "(Tensor boxes1, Tensor boxes2) -> Tensor",
    "roi_align_rotated_forward": "(Tensor input, Tensor rois, float spatial_scale, "
    "int pooled_height, int pooled_width, int sampling_ratio) -> Tensor",
    "roi_align_rotated_backward": "(Tensor grad, Tensor rois, float spatial_scale, "
    "int pooled_height, int pooled_width, int batch_size, int channels, int height, int width, "
    "int sampling_ratio) -> Tensor",
}
_IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")


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
        register_missing_ops()


class _StandInFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname != _NAME or _importer_has_fallback(sys._getframe(1)):
            return None
        return importlib.machinery.ModuleSpec(fullname, _StandInLoader(), origin="stand-in")


def _importer_has_fallback(frame):
    """Whether the import of ``detectron2._C`` happens inside a ``try`` that catches
    ``ImportError``: then a module has a fallback of its own, and the import must fail.

    ``frame`` is the finder's caller. Walking out through importlib, each module being imported
    (Detectron2 main's ``fast_eval_api`` imports ``_C`` bare, but ``COCOEvaluator``'s module
    imports ``fast_eval_api`` inside ``try``) is checked, up to the first function that imports.
    ``sys._getframe`` is CPython's, where Detectron2 runs: the one private detail here.
    """
    importlib_dir = os.path.dirname(importlib.__file__)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not (filename.startswith("<frozen") or os.path.dirname(filename) == importlib_dir):
            if _inside_try(filename, frame.f_lineno):
                return True
            if frame.f_code.co_name != "<module>":
                return False
        frame = frame.f_back
    return False


@functools.lru_cache(maxsize=None)
def _inside_try(filename, lineno):
    try:
        with open(filename) as f:
            tree = ast.parse(f.read(), filename)
    except (OSError, SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_catches_import_error(h) for h in node.handlers):
            for stmt in node.body:
                for sub in ast.walk(stmt):
                    if isinstance(sub, (ast.Import, ast.ImportFrom)):
                        if sub.lineno <= lineno <= sub.end_lineno:
                            return True
    return False


def _catches_import_error(handler):
    if handler.type is None:
        return True
    types_ = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(t, ast.Name) and t.id in _IMPORT_ERRORS for t in types_)


def register_missing_ops():
    """Where no real extension exists, register the ``torch.ops.detectron2`` ops it would, each
    raising :class:`MissingExtensionError` (torch's own error names no feature). Needs torch
    imported; idempotent; does nothing where the ops exist (a real build registered them)."""
    torch = sys.modules.get("torch")
    if torch is None or hasattr(register_missing_ops, "lib"):
        return
    if has_real_extension():
        return
    try:
        lib = torch.library.Library("detectron2", "DEF")
        for op, schema in _TORCH_OPS.items():
            lib.define(op + schema)
            fail = _missing(op)
            lib.impl(op, lambda *a, fail=fail: fail(), "CompositeExplicitAutograd")
    except RuntimeError:  # already defined by a real build or an earlier stand-in
        return
    register_missing_ops.lib = lib  # the library lives as long as the registration


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
    register_missing_ops = _first.register_missing_ops
