"""Decoding the supernet's logits into a discrete architecture (paper section 3.3, eq. 4-6).

Per searched block with N channel groups: ind_i = argmax_g alpha_i^g (ties: the first candidate),
I^g = #{i : ind_i = g} / N, and every genotype with I^g > 0 is kept with C_out * I^g channels
and the list of groups that chose it, in candidate order.

Hardware-friendly decoding (``MODEL.NATS.DECODE``; off by default, then exactly eq. 4-6): a
slice of 8 channels costs oneDNN on CPU as much as one of 16, and every genotype is a conv call.

- Genotype cap (``max_genotypes`` M > 0): a block keeps its M genotypes with the most groups
  (ties: the earlier candidate); each group whose argmax is a dropped genotype goes to the kept
  genotype its logits rank highest (ties: the earlier candidate), whole groups at a time.
- Alignment (``align_channels`` A > 1; A must divide C_out): every genotype's channels become a
  multiple of A by the largest-remainder method over C_out / A units: genotype g gets
  ``floor(c_g / A)`` units of its share ``c_g = C_out * I^g`` (after the cap), and the units left
  go to the largest remainders ``c_g mod A`` (ties: the larger share, then the earlier candidate).
  So each genotype keeps ``floor`` or ``ceil`` of its share in units (it differs from
  ``C_out * I^g`` by less than A), the total stays C_out, and a genotype that gets 0 is dropped.
  Only as many channels move as the rounding needs: a genotype that shrank gives up the rows of
  its groups with the smallest margin (own logit minus the best logit of a genotype that grew;
  ties: the later group; a part of a group: its last rows), and each row given up goes to the
  genotype that grew whose logit its group ranks highest (ties: the earlier candidate) among
  those still short. A moved row keeps its index in the searched conv; only its dilation changes.
"""

import torch
from torch import nn

from ..preflight import check_decode_config
from ..search_space import is_int, parse_search_space
from .file_format import Architecture, BlockArchitecture, Genotype

__all__ = [
    "decode_block",
    "decode_architecture",
    "decode_architecture_from_cfg",
    "realign_architecture",
]


