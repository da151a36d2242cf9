#!/usr/bin/env python
"""Export a (decoded NATS or stock) detector to TorchScript by tracing, through Detectron2's
``TracingAdapter`` (``projects/nats/export.py``); the file is written only once the traced
model, saved and loaded back, gives the eager model's boxes, scores and classes on the sample.

    python tools/export_model.py --config-file configs/NATS/faster_rcnn_R_50_FPN_nats_G16_1x.yaml \
        --output output/nats_G16/model.ts MODEL.WEIGHTS output/nats_G16/model_final.pth
    python tools/export_model.py ... --sample-image image.jpg    # trace on a real image

The traced model takes one CHW float image (INPUT.FORMAT, resized as for testing) and returns
flat tensors; ``adapter.outputs_schema`` rebuilds ``Instances`` (boxes in the input's size).
ONNX (``--format onnx``) is refused: the pinned stack (requirements/lock.txt) has neither
``onnx`` (``torch.onnx.export(dynamo=False)``: "Module onnx is not installed!") nor
``onnxscript`` (the default dynamo exporter).
"""

import argparse
import io
import logging
import os
import sys

import torch
from detectron2.config import get_cfg
from detectron2.data import detection_utils
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from projects.nats import NATSCheckpointer, add_nats_config  # noqa: E402
from projects.nats.atomic import atomic_open  # noqa: E402
from projects.nats.config import (  # noqa: E402
    check_architecture_file,
    check_weights_file,
    is_supernet_config,
)
from projects.nats.export import export_tracing_adapter  # noqa: E402
from projects.nats.modeling.split_conv import SplitDilationConv  # noqa: E402

__all__ = ["sample_image", "export_torchscript", "main"]

logger = logging.getLogger("detectron2")
FORMATS = ("torchscript", "onnx")
ONNX_REFUSED = (
    "--format onnx: the pinned stack (requirements/lock.txt) has neither 'onnx' nor "
    "'onnxscript', which torch.onnx.export needs; use --format torchscript"
)


def sample_image(cfg, *, path=None, seed=0):
    """The tracing sample: ``path`` read in INPUT.FORMAT and resized as for testing, else a
    random INPUT.MIN_SIZE_TEST x INPUT.MAX_SIZE_TEST image; a CHW float tensor."""
    if path is None:
        size = (3, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
        return torch.rand(size, generator=torch.Generator().manual_seed(seed)) * 255
    image = detection_utils.read_image(path, format=cfg.INPUT.FORMAT)
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    image = resize.get_transform(image).apply_image(image)
    return torch.as_tensor(image.astype("float32").transpose(2, 0, 1))


def _instances(adapter, flat):
    out = adapter.outputs_schema(flat)[0]["instances"]
    return out.pred_boxes.tensor, out.scores, out.pred_classes


def export_torchscript(model, image, path):
    """Trace ``model`` on ``image``, check it, write it to ``path`` atomically.

    Args:
        model: a Detectron2 meta-architecture in eval mode.
        image: a CHW tensor in the model's input format.
        path (str): the ``.ts`` file to write (``torch.jit.load`` reads it).

    Returns:
        ``(traced, adapter)`` as :func:`~projects.nats.export.export_tracing_adapter` returns.

    Raises:
        AssertionError: naming the output that differs when the saved and loaded trace does not
            give the eager outputs on ``image``; nothing is written then.
    """
    traced, adapter = export_tracing_adapter(model, image)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer)
    loaded = torch.jit.load(io.BytesIO(buffer.getvalue()))
    # the trace records plain convs: compare with the eager plain path (test_split_conv.py: the
    # shared oneDNN input of CPU inference equals it only up to float rounding)
    split = [m for m in model.modules() if isinstance(m, SplitDilationConv)]
    before = [m.share_blocked_input for m in split]
    for m in split:
        m.share_blocked_input = False
    try:
        with torch.no_grad():
            eager = model.inference([{"image": image}], do_postprocess=False)[0]
            out = _instances(adapter, loaded(image.to(model.device)))
    finally:
        for m, value in zip(split, before):
            m.share_blocked_input = value
    expected = (eager.pred_boxes.tensor, eager.scores, eager.pred_classes)
    for name, a, b in zip(("boxes", "scores", "classes"), out, expected):
        torch.testing.assert_close(a, b, msg=lambda m, n=name: f"traced {n} differ: {m}")
    with atomic_open(path, "wb") as f:
        f.write(buffer.getvalue())
    return traced, adapter


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True, metavar="FILE")
    parser.add_argument("--output", required=True, help="file to write (.ts)")
    parser.add_argument("--format", choices=FORMATS, default="torchscript")
    parser.add_argument("--sample-image", default=None, help="trace on this image")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides")
    args = parser.parse_args(argv)
    if args.format == "onnx":
        parser.error(ONNX_REFUSED)
    if not os.path.isfile(args.config_file):
        parser.error(f"--config-file {args.config_file!r} does not exist")
    if args.sample_image is not None and not os.path.isfile(args.sample_image):
        parser.error(f"--sample-image {args.sample_image!r} does not exist")
    cfg = get_cfg()
    add_nats_config(cfg)
    try:
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
        if is_supernet_config(cfg):
            raise ValueError(
                f"MODEL.BACKBONE.NAME {cfg.MODEL.BACKBONE.NAME!r} is a search supernet: export "
                "the decoded network (its retraining config, MODEL.NATS.ARCHITECTURE set)"
            )
        if cfg.MODEL.BACKBONE.NAME.startswith("build_nats_"):
            check_architecture_file(cfg)
        check_weights_file(cfg)
    except (ValueError, KeyError, FileNotFoundError) as e:
        parser.error(str(e))
    cfg.freeze()
    setup_logger()
    model = build_model(cfg).eval()
    if cfg.MODEL.WEIGHTS:
        NATSCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    else:
        logger.warning("MODEL.WEIGHTS is empty: exporting random weights")
    image = sample_image(cfg, path=args.sample_image)
    export_torchscript(model, image, args.output)
    logger.info(f"Wrote {args.output} (TorchScript; traced output equals eager on the sample)")
    return args.output


if __name__ == "__main__":
    main()
