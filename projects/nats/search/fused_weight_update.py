"""SGD applied to a weight as soon as its gradient is complete in the backward, which then frees it.

In a plain step every dilated replica of the supernet holds a full gradient from its backward
until ``optimizer.step()``, and that is when memory peaks (``benchmarks/README.md``). Updated in
the backward (PyTorch's post-accumulate-grad hooks), only one such gradient exists at a time. The
update is ``torch.optim.SGD``'s own (its functional ``sgd`` with the optimizer's param-group
settings and momentum buffers), so weights, momentum and checkpoints equal those of the plain
step. It needs each gradient final when it accumulates: one process (DDP averages gradients after
they accumulate), no AMP loss scaling, no gradient clipping (a plain ``torch.optim.SGD``).
"""

import functools
import logging

import torch
from detectron2.utils import comm
from torch.optim.sgd import sgd

from ..modeling import mixed_ops

__all__ = ["fused_weight_update_params", "can_fuse_weight_update", "attach_fused_weight_update"]

logger = logging.getLogger(__name__)


def fused_weight_update_params(cfg, model, optimizer):
    """The mixed ops' trainable conv weights when SGD may update them inside the backward
    (``MODEL.NATS.SEARCH.FUSED_WEIGHT_UPDATE``, see ``fused_weight_update``), else ``[]``.

    ``[]`` when the key is off, or when :func:`can_fuse_weight_update` refuses (several
    processes, ``SOLVER.AMP.ENABLED`` or an optimizer other than a plain SGD; logged).

    Args:
        cfg (CfgNode): reads ``MODEL.NATS.SEARCH.FUSED_WEIGHT_UPDATE`` and ``SOLVER.AMP.ENABLED``.
        model (nn.Module): the supernet detector (any wrapper).
        optimizer (torch.optim.Optimizer): the weight optimizer.

    Returns:
        list[nn.Parameter]: every mixed op's candidate weights (anchor and replicas) that
        require gradients, for :func:`attach_fused_weight_update`.
    """
    amp, world = cfg.SOLVER.AMP.ENABLED, comm.get_world_size()
    if not cfg.MODEL.NATS.SEARCH.FUSED_WEIGHT_UPDATE:
        return []
    if not can_fuse_weight_update(optimizer, world_size=world, amp=amp):
        logger.info(
            f"Weight updates after the backward (processes: {world}, AMP: {amp}, optimizer: "
            f"{type(optimizer).__name__}); in-backward updates need 1, False, plain SGD"
        )
        return []
    weights = {id(w): w for _, op in mixed_ops(model) for w in op.candidate_weights()}
    return [w for w in weights.values() if w.requires_grad]  # once each: shared weights repeat


def can_fuse_weight_update(optimizer, *, world_size, amp):
    """Whether gradients are final when they accumulate and the optimizer is a plain SGD.

    Args:
        optimizer (torch.optim.Optimizer): the weight optimizer; must be of type
            ``torch.optim.SGD`` exactly (a subclass, such as a gradient-clipping one, is not).
        world_size (int): the number of processes; must be 1 (DDP averages after accumulation).
        amp (bool): whether AMP is on; must be False (its gradients are scaled).

    Returns:
        bool
    """
    return world_size == 1 and not amp and type(optimizer) is torch.optim.SGD


def attach_fused_weight_update(optimizer, params):
    """Update each of ``params`` (all in ``optimizer``) in the backward; the hook handles.

    As soon as a parameter's gradient has accumulated, ``torch.optim.SGD``'s functional ``sgd``
    updates it with its param group's current settings and momentum buffer; the gradient is
    then set to None, so ``optimizer.step()`` skips the parameter.

    Args:
        optimizer (torch.optim.SGD): the optimizer that holds every one of ``params``.
        params (list[nn.Parameter]): e.g. from :func:`fused_weight_update_params`.

    Returns:
        list: the hooks' handles, one per parameter (``handle.remove()`` detaches it).

    Raises:
        ValueError: if a parameter is not in ``optimizer``.
    """
    if any(_group_of(optimizer, p) is None for p in params):
        raise ValueError("attach_fused_weight_update: every parameter must be in the optimizer")
    hook = functools.partial(_sgd_update, optimizer)
    return [p.register_post_accumulate_grad_hook(hook) for p in params]


def _group_of(optimizer, param):
    # Looked up at every update: optimizer.load_state_dict (a resume) replaces the group dicts.
    return next((g for g in optimizer.param_groups if any(p is param for p in g["params"])), None)


@torch.no_grad()
def _sgd_update(optimizer, param):
    group = _group_of(optimizer, param)
    state = optimizer.state[param]
    buffers = [state.get("momentum_buffer")]
    sgd(
        [param],
        [param.grad],
        buffers,
        foreach=False,
        weight_decay=group["weight_decay"],
        momentum=group["momentum"],
        lr=group["lr"],
        dampening=group["dampening"],
        nesterov=group["nesterov"],
        maximize=group["maximize"],
    )
    if group["momentum"] != 0:
        state["momentum_buffer"] = buffers[0]
    param.grad = None  # optimizer.step() skips it
