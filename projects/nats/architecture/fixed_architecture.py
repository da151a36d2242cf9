"""Fixed (hand-written) architectures: the test bed's calibration panel.

A fixed architecture gives every searched block of a stage the same genotypes in the same channel
shares, e.g. "res4 and res5 all at dilation 3" or "res4/res5 half (1, 3), half (3, 1)". It is built
as a search's file is: per channel group a one-hot logit row, decoded by eq. 4-6 with the search
config's group division, so the file has the format, candidates and channel split that a search of
that config writes, and retrains with the same decoded config (``MODEL.NATS.ARCHITECTURE``).

:data:`PANEL` names the test bed's panel (``benchmarks/bench_fixed_architectures.py``), besides
two random draws of :func:`~projects.nats.architecture.random_architecture`.
"""

import torch

from .decode import block_list, decode_architecture_from_cfg

__all__ = ["PANEL", "fixed_architecture"]

# name -> {stage: [(dilation, share of the stage's channel groups), ...]}; stages not named stay
# at dilation 1. Shares are of the groups, in candidate order within each block.
PANEL = {
    "all_d1": {},
    "res45_d2": {"res4": [((2, 2), 1.0)], "res5": [((2, 2), 1.0)]},
    "res45_d3": {"res4": [((3, 3), 1.0)], "res5": [((3, 3), 1.0)]},
    "res5_d3": {"res5": [((3, 3), 1.0)]},
    "res5_d5": {"res5": [((5, 5), 1.0)]},
    "res45_aspect": {
        "res4": [((1, 3), 0.5), ((3, 1), 0.5)],
        "res5": [((1, 3), 0.5), ((3, 1), 0.5)],
    },
}


def _group_choices(name, num_groups, candidates, rule):
    """The candidate index of each of a block's ``num_groups`` groups under ``rule``."""
    if not rule:
        rule = [((1, 1), 1.0)]
    total = sum(share for _, share in rule)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"block {name}: the shares {rule} add up to {total}, not 1")
    choices, start = [], 0
    for i, (dilation, share) in enumerate(rule):
        dilation = tuple(int(v) for v in dilation)
        if dilation not in candidates:
            raise ValueError(
                f"block {name}: dilation {dilation} is not a candidate; accepted: {candidates}"
            )
        stop = num_groups if i == len(rule) - 1 else start + round(share * num_groups)
        choices += [candidates.index(dilation)] * (stop - start)
        start = stop
    return choices


def fixed_architecture(supernet, cfg, *, rule, meta=None):
    """The architecture that gives each searched stage the genotype shares of ``rule``.

    Args:
        supernet (nn.Module): a supernet (any wrapper, e.g. a detector built from a search
            config), or a list ``[(block_name, alpha, candidates, out_channels)]`` as for
            :func:`~projects.nats.architecture.decode_architecture`; only ``alpha``'s shape is
            read.
        cfg (CfgNode): the search config (``MODEL.NATS.STAGES``, ``CANDIDATES``, ``GROUPS``,
            ``DECODE``).
        rule (dict): stage -> ``[((dh, dw), share), ...]``, shares of the stage's channel groups
            adding up to 1 (rounded to whole groups); a stage not named stays at (1, 1).
        meta (dict or None): extra information for the file's ``meta``, which always records
            ``{"source": "fixed", "rule": ...}``.

    Returns:
        Architecture: validated as a loaded file is.

    Raises:
        ValueError: naming the block for a dilation that is not a candidate of its stage, or
            shares that do not add up to 1.
    """
    logits = []
    for name, alpha, candidates, out_channels in block_list(supernet):
        candidates = [tuple(int(v) for v in d) for d in candidates]
        num_groups, num_candidates = alpha.shape
        rule_of_stage = rule.get(name.split(".")[0], [])
        choice = torch.tensor(_group_choices(name, num_groups, candidates, rule_of_stage))
        one_hot = torch.nn.functional.one_hot(choice, num_candidates).float()
        logits.append((name, one_hot, candidates, out_channels))
    recorded = {s: [[list(d), share] for d, share in r] for s, r in rule.items()}
    return decode_architecture_from_cfg(
        logits, cfg, meta={**(meta or {}), "source": "fixed", "rule": recorded}
    )
