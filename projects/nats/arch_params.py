"""Architecture logits vs. network weights of a supernet: the logits stay out of everything meant
for weights (weight optimizer, its weight decay); one helper returns them with block names."""

import contextlib
import re

from detectron2.solver import build_optimizer

from .mixed_op import MixedDilationConv

__all__ = [
    "mixed_ops",
    "arch_parameters",
    "is_arch_param_name",
    "weight_parameters",
    "build_weight_optimizer",
]

# "<anything>.res4.3.conv2" -> "res4.3": the block's name inside the ResNet
_BLOCK_NAME = re.compile(r"(?:^|\.)(res\d+\.\d+)\.conv2$")


def mixed_ops(model):
    """``[(block_name, MixedDilationConv)]`` in module order; through DDP, FPN (``bottom_up``)
    and detector wrappers. Block names are as in the ResNet, e.g. ``"res4.3"``."""
    out = []
    for name, module in model.named_modules():
        if isinstance(module, MixedDilationConv):
            m = _BLOCK_NAME.search(name)
            out.append((m.group(1) if m else name, module))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"the model holds several supernet backbones: mixed ops {names}")
    return out


def arch_parameters(model):
    """``[(block_name, alpha)]``: the architecture logits of every mixed op, in module order."""
    return [(name, op.alpha) for name, op in mixed_ops(model)]


def is_arch_param_name(name):
    """Whether a parameter name (as in ``named_parameters``/state dicts) is a logit."""
    return name == "alpha" or name.endswith(".alpha")


def weight_parameters(model):
    """Every parameter of ``model`` except the architecture logits."""
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
    the weights only: the logits get neither SGD updates nor weight decay from it."""
    with _logits_hidden(model):
        optimizer = build_optimizer(cfg, model)
    logits = {id(alpha) for _, alpha in arch_parameters(model)}
    if any(id(p) in logits for g in optimizer.param_groups for p in g["params"]):
        raise RuntimeError("an architecture logit ended up in the weight optimizer")
    return optimizer