def decode_block(alpha, candidates, out_channels, *, align_channels=1, max_genotypes=0):
    """One block's ``BlockArchitecture`` from its logits [N, len(candidates)] (eq. 4-6).

    Each channel group takes its argmax candidate (ties: the first); every candidate chosen by
    at least one group becomes a genotype, in candidate order. With ``align_channels`` > 1 or
    ``max_genotypes`` > 0 the channels are re-balanced as the module docstring says (the block
    is then one of a format version 2 file).

    Args:
        alpha (Tensor): the block's logits, shape [N, len(candidates)], any device and dtype.
        candidates (list[tuple[int, int]]): the stage's (dh, dw)s, in the order of the columns.
        out_channels (int): output channels of the searched conv; N must divide it.
        align_channels (int): every genotype's channels a multiple of it (1: eq. 4-6 exactly);
            must divide ``out_channels``.
        max_genotypes (int): the most genotypes the block keeps (0: no cap).

    Returns:
        BlockArchitecture

    Raises:
        ValueError: if the logits' shape does not fit ``candidates`` and ``out_channels``, or
            ``align_channels`` (an integer >= 1) does not divide ``out_channels``, or
            ``max_genotypes`` is not an integer >= 0.
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
    if not is_int(align_channels) or align_channels < 1:
        raise ValueError(f"align_channels must be an integer >= 1, got {align_channels!r}")
    if not is_int(max_genotypes) or max_genotypes < 0:
        raise ValueError(f"max_genotypes must be an integer >= 0, got {max_genotypes!r}")
    if out_channels % align_channels:
        raise ValueError(
            f"{out_channels} output channels are not a multiple of the alignment "
            f"{align_channels}: accepted alignments divide {out_channels}"
        )
    ind = alpha.argmax(dim=1).tolist()  # eq. 4
    per_group = out_channels // num_groups
    chosen = [tuple(i for i, c in enumerate(ind) if c == g) for g in range(num_candidates)]
    if align_channels == 1 and max_genotypes == 0:
        genotypes = [  # I^g = len(chosen) / N > 0 (eq. 5); C_out^g = C_out * I^g (eq. 6)
            Genotype(dilation=tuple(d), channels=per_group * len(chosen[g]), groups=chosen[g])
            for g, d in enumerate(candidates)
            if chosen[g]
        ]
        return BlockArchitecture(
            out_channels=out_channels, num_groups=num_groups, genotypes=tuple(genotypes)
        )
    owner = _capped_owners(alpha, ind, chosen, max_genotypes)
    exact = [per_group * owner.count(g) for g in range(num_candidates)]
    aligned = _largest_remainders(exact, align_channels)
    rows = _rebalanced_rows(alpha, owner, exact, aligned, per_group)
    genotypes, dropped = [], []
    for g, d in enumerate(candidates):
        if aligned[g]:
            genotypes.append(
                Genotype(
                    dilation=tuple(d), channels=aligned[g], groups=chosen[g], rows=_ranges(rows[g])
                )
            )
        elif chosen[g]:
            dropped.append(Genotype(dilation=tuple(d), channels=0, groups=chosen[g], rows=()))
    return BlockArchitecture(
        out_channels=out_channels,
        num_groups=num_groups,
        genotypes=tuple(genotypes),
        dropped=tuple(dropped),
    )


def _capped_owners(alpha, ind, chosen, max_genotypes):
    """Per group, the candidate that owns its channels after the genotype cap."""
    kept = [g for g in range(len(chosen)) if chosen[g]]
    if not max_genotypes or len(kept) <= max_genotypes:
        return list(ind)
    kept = sorted(sorted(kept, key=lambda g: (-len(chosen[g]), g))[:max_genotypes])
    return [
        c if c in kept else max(kept, key=lambda g: (alpha[i, g].item(), -g))
        for i, c in enumerate(ind)
    ]


def _largest_remainders(exact, align):
    """Channels per candidate: multiples of ``align`` summing to ``sum(exact)``, each the floor
    or ceiling of ``exact`` in units of ``align``; left-over units go to the largest remainders
    (ties: the larger share, then the earlier candidate)."""
    units = [c // align for c in exact]
    left = sum(exact) // align - sum(units)
    order = sorted(range(len(exact)), key=lambda g: (-(exact[g] % align), -exact[g], g))
    for g in order[:left]:
        units[g] += 1
    return [u * align for u in units]


def _rebalanced_rows(alpha, owner, exact, aligned, per_group):
    """Per candidate, the searched conv's rows (output channels) its aligned slice takes."""
    num_candidates = len(exact)
    grew = [g for g in range(num_candidates) if aligned[g] > exact[g]]
    rows, given = [], []
    for g in range(num_candidates):
        groups = [i for i, c in enumerate(owner) if c == g]
        surplus = exact[g] - aligned[g]
        if surplus > 0:  # give up the rows of its least decided groups (vs. those that grew)
            margin = {i: alpha[i, g].item() - max(alpha[i, h].item() for h in grew) for i in groups}
            for i in sorted(groups, key=lambda i: (margin[i], -i)):
                take = min(surplus, per_group)
                given.extend((r, i) for r in range((i + 1) * per_group - take, (i + 1) * per_group))
                surplus -= take
                if not surplus:
                    break
        moved = {r for r, _ in given}
        rows.append([r for i in groups for r in range(i * per_group, (i + 1) * per_group)])
        rows[g] = [r for r in rows[g] if r not in moved]
    short = {h: aligned[h] - exact[h] for h in grew}
    for r, i in given:  # each row to the genotype that grew whose logit its group ranks highest
        h = max((h for h in grew if short[h]), key=lambda h: (alpha[i, h].item(), -h))
        rows[h].append(r)
        short[h] -= 1
    return [sorted(r) for r in rows]


def _ranges(rows):
    """Sorted row indices -> ``((start, stop), ...)`` of consecutive runs."""
    out = []
    for r in rows:
        if out and out[-1][1] == r:
            out[-1][1] = r + 1
        else:
            out.append([r, r + 1])
    return tuple((a, b) for a, b in out)


def block_list(source):
    """``[(block_name, alpha, candidates, out_channels)]`` of a supernet, or ``source`` as is."""
    if isinstance(source, nn.Module):
        # Imported here: modeling/ builds decoded networks from this package's file format.
        from ..modeling.mixed_op import mixed_ops

        return [(name, op.alpha, op.candidates, op.out_channels) for name, op in mixed_ops(source)]
    return list(source)


