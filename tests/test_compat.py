"""The environment: imports in fresh interpreters, and the detectron2._C stand-in, used only
where Detectron2 imports its extension with no fallback of its own (v0.6, not main)."""

import inspect
import os
import subprocess
import sys

import pytest
import torch
from detectron2.layers import deform_conv

from projects.nats.compat import MissingExtensionError, has_real_extension

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Detectron2 main imports _C inside try blocks and falls back by itself; v0.6 imports it bare.
OWN_FALLBACK = "except ImportError" in inspect.getsource(deform_conv)
needs_standin = pytest.mark.skipif(
    has_real_extension() or OWN_FALLBACK,
    reason="a real detectron2._C is installed, or this Detectron2 has its own fallbacks (main): "
    "the stand-in is not used; test_standin_only_where_detectron2_needs_it checks that",
)
no_extension = pytest.mark.skipif(
    has_real_extension(), reason="a real detectron2._C is installed: its ops run"
)


def _fresh_python(code):
    """Run ``code`` in a new interpreter from a folder outside the repository."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd="/", env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_imports_with_detectron2_first():
    out = _fresh_python(
        "import detectron2.modeling, detectron2.engine, detectron2.evaluation\n"
        "import projects.nats\n"
        "from detectron2.modeling import BACKBONE_REGISTRY\n"
        "print('ok', len(BACKBONE_REGISTRY._obj_map))"
    )
    assert out.startswith("ok")


def test_imports_with_package_first():
    out = _fresh_python("import projects.nats, detectron2.engine; print('ok')")
    assert out.strip() == "ok"


def test_collect_env_info_runs():
    out = _fresh_python(
        "from detectron2.utils.collect_env import collect_env_info; print(collect_env_info())"
    )
    assert "detectron2" in out and "PyTorch" in out


@needs_standin
def test_standin_answers_env_queries_truthfully():
    import detectron2._C as C

    assert "not built" in C.get_compiler_version()
    assert "not built" in C.get_cuda_version()
    assert C.has_cuda() is False


@needs_standin
def test_standin_deform_conv_error_names_op():
    # on CPU DeformConv runs torchvision's op; on GPU it calls detectron2._C, which raises
    from detectron2.layers import deform_conv

    with pytest.raises(MissingExtensionError, match="deform_conv_forward.*full detectron2 build"):
        deform_conv._C.deform_conv_forward(torch.rand(1, 4, 8, 8))
    with pytest.raises(MissingExtensionError, match="modulated deformable"):
        deform_conv._C.modulated_deform_conv_forward()


@no_extension
def test_standin_only_where_detectron2_needs_it():
    out = _fresh_python(
        "import sys, projects.nats, detectron2.evaluation\n"
        "from detectron2.evaluation import COCOEvaluator, coco_evaluation\n"
        "from detectron2.layers import deform_conv\n"
        "m = sys.modules.get('detectron2._C')\n"
        "print(type(m).__name__, hasattr(deform_conv, '_C'),\n"
        "      coco_evaluation.COCOeval_opt is coco_evaluation.COCOeval)"
    )
    if OWN_FALLBACK:  # main: its dummy deformable convs and plain COCOeval stay in charge
        assert out.split() == ["NoneType", "False", "True"]
    else:  # v0.6 cannot import detectron2.layers without _C
        assert out.split() == ["_StandInModule", "True", "False"]


@pytest.mark.skipif(not OWN_FALLBACK or has_real_extension(), reason="main without its _C only")
def test_main_keeps_its_own_fallbacks():
    with pytest.raises(ImportError, match="detectron2 is not compiled successfully"):
        deform_conv.DeformConv(4, 4, 3)
    assert "detectron2._C" not in sys.modules


@no_extension
def test_standin_rotated_ops_error():
    from detectron2.layers import nms_rotated
    from detectron2.structures import RotatedBoxes, pairwise_iou_rotated

    boxes = RotatedBoxes(torch.tensor([[5.0, 5.0, 4.0, 4.0, 0.0]]))
    with pytest.raises(MissingExtensionError, match="box_iou_rotated"):
        pairwise_iou_rotated(boxes, boxes)
    with pytest.raises(MissingExtensionError, match="nms_rotated"):
        nms_rotated(boxes.tensor, torch.ones(1), 0.5)


@needs_standin
def test_standin_fast_coco_eval_error():
    from detectron2.evaluation import fast_eval_api

    with pytest.raises(MissingExtensionError, match="fast COCO evaluation"):
        fast_eval_api._C.COCOevalEvaluateImages()
