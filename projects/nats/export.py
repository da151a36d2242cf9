"""Export of a (decoded) detector by TorchScript tracing, through Detectron2's ``TracingAdapter``.

The decoded network's split convs trace as stock convs (see ``modeling/split_conv.py``), so the
traced model runs wherever a traced stock Detectron2 model runs.
"""

import torch

from .compat import tracing_adapter_class

__all__ = ["export_tracing_adapter"]


def export_tracing_adapter(model, image):
    """Trace ``model`` in eval mode on one image.

    Args:
        model: a Detectron2 meta-architecture (e.g. ``GeneralizedRCNN``) in eval mode.
        image: a CHW tensor in the model's input format.

    Returns:
        ``(traced, adapter)``: ``adapter.outputs_schema(traced(image))`` rebuilds Detectron2's
        ``Instances`` from the traced model's flat outputs.
    """
    adapter = tracing_adapter_class()(model, [{"image": image}], _inference)
    with torch.no_grad():
        traced = torch.jit.trace(adapter, adapter.flattened_inputs)
    return traced, adapter


def _inference(model, inputs):
    outputs = model.inference(inputs, do_postprocess=False)
    return [{"instances": o} for o in outputs]
