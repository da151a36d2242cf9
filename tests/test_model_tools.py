"""tools/analyze_model.py (params and FLOPs beside the stock network) and tools/export_model.py
(TorchScript through TracingAdapter) on a tiny decoded network with random weights."""

import os
import sys

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from test_decoded_backbone import decoded_cfg

from projects.nats.modeling.split_conv import SplitDilationConv

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools")
)
import analyze_model  # noqa: E402
import export_model  # noqa: E402


def _config_file(tmp_path, **kwargs):
    cfg = decoded_cfg(tmp_path, num_groups=8, seed=11, **kwargs)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0  # keep detections from a random model
    path = tmp_path / "decoded.yaml"
    path.write_text(cfg.dump())
    return cfg, str(path)


def test_decoded_network_has_the_stock_params_and_flops(tmp_path):
    cfg, path = _config_file(tmp_path)
    counts, stock = analyze_model.main(["--config-file", path, "--input-size", "96", "128"])
    assert any(isinstance(m, SplitDilationConv) for m in counts["model"].modules())
    assert not any(isinstance(m, SplitDilationConv) for m in stock["model"].modules())
    assert counts["backbone_flops"] > 1e6 and counts["model_flops"] > counts["backbone_flops"]
    for key in ("backbone_params", "backbone_flops", "model_params"):
        assert counts[key] == stock[key], key
    table = analyze_model.table(counts, stock)
    assert table.count("1.000") >= 3 and "backbone GFLOPs" in table


def test_stock_config_of_a_supernet_and_of_a_stock_network(tmp_path):
    cfg, _ = _config_file(tmp_path)
    cfg.MODEL.BACKBONE.NAME = "build_nats_supernet_resnet_fpn_backbone"
    assert analyze_model.stock_config(cfg).MODEL.BACKBONE.NAME == "build_resnet_fpn_backbone"
    cfg.MODEL.BACKBONE.NAME = "build_retinanet_resnet_fpn_backbone"
    assert analyze_model.stock_config(cfg).MODEL.BACKBONE.NAME == cfg.MODEL.BACKBONE.NAME


@pytest.mark.parametrize("tool", ["analyze", "export"])
def test_missing_config_and_architecture_are_named(tmp_path, capsys, tool):
    run = analyze_model.main if tool == "analyze" else export_model.main
    extra = [] if tool == "analyze" else ["--output", str(tmp_path / "m.ts")]
    with pytest.raises(SystemExit):
        run(["--config-file", str(tmp_path / "missing.yaml"), *extra])
    assert "--config-file" in capsys.readouterr().err
    _, path = _config_file(tmp_path)
    with pytest.raises(SystemExit):
        run(["--config-file", path, *extra, "MODEL.NATS.ARCHITECTURE", str(tmp_path / "no.json")])
    assert "MODEL.NATS.ARCHITECTURE" in capsys.readouterr().err
    assert not (tmp_path / "m.ts").exists()


def test_export_round_trip_equals_eager(tmp_path):
    cfg, path = _config_file(tmp_path)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    DetectionCheckpointer(model, str(tmp_path)).save("decoded")
    out = tmp_path / "export" / "model.ts"
    weights = ["MODEL.WEIGHTS", str(tmp_path / "decoded.pth")]
    assert export_model.main(["--config-file", path, "--output", str(out), *weights]) == str(out)
    traced = torch.jit.load(str(out))
    image = torch.rand(3, 96, 128, generator=torch.Generator().manual_seed(5)) * 255
    for m in model.modules():  # the trace's plain convs, exactly (see export_model.py)
        if isinstance(m, SplitDilationConv):
            m.share_blocked_input = False
    with torch.no_grad():
        eager = model.inference([{"image": image}], do_postprocess=False)[0]
        flat = traced(image)
    assert len(eager) > 0
    _, adapter = export_model.export_tracing_adapter(model, image)  # only its output schema
    boxes, scores, classes = export_model._instances(adapter, flat)
    torch.testing.assert_close(boxes, eager.pred_boxes.tensor)
    torch.testing.assert_close(scores, eager.scores)
    torch.testing.assert_close(classes, eager.pred_classes)
    assert os.listdir(out.parent) == ["model.ts"]  # no temporary left beside it


def test_export_refuses_missing_weights_onnx_and_a_supernet(tmp_path, capsys):
    _, path = _config_file(tmp_path)
    out = ["--output", str(tmp_path / "m.ts")]
    cases = [
        (["MODEL.WEIGHTS", str(tmp_path / "none.pth")], "MODEL.WEIGHTS"),
        (["--format", "onnx"], "onnx"),
        (["MODEL.BACKBONE.NAME", "build_nats_supernet_resnet_fpn_backbone"], "supernet"),
    ]
    for opts, message in cases:
        flags = [o for o in opts if o.startswith("--") or o == "onnx"]
        overrides = [o for o in opts if o not in flags]
        with pytest.raises(SystemExit):
            export_model.main(["--config-file", path, *out, *flags, *overrides])
        assert message in capsys.readouterr().err
    assert not (tmp_path / "m.ts").exists()


def test_export_writes_nothing_when_the_trace_differs(tmp_path, monkeypatch):
    cfg, _ = _config_file(tmp_path)
    model = build_model(cfg).eval()
    image = export_model.sample_image(cfg)
    real_load = torch.jit.load

    def perturbed(f):  # a trace whose scores differ from the eager model's
        traced = real_load(f)
        return lambda x: [t + 1 if t.is_floating_point() else t for t in traced(x)]

    monkeypatch.setattr(torch.jit, "load", perturbed)
    with pytest.raises(AssertionError, match="traced boxes differ"):
        export_model.export_torchscript(model, image, str(tmp_path / "m.ts"))
    assert not (tmp_path / "m.ts").exists()
