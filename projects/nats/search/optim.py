"""The two optimizers of a search: SGD over the weights, Adam over the architecture logits.

Detectron2's default optimizer takes every parameter with ``requires_grad``, logits included, and
``ResNet.freeze`` turns ``requires_grad`` off for logits inside frozen blocks too. Here logits are
kept at ``requires_grad=False`` outside architecture steps (so DDP, built afterwards, never
reduces them and weight steps compute no gradient for them) and get their own optimizer.
"""

import torch

from ..arch_params import arch_parameters, build_weight_optimizer

__all__ = ["detach_arch_parameters", "check_arch_optimizer_config", "build_search_optimizers"]


def detach_arch_parameters(model):
    """Turn ``requires_grad`` off on every logit; return ``[(block_name, alpha)]``."""
    arch = list(arch_parameters(model))
    if not arch:
        raise ValueError(
            "the model has no architecture logits: MODEL.BACKBONE.NAME must be a NATS supernet "
            "backbone (e.g. build_nats_supernet_resnet_fpn_backbone)"
        )
    for _, alpha in arch:
        alpha.requires_grad_(False)
    return arch


def check_arch_optimizer_config(cfg):
    """Validate ``MODEL.NATS.SEARCH.ARCH.{BASE_LR, WEIGHT_DECAY, BETAS}``; return them."""
    arch = cfg.MODEL.NATS.SEARCH.ARCH
    lr, weight_decay, betas = arch.BASE_LR, arch.WEIGHT_DECAY, tuple(arch.BETAS)
    if not isinstance(lr, (int, float)) or lr <= 0:
        raise ValueError(f"MODEL.NATS.SEARCH.ARCH.BASE_LR must be a number > 0, got {lr!r}")
    if not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(
            f"MODEL.NATS.SEARCH.ARCH.WEIGHT_DECAY must be a number >= 0, got {weight_decay!r}"
        )
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"MODEL.NATS.SEARCH.ARCH.BETAS must be two numbers in [0, 1), got {betas}")
    return lr, weight_decay, betas


def build_search_optimizers(cfg, model, arch):
    """(weight SGD from SOLVER.* without the logits, logits' Adam from MODEL.NATS.SEARCH.ARCH)."""
    lr, weight_decay, betas = check_arch_optimizer_config(cfg)
    if any(alpha.requires_grad for _, alpha in arch):
        raise RuntimeError("call detach_arch_parameters(model) before building the optimizers")
    weight_opt = build_weight_optimizer(cfg, model)  # SOLVER.*, logits excluded
    arch_opt = torch.optim.Adam(
        [alpha for _, alpha in arch], lr=lr, betas=betas, weight_decay=weight_decay
    )
    return weight_opt, arch_opt
