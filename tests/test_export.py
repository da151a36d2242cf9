"""Deployment of a decoded model: DefaultPredictor, and TorchScript tracing with TracingAdapter."""

import numpy as np
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.engine import DefaultPredictor
from detectron2.modeling import build_model
from test_decoded_backbone import decoded_cfg

from projects.nats.export import export_tracing_adapter
from projects.nats.modeling.split_conv import SplitDilationConv


def _model(tmp_path):
    cfg = decoded_cfg(tmp_path, num_groups=8, seed=11)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0  # keep detections from a random model
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    assert any(isinstance(m, SplitDilationConv) for m in model.modules())
    return cfg, model


def test_traced_outputs_equal_eager(tmp_path, monkeypatch):
    # The trace records plain convs. Eager CPU inference shares one oneDNN-blocked input among the
    # genotypes' convs, equal to them up to float rounding (test_split_conv.py), which a random
    # detector amplifies; compare the trace with the plain path, exactly.
    monkeypatch.setattr(SplitDilationConv, "share_blocked_input", False)
    _, model = _model(tmp_path)
    image = torch.rand(3, 96, 128) * 255
    traced, adapter = export_tracing_adapter(model, image)
    with torch.no_grad():
        eager = model.inference([{"image": image}], do_postprocess=False)[0]
        flat = traced(image)
    out = adapter.outputs_schema(flat)[0]["instances"]
    assert len(eager) > 0 and len(out) == len(eager)
    torch.testing.assert_close(out.pred_boxes.tensor, eager.pred_boxes.tensor)
    torch.testing.assert_close(out.scores, eager.scores)
    torch.testing.assert_close(out.pred_classes, eager.pred_classes)
    other = torch.rand(3, 96, 128) * 255  # the trace generalizes to another image
    with torch.no_grad():
        torch.testing.assert_close(
            adapter.outputs_schema(traced(other))[0]["instances"].scores,
            model.inference([{"image": other}], do_postprocess=False)[0].scores,
        )


def test_default_predictor_runs_a_decoded_checkpoint(tmp_path):
    cfg, model = _model(tmp_path)
    DetectionCheckpointer(model, str(tmp_path)).save("decoded")
    cfg.MODEL.WEIGHTS = str(tmp_path / "decoded.pth")
    predictor = DefaultPredictor(cfg)
    image = (np.random.RandomState(0).rand(96, 128, 3) * 255).astype("uint8")
    instances = predictor(image)["instances"]
    with torch.no_grad():  # DefaultPredictor flips BGR -> RGB only when INPUT.FORMAT says so
        tensor = torch.as_tensor(image.astype("float32").transpose(2, 0, 1))
        expected = model([{"image": tensor, "height": 96, "width": 128}])[0]["instances"]
    torch.testing.assert_close(instances.scores, expected.scores)
