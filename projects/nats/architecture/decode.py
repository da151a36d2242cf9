"""Decoding the supernet's logits into a discrete architecture (paper section 3.3, eq. 4-6).

Per searched block with N channel groups: ind_i = argmax_g alpha_i^g (ties: the first candidate),
I^g = #{i : ind_i = g} / N, and every genotype with I^g > 0 is kept with C_out * I^g channels
and the list of groups that chose it, in candidate order.
"""

import torch
from torch import nn

from ..search_space import parse_search_space
from .file_format import Architecture, BlockArchitecture, Genotype

__all__ = ["decode_block", "decode_architecture", "decode_architecture_from_cfg"]


def decode_block(alpha, candidates, out_channels):
    """One block's ``BlockArchitecture`` from its logits [N, len(candidates)] (eq. 4-6).

    Each channel group takes its argmax candidate (ties: the first); every candidate chosen by
    at least one group becomes a genotype, in candidate order.

    Args:
        alpha (Tensor): the block's logits, shape [N, len(candidates)], any device and dtype.
        candidates (list[tuple[int, int]]): the stage's (dh, dw)s, in the order of the columns.
        out_channels (int): output channels of the searched conv; N must divide it.

    Returns:
        BlockArchitecture

    Raises:
        ValueError: if the logits' shape does not fit ``candidates`` and ``out_channels``.
        FloatingPointError: if a logit is not finite (a diverged search decodes to nothing).
    """
    alpha = alpha.detach().float().cpu()
    if not torch.isfinite(alpha).all():
        bad = int((~torch.isfinite(alpha)).sum())
        raise FloatingPointError(
            f"{bad} of its {alpha.numel()} logits are not finite: the search diverged, and its "
            "argmax means nothing"
        )
    num_groups, num_candidates = alpha.shape
    if num_candidates != len(candidates) or num_groups < 1 or out_channels % num_groups:
        raise ValueError(
            f"logits of shape {tuple(alpha.shape)} do not fit {len(candidates)} candidates and "
            f"{out_channels} channels (needs [N, {len(candidates)}] with N dividing {out_channels})"
        )
    ind = alpha.argmax(dim=1).tolist()  # eq. 4
    per_group = out_channels // num_groups
    genotypes = []
    for g, dilation in enumerate(candidates):
        chosen = tuple(i for i, c in enumerate(ind) if c == g)
        if chosen:  # I^g = len(chosen) / N > 0 (eq. 5); C_out^g = C_out * I^g (eq. 6)
            genotypes.append(
                Genotype(dilation=tuple(dilation), channels=per_group * len(chosen), groups=chosen)
            )
    return BlockArchitecture(
        out_channels=out_channels, num_groups=num_groups, genotypes=tuple(genotypes)
    )


def block_list(source):
    """``[(block_name, alpha, candidates, out_channels)]`` of a supernet, or ``source`` as is."""
    if isinstance(source, nn.Module):
        # Imported here: modeling/ builds decoded networks from this package's file format.
        from ..modeling.mixed_op import mixed_ops

        return [(name, op.alpha, op.candidates, op.out_channels) for name, op in mixed_ops(source)]
    return list(source)


def decode_architecture(source, *, group_mode, group_value, candidates=None, meta=None):
    """The ``Architecture`` the logits decode to.

    Args:
        source: a supernet (any wrapper) or a list of ``(block_name, alpha, candidates,
            out_channels)`` with block names like ``"res4.3"``.
        group_mode, group_value: the channel-group division searched with (MODEL.NATS.GROUPS).
        candidates: {stage: [(dh, dw), ...]} searched; default: taken from the blocks.
        meta: free-form, JSON-serializable information stored in the file.

    Returns:
        Architecture: validated as a loaded file is.

    Raises:
        ValueError: if ``source`` has no blocks, or a stage's blocks (or ``candidates``) list
            different candidates.
    """
    blocks = block_list(source)
    if not blocks:
        raise ValueError("nothing to decode: the model has no NATS mixed ops (not a supernet?)")
    stage_candidates = {k: [tuple(d) for d in v] for k, v in (candidates or {}).items()}
    decoded = {}
    for name, alpha, cands, out_channels in blocks:
        cands = [tuple(int(v) for v in d) for d in cands]
        stage = name.split(".")[0]
        known = stage_candidates.setdefault(stage, cands)
        if known != cands:
            raise ValueError(
                f"block {name} was searched over {cands}, but stage {stage} lists {known}"
            )
        try:
            decoded[name] = decode_block(alpha, cands, out_channels)
        except FloatingPointError as e:
            raise FloatingPointError(f"block {name}: {e}") from None
    arch = Architecture(
        candidates=stage_candidates,
        group_mode=group_mode,
        group_value=group_value,
        blocks=decoded,
        meta=dict(meta or {}),
    )
    return Architecture.from_dict(arch.to_dict(), source="decoded architecture")  # validated


def decode_architecture_from_cfg(model, cfg, meta=None):
    """``decode_architecture`` with the candidates and group division of ``cfg.MODEL.NATS``.

    Args:
        model (nn.Module): the supernet, or any module holding one (DDP, a detector); or a list
            as :func:`decode_architecture`'s ``source``.
        cfg (CfgNode): the search config; reads ``MODEL.NATS.STAGES``, ``CANDIDATES`` and
            ``GROUPS``.
        meta (dict or None): free-form, JSON-serializable information stored in the file.

    Returns:
        Architecture
    """
    space = parse_search_space(cfg)
    return decode_architecture(
        model,
        group_mode=space.group_mode,
        group_value=space.group_value,
        candidates={s: list(c) for s, c in space.candidates.items()},
        meta=meta,
    )
