#!/usr/bin/env python
"""Parameters and FLOPs of a network beside the stock one of the same config (the stock backbone
builder instead of the NATS one), as Detectron2's tools/analyze_model.py counts them (fvcore).

A decoded NATS network has the stock network's parameters and FLOPs (ratio 1.000): it changes
the dilations of channel groups, not the widths. A search supernet has more of both.

    python tools/analyze_model.py --config-file configs/NATS/faster_rcnn_R_50_FPN_nats_G16_1x.yaml
    python tools/analyze_model.py --config-file configs/Demo/faster_rcnn_R_50_FPN_nats_shapes.yaml \
        --details MODEL.NATS.ARCHITECTURE output/demo/search/architecture.json

FLOPs are counted on one input of INPUT.MIN_SIZE_TEST x INPUT.MAX_SIZE_TEST (or --input-size H
W); the detector's also depend on the image (the RoI heads run on the proposals and detections
it keeps), the backbone's do not. Weights are random (MODEL.WEIGHTS is not read): counts do not
depend on them.
"""

import logging
import os
import sys

import torch
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser
from detectron2.modeling import BACKBONE_REGISTRY, build_model
from detectron2.utils.logger import setup_logger
from fvcore.nn import parameter_count, parameter_count_table

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from projects.nats import add_nats_config  # noqa: E402
from projects.nats.compat import tracing_adapter_class  # noqa: E402
from projects.nats.config import check_architecture_file, is_supernet_config  # noqa: E402

__all__ = ["stock_config", "count", "main"]

logger = logging.getLogger("detectron2")


def stock_config(cfg):
    """``cfg`` with the stock Detectron2 backbone builder in place of the NATS one.

    Args:
        cfg (CfgNode): a config; ``MODEL.BACKBONE.NAME`` a NATS builder (``build_nats_*``,
            ``build_nats_supernet_*``) or already a stock one.
    """
    stock = cfg.clone()
    stock.defrost()
    name = cfg.MODEL.BACKBONE.NAME
    if name.startswith("build_nats_"):
        stock_name = "build_" + name[len("build_nats_") :].removeprefix("supernet_")
        if stock_name not in BACKBONE_REGISTRY:
            raise ValueError(f"MODEL.BACKBONE.NAME {name!r}: no stock builder {stock_name!r}")
        stock.MODEL.BACKBONE.NAME = stock_name
    stock.freeze()
    return stock


def count(cfg, *, input_size, seed=0):
    """Parameters and FLOPs of ``cfg``'s detector and of its backbone, on one random image.

    Args:
        cfg (CfgNode): the config, its network built with random weights on ``MODEL.DEVICE``.
        input_size (tuple[int, int]): the image's height and width.
        seed (int): seeds the weights and the image.

    Returns:
        dict: ``backbone_params``, ``backbone_flops``, ``model_params``, ``model_flops``.
    """
    from detectron2.utils.analysis import FlopCountAnalysis  # after the Caffe2-free shim

    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    height, width = input_size
    image = torch.rand(3, height, width, generator=torch.Generator().manual_seed(seed)) * 255
    div = max(model.backbone.size_divisibility, 1)
    padded = torch.zeros(1, 3, -(-height // div) * div, -(-width // div) * div)
    padded[0, :, :height, :width] = (image - model.pixel_mean.cpu()) / model.pixel_std.cpu()
    padded = padded.to(model.device)
    with torch.no_grad():
        backbone_flops = _quiet(FlopCountAnalysis(model.backbone, (padded,))).total()
        model_flops = _quiet(FlopCountAnalysis(model, [{"image": image}])).total()
    return {
        "backbone_params": parameter_count(model.backbone)[""],
        "backbone_flops": backbone_flops,
        "model_params": parameter_count(model)[""],
        "model_flops": model_flops,
        "model": model,
    }


def _quiet(flops):
    return flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)


def table(counts, stock):
    """The comparison as text: one row per count, this network, the stock one, their ratio."""
    rows = [
        ("backbone parameters (M)", "backbone_params", 1e6),
        ("backbone GFLOPs", "backbone_flops", 1e9),
        ("detector parameters (M)", "model_params", 1e6),
        ("detector GFLOPs (1 image)", "model_flops", 1e9),
    ]
    lines = [f"| {'':<26} | {'this':>10} | {'stock':>10} | {'ratio':>6} |", f"|{'-' * 60}|"]
    for label, key, unit in rows:
        ratio = counts[key] / stock[key] if stock[key] else float("nan")
        lines.append(
            f"| {label:<26} | {counts[key] / unit:>10.3f} | {stock[key] / unit:>10.3f} "
            f"| {ratio:>6.3f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = default_argument_parser(epilog=__doc__.split("\n\n")[2])
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None)
    parser.add_argument("--details", action="store_true", help="per-module parameter table")
    args = parser.parse_args(argv)
    if not args.config_file or not os.path.isfile(args.config_file):
        parser.error(f"--config-file {args.config_file!r} does not exist")
    cfg = get_cfg()
    add_nats_config(cfg)
    try:
        cfg.merge_from_file(args.config_file)
        cfg.merge_from_list(args.opts)
        if cfg.MODEL.BACKBONE.NAME.startswith("build_nats_") and not is_supernet_config(cfg):
            check_architecture_file(cfg)
        stock_cfg = stock_config(cfg)
    except (ValueError, KeyError, FileNotFoundError) as e:
        parser.error(str(e))
    cfg.freeze()
    if args.input_size is not None and min(args.input_size) <= 0:
        parser.error(f"--input-size {args.input_size}: two positive integers (H W)")
    size = tuple(args.input_size or (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST))
    tracing_adapter_class()  # detectron2.utils.analysis imports TracingAdapter
    setup_logger(name="fvcore")
    setup_logger()
    counts = count(cfg, input_size=size)
    stock = count(stock_cfg, input_size=size)
    if args.details:
        logger.info("Parameter count:\n" + parameter_count_table(counts["model"], max_depth=4))
    text = table(counts, stock)
    logger.info(
        f"{cfg.MODEL.BACKBONE.NAME} beside {stock_cfg.MODEL.BACKBONE.NAME}, "
        f"one {size[0]}x{size[1]} image:\n{text}\n(the detector's FLOPs depend on the image and "
        "weights: its RoI heads run on the proposals and detections it keeps)"
    )
    return counts, stock


if __name__ == "__main__":
    main()
