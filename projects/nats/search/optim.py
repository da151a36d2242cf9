"""The two optimizers of a search: SGD over the weights, Adam over the architecture logits.

Detectron2's default optimizer takes every parameter with ``requires_grad``, logits included, and
``ResNet.freeze`` turns ``requires_grad`` off for logits inside frozen blocks too. Here the logits
stay out of everything meant for weights (the weight optimizer, its weight decay): they are kept
at ``requires_grad=False`` outside architecture steps (so DDP, built afterwards, never reduces
them and weight steps compute no gradient for them) and get their own optimizer.
"""

import contextlib

import torch
from detectron2.solver import build_optimizer

from ..modeling import mixed_ops
from ..preflight import check_arch_optimizer_config

__all__ = [
    "arch_parameters",
    "is_arch_param_name",
    "weight_parameters",
    "build_weight_optimizer",
    "detach_arch_parameters",
    "build_search_optimizers",
]


def arch_parameters(model):
    """``[(block_name, alpha)]``: the architecture logits of every mixed op, in module order.

    Args:
        model (nn.Module): a supernet, or any module holding one (DDP, a detector).
    """
    return [(name, op.alpha) for name, op in mixed_ops(model)]


def is_arch_param_name(name):
    """Whether a parameter name (as in ``named_parameters``/state dicts) is a logit."""
    return name == "alpha" or name.endswith(".alpha")


def weight_parameters(model):
    """Every parameter of ``model`` except the architecture logits.

    Args:
        model (nn.Module): a supernet, or any module holding one.

    Returns:
        list[nn.Parameter]: in ``model.parameters()`` order, frozen ones included.
    """
    logits = {id(alpha) for _, alpha in arch_parameters(model)}
    return [p for p in model.parameters() if id(p) not in logits]


@contextlib.contextmanager
def _logits_hidden(model):
    logits = [alpha for _, alpha in arch_parameters(model)]
    state = [alpha.requires_grad for alpha in logits]
    try:
        for alpha in logits:
            alpha.requires_grad_(False)
        yield
    finally:
        for alpha, flag in zip(logits, state):
            alpha.requires_grad_(flag)


def build_weight_optimizer(cfg, model):
    """Detectron2's default optimizer (``SOLVER.*``: SGD, weight decay, norm/bias factors) over
    the weights only: the logits get neither SGD updates nor weight decay from it.

    Args:
        cfg (CfgNode): reads what ``detectron2.solver.build_optimizer`` reads (``SOLVER.*``).
        model (nn.Module): the supernet detector.

    Returns:
        torch.optim.Optimizer: over the weights that require gradients.

    Raises:
        RuntimeError: if a logit still ended up in the optimizer.
    """
    with _logits_hidden(model):
        optimizer = build_optimizer(cfg, model)
    logits = {id(alpha) for _, alpha in arch_parameters(model)}
    if any(id(p) in logits for g in optimizer.param_groups for p in g["params"]):
        raise RuntimeError("an architecture logit ended up in the weight optimizer")
    return optimizer


def detach_arch_parameters(model):
    """Turn ``requires_grad`` off on every logit; return ``[(block_name, alpha)]``.

    Call it before the optimizers and DDP are built, so that neither takes the logits.

    Args:
        model (nn.Module): the supernet detector.

    Returns:
        list[tuple[str, nn.Parameter]]: as :func:`arch_parameters`.

    Raises:
        ValueError: if ``model`` has no logits (its backbone is not a NATS supernet).
    """
    arch = list(arch_parameters(model))
    if not arch:
        raise ValueError(
            "the model has no architecture logits: MODEL.BACKBONE.NAME must be a NATS supernet "
            "backbone (e.g. build_nats_supernet_resnet_fpn_backbone)"
        )
    for _, alpha in arch:
        alpha.requires_grad_(False)
    return arch


def build_search_optimizers(cfg, model, arch):
    """The weights' and the logits' optimizers.

    Args:
        cfg: a search config; ``SOLVER.*`` sets the weights' SGD, ``MODEL.NATS.SEARCH.ARCH.*``
            the logits' Adam.
        model: the supernet detector.
        arch: ``[(block_name, alpha)]`` from :func:`detach_arch_parameters`.

    Returns:
        ``(weight_optimizer, arch_optimizer)``.
    """
    lr, weight_decay, betas = check_arch_optimizer_config(cfg)
    if any(alpha.requires_grad for _, alpha in arch):
        raise RuntimeError("call detach_arch_parameters(model) before building the optimizers")
    weight_opt = build_weight_optimizer(cfg, model)  # SOLVER.*, logits excluded
    arch_opt = torch.optim.Adam(
        [alpha for _, alpha in arch], lr=lr, betas=betas, weight_decay=weight_decay
    )
    return weight_opt, arch_opt
