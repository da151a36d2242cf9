"""Evaluators for NATS-D2: Detectron2's ``COCOEvaluator``, on plain pycocotools when needed."""

import os

from detectron2.data import MetadataCatalog
from detectron2.evaluation import COCOEvaluator

from .compat import has_real_extension
from .data import ensure_shapes_generated

__all__ = ["build_coco_evaluator"]


def build_coco_evaluator(cfg, dataset_name, output_folder=None):
    """A ``COCOEvaluator`` that uses the fast C++ COCOeval only when detectron2 has it.

    Results go to ``output_folder`` (default ``OUTPUT_DIR/inference``), as in Detectron2's tools.
    A NATS shapes split (``nats_shapes`` in its metadata) is generated first if it is not on disk
    yet, since the evaluator reads its json.

    Args:
        cfg (CfgNode): reads ``OUTPUT_DIR`` and ``MODEL.MASK_ON`` (True: tasks "bbox" and "segm";
            False: "bbox" only).
        dataset_name (str): a dataset registered in Detectron2's ``MetadataCatalog``.
        output_folder (str or None): where the evaluator writes its results; None:
            ``OUTPUT_DIR/inference``.

    Returns:
        COCOEvaluator
    """
    if output_folder is None:
        output_folder = os.path.join(cfg.OUTPUT_DIR, "inference")
    meta = MetadataCatalog.get(dataset_name)
    if "nats_shapes" in meta.as_dict():  # generated on first use; the evaluator reads the json
        ensure_shapes_generated(**meta.nats_shapes)
    return COCOEvaluator(
        dataset_name,
        output_dir=output_folder,
        use_fast_impl=has_real_extension(),
        tasks=("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",),
    )
