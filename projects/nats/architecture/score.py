"""How much a search's logits favour a given architecture, and how two rankings agree.

:func:`log_probability` is the supernet score of an architecture file of the same search space: the
log-probability, under the learned logits, that every channel group picks the genotype the file
gives it (the sum over blocks and groups of ``log softmax(alpha_g)[k_g]``). :func:`kendall_tau`
compares such scores with stand-alone results (the test bed's ranking fidelity,
``benchmarks/bench_search_validation.py``).
"""

import itertools
import math

import torch

__all__ = ["group_choices", "log_probability", "kendall_tau"]


def group_choices(arch, block, candidates):
    """The candidate index of every channel group of ``block`` in ``arch``.

    Args:
        arch (Architecture): an architecture file's content.
        block (str): a searched block's name, e.g. ``"res4.3"``.
        candidates (list[tuple[int, int]]): the block's candidates, in the logits' order.

    Returns:
        list[int]: one index per channel group.

    Raises:
        ValueError: if the file lacks the block, a genotype is not a candidate, or a group is
            given no genotype or two.
    """
    if block not in arch.blocks:
        raise ValueError(f"the architecture has no block {block}; it has {sorted(arch.blocks)}")
    b = arch.blocks[block]
    candidates = [tuple(int(v) for v in d) for d in candidates]
    choice = [None] * b.num_groups
    for g in (*b.genotypes, *b.dropped):  # a version-2 file's dropped genotypes: their groups' pick
        if tuple(g.dilation) not in candidates:
            raise ValueError(f"block {block}: genotype {g.dilation} is not among {candidates}")
        for i in g.groups:
            if choice[i] is not None:
                raise ValueError(f"block {block}: channel group {i} has two genotypes")
            choice[i] = candidates.index(tuple(g.dilation))
    missing = [i for i, c in enumerate(choice) if c is None]
    if missing:
        raise ValueError(f"block {block}: channel groups {missing} have no genotype")
    return choice


def log_probability(arch, logits):
    """The log-probability of ``arch`` under a search's logits (independent groups).

    Args:
        arch (Architecture): an architecture of the searched space and group division.
        logits (list): ``[(block_name, alpha, candidates, out_channels)]`` as
            :func:`~projects.nats.architecture.decode.block_list` returns for a supernet;
            ``alpha`` is ``[num_groups, num_candidates]``.

    Returns:
        float: the sum over blocks and groups of ``log softmax(alpha_g)[k_g]`` (<= 0).

    Raises:
        ValueError: as :func:`group_choices`, or when a block's group count differs.
    """
    total = 0.0
    for name, alpha, candidates, _ in logits:
        choice = group_choices(arch, name, candidates)
        alpha = torch.as_tensor(alpha).detach().double()
        if alpha.shape[0] != len(choice):
            raise ValueError(
                f"block {name}: the logits have {alpha.shape[0]} groups, the file {len(choice)}"
            )
        logp = torch.log_softmax(alpha, dim=1)
        total += float(logp[torch.arange(len(choice)), torch.tensor(choice)].sum())
    return total


def kendall_tau(x, y):
    """Kendall's tau-b of two equally long sequences (ties counted as in tau-b).

    Args:
        x, y (sequence[float]): paired values, e.g. supernet scores and stand-alone APs.

    Returns:
        float: in [-1, 1]; NaN when either sequence is constant or has fewer than two items.
    """
    if len(x) != len(y):
        raise ValueError(f"kendall_tau: {len(x)} values against {len(y)}")
    concordant = discordant = ties_x = ties_y = 0
    for (x0, y0), (x1, y1) in itertools.combinations(zip(x, y), 2):
        dx, dy = x1 - x0, y1 - y0
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            ties_x += 1
        elif dy == 0:
            ties_y += 1
        elif (dx > 0) == (dy > 0):
            concordant += 1
        else:
            discordant += 1
    n1 = concordant + discordant + ties_x
    n2 = concordant + discordant + ties_y
    if n1 == 0 or n2 == 0:
        return float("nan")
    return (concordant - discordant) / math.sqrt(n1 * n2)
