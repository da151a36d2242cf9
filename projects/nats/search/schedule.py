"""Search schedules: epochs -> iterations, and the LR schedules of the two optimizers.

The paper states its schedule in epochs (25, of which 10 without architecture steps) and anneals
the weights' LR with a cosine that ends at a positive value, which v0.6's ``WarmupCosineLR``
(ending at 0) cannot express.
"""

import math
from dataclasses import dataclass

from detectron2.solver import LRMultiplier, WarmupParamScheduler
from fvcore.common.param_scheduler import CosineParamScheduler, LinearParamScheduler

__all__ = [
    "SearchSchedule",
    "resolve_search_schedule",
    "build_weight_lr_scheduler",
    "build_arch_lr_scheduler",
]


@dataclass(frozen=True, kw_only=True)
class SearchSchedule:
    """The iterations of a search, as :func:`resolve_search_schedule` resolves them.

    Attributes:
        max_iter (int): total iterations, one weight step each.
        arch_start_iter (int): the first iteration with an architecture step (after warm-up).
        iters_per_epoch (float): weight-split images / ``SOLVER.IMS_PER_BATCH``.
    """

    max_iter: int  # total iterations (one weight step each)
    arch_start_iter: int  # first iteration with an architecture step
    iters_per_epoch: float  # weight-split images / SOLVER.IMS_PER_BATCH


def resolve_search_schedule(cfg, num_weight_images):
    """Iterations of the search from the epoch keys, or from SOLVER.MAX_ITER when EPOCHS is 0.

    With ``MODEL.NATS.SEARCH.EPOCHS`` > 0: ``max_iter = ceil(EPOCHS * iters_per_epoch)`` and
    ``arch_start_iter = ceil(WARMUP_EPOCHS * iters_per_epoch)``; with EPOCHS = 0:
    ``SOLVER.MAX_ITER`` and ``MODEL.NATS.SEARCH.WARMUP_ITERS``.

    Args:
        cfg (CfgNode): reads ``MODEL.NATS.SEARCH.{EPOCHS, WARMUP_EPOCHS, WARMUP_ITERS}``,
            ``SOLVER.MAX_ITER`` and ``SOLVER.IMS_PER_BATCH``.
        num_weight_images (int): images of the weight split, after Detectron2's filtering.

    Returns:
        SearchSchedule

    Raises:
        ValueError: (naming both keys) when an epoch count and SOLVER.MAX_ITER (or WARMUP_ITERS)
            disagree; also when a count is negative, EPOCHS and SOLVER.MAX_ITER are both 0, the
            weight split is empty, or the warm-up leaves no architecture step.
    """
    s = cfg.MODEL.NATS.SEARCH
    epochs, warmup_epochs, warmup_iters = s.EPOCHS, s.WARMUP_EPOCHS, s.WARMUP_ITERS
    max_iter_cfg, batch = cfg.SOLVER.MAX_ITER, cfg.SOLVER.IMS_PER_BATCH

    if num_weight_images <= 0:
        raise ValueError("the weight split (DATASETS.TRAIN after filtering/splitting) is empty")
    per_epoch = num_weight_images / batch
    if epochs < 0 or warmup_epochs < 0 or warmup_iters < 0:
        raise ValueError(
            "MODEL.NATS.SEARCH.EPOCHS, WARMUP_EPOCHS and WARMUP_ITERS must be >= 0, got "
            f"{epochs}, {warmup_epochs}, {warmup_iters}"
        )
    if epochs > 0:
        max_iter = math.ceil(epochs * per_epoch)
        if max_iter_cfg not in (0, max_iter):
            raise ValueError(
                f"MODEL.NATS.SEARCH.EPOCHS={epochs} (= {max_iter} iterations: {num_weight_images} "
                f"images / SOLVER.IMS_PER_BATCH={batch} per epoch) conflicts with "
                f"SOLVER.MAX_ITER={max_iter_cfg}: set SOLVER.MAX_ITER to 0 to use the epochs, or "
                "MODEL.NATS.SEARCH.EPOCHS to 0 to use SOLVER.MAX_ITER"
            )
        arch_start = math.ceil(warmup_epochs * per_epoch)
        if warmup_iters not in (0, arch_start):
            raise ValueError(
                f"MODEL.NATS.SEARCH.WARMUP_EPOCHS={warmup_epochs} (= {arch_start} iterations) "
                f"conflicts with MODEL.NATS.SEARCH.WARMUP_ITERS={warmup_iters}: with EPOCHS > 0 "
                "set WARMUP_ITERS to 0"
            )
    else:
        if max_iter_cfg <= 0:
            raise ValueError(
                "MODEL.NATS.SEARCH.EPOCHS=0 means the schedule is SOLVER.MAX_ITER, which must "
                f"then be > 0, got {max_iter_cfg}"
            )
        max_iter, arch_start = max_iter_cfg, warmup_iters
    if arch_start >= max_iter:
        raise ValueError(
            f"the architecture warm-up ({arch_start} iterations, MODEL.NATS.SEARCH.WARMUP_EPOCHS/"
            f"WARMUP_ITERS) leaves no architecture step in {max_iter} iterations"
        )
    return SearchSchedule(max_iter=max_iter, arch_start_iter=arch_start, iters_per_epoch=per_epoch)


def build_weight_lr_scheduler(cfg, optimizer, max_iter):
    """SOLVER.WARMUP_* then a cosine from SOLVER.BASE_LR to MODEL.NATS.SEARCH.BASE_LR_END.

    Args:
        cfg (CfgNode): reads ``SOLVER.{BASE_LR, WARMUP_FACTOR, WARMUP_ITERS, WARMUP_METHOD}``
            and ``MODEL.NATS.SEARCH.BASE_LR_END``.
        optimizer (torch.optim.Optimizer): the weight optimizer; each param group's initial LR
            is multiplied by the schedule, so per-group factors are kept.
        max_iter (int): the search's iterations (``SearchSchedule.max_iter``).

    Returns:
        LRMultiplier: to be stepped once per iteration.

    Raises:
        ValueError: if BASE_LR_END is not in [0, SOLVER.BASE_LR].
    """
    base_lr, end_lr = cfg.SOLVER.BASE_LR, cfg.MODEL.NATS.SEARCH.BASE_LR_END
    warmup_factor, warmup_iters = cfg.SOLVER.WARMUP_FACTOR, cfg.SOLVER.WARMUP_ITERS
    warmup_method = cfg.SOLVER.WARMUP_METHOD
    if not 0 <= end_lr <= base_lr:
        raise ValueError(
            f"MODEL.NATS.SEARCH.BASE_LR_END must be in [0, SOLVER.BASE_LR={base_lr}], got {end_lr}"
        )
    cosine = CosineParamScheduler(1.0, end_lr / base_lr if base_lr > 0 else 0.0)
    sched = WarmupParamScheduler(
        cosine, warmup_factor, min(warmup_iters / max_iter, 1.0), warmup_method
    )
    return LRMultiplier(optimizer, multiplier=sched, max_iter=max_iter)


def build_arch_lr_scheduler(optimizer, max_iter):
    """The logits' LR is constant (paper: Adam at 0.01); a scheduler keeps hooks uniform.

    Args:
        optimizer (torch.optim.Optimizer): the architecture optimizer.
        max_iter (int): the search's iterations.

    Returns:
        LRMultiplier: with the constant multiplier 1.
    """
    # (fvcore's ConstantParamScheduler refuses where == 1.0, which the last step reaches.)
    return LRMultiplier(optimizer, multiplier=LinearParamScheduler(1.0, 1.0), max_iter=max_iter)