def decode_architecture(
    source,
    *,
    group_mode,
    group_value,
    candidates=None,
    meta=None,
    align_channels=1,
    max_genotypes=0,
):
    """The ``Architecture`` the logits decode to.

    Args:
        source: a supernet (any wrapper) or a list of ``(block_name, alpha, candidates,
            out_channels)`` with block names like ``"res4.3"``.
        group_mode, group_value: the channel-group division searched with (MODEL.NATS.GROUPS).
        candidates: {stage: [(dh, dw), ...]} searched; default: taken from the blocks.
        meta: free-form, JSON-serializable information stored in the file.
        align_channels (int): every genotype's channels a multiple of it (1: eq. 4-6 exactly);
            see :func:`decode_block`.
        max_genotypes (int): the most genotypes a block keeps (0: no cap).

    Returns:
        Architecture: validated as a loaded file is; format version 1 with the defaults of
        ``align_channels`` and ``max_genotypes``, else 2.

    Raises:
        ValueError: if ``source`` has no blocks, or a stage's blocks (or ``candidates``) list
            different candidates, or a block's output channels are not a multiple of
            ``align_channels`` (the message names the block).
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
            decoded[name] = decode_block(
                alpha,
                cands,
                out_channels,
                align_channels=align_channels,
                max_genotypes=max_genotypes,
            )
        except FloatingPointError as e:
            raise FloatingPointError(f"block {name}: {e}") from None
        except ValueError as e:
            raise ValueError(f"block {name}: {e}") from None
    arch = Architecture(
        candidates=stage_candidates,
        group_mode=group_mode,
        group_value=group_value,
        blocks=decoded,
        meta=dict(meta or {}),
        align_channels=align_channels,
        max_genotypes=max_genotypes,
    )
    return Architecture.from_dict(arch.to_dict(), source="decoded architecture")  # validated


def decode_architecture_from_cfg(model, cfg, meta=None):
    """``decode_architecture`` with the candidates, group division and decoding options of
    ``cfg.MODEL.NATS``.

    Args:
        model (nn.Module): the supernet, or any module holding one (DDP, a detector); or a list
            as :func:`decode_architecture`'s ``source``.
        cfg (CfgNode): the search config; reads ``MODEL.NATS.STAGES``, ``CANDIDATES``,
            ``GROUPS`` and ``DECODE`` (``ALIGN_CHANNELS``, ``MAX_GENOTYPES``).
        meta (dict or None): free-form, JSON-serializable information stored in the file.

    Returns:
        Architecture

    Raises:
        ValueError: if a ``MODEL.NATS.DECODE`` key is not accepted, or a searched conv's
            output channels are not a multiple of ``MODEL.NATS.DECODE.ALIGN_CHANNELS`` (the
            message names the key, the block and its width).
    """
    space = parse_search_space(cfg)
    align, cap = check_decode_config(cfg)
    blocks = block_list(model)
    for name, _, _, out_channels in blocks:
        if out_channels % align:
            raise ValueError(
                f"MODEL.NATS.DECODE.ALIGN_CHANNELS = {align}: block {name} (stage "
                f"{name.split('.')[0]}) has {out_channels} output channels, not a multiple of "
                f"it; accepted: a divisor of every searched stage's width"
            )
    return decode_architecture(
        blocks,
        group_mode=space.group_mode,
        group_value=space.group_value,
        candidates={s: list(c) for s, c in space.candidates.items()},
        meta=meta,
        align_channels=align,
        max_genotypes=cap,
    )


def realign_architecture(arch, *, align_channels=1, max_genotypes=0, meta=None):
    """Decode an existing architecture again with other decoding options, without its logits.

    Each channel group gets one-hot logits on the candidate it chose (its ``groups``, including
    those of ``dropped`` genotypes), so the choices are kept, and where the re-balancing asks
    which genotype a group's logits rank next, every other candidate ties: the earlier one
    wins. The logits of a search decode better (``decode_architecture_from_cfg``); this serves
    benchmarks and files whose logits are gone.

    Args:
        arch (Architecture): e.g. a version 1 file from :func:`load_architecture`.
        align_channels (int): as :func:`decode_block`.
        max_genotypes (int): as :func:`decode_block`.
        meta (dict or None): the new file's ``meta``; default: ``arch.meta`` with
            ``"realigned_from_choices": True``.

    Returns:
        Architecture
    """
    blocks = []
    for name, block in arch.blocks.items():
        cands = [tuple(c) for c in arch.candidates[name.split(".")[0]]]
        alpha = torch.zeros(block.num_groups, len(cands))
        for group, dilation in block.group_choices().items():
            alpha[group, cands.index(dilation)] = 1.0
        blocks.append((name, alpha, cands, block.out_channels))
    return decode_architecture(
        blocks,
        group_mode=arch.group_mode,
        group_value=arch.group_value,
        candidates=arch.candidates,
        meta=dict(meta) if meta is not None else {**arch.meta, "realigned_from_choices": True},
        align_channels=align_channels,
        max_genotypes=max_genotypes,
    )
