"""The search's view of the supernet: its searched blocks and the architecture they decode to."""

from ..arch_params import mixed_ops
from ..decode import decode_architecture_from_cfg

__all__ = ["searched_blocks", "decode_search_architecture"]


def searched_blocks(model):
    """``[(block_name, alpha, candidates)]`` of the supernet's mixed ops, in module order."""
    return [(name, op.alpha, [tuple(c) for c in op.candidates]) for name, op in mixed_ops(model)]


def decode_search_architecture(model, cfg, *, meta):
    """The :class:`~projects.nats.architecture.Architecture` of the current logits (eq. 4-6),
    with the candidates and group division of ``cfg.MODEL.NATS``."""
    return decode_architecture_from_cfg(model, cfg, meta=meta)
