"""One searched block of the architecture file: its genotypes, and the checks of its entry.

:mod:`.file_format` reads and writes the whole file; this module holds the records of one block
(:class:`BlockArchitecture`, :class:`Genotype`) and validates a block's JSON entry against the
file's candidates, group division and (version 2) decoding options, naming the bad field.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

from ..search_space import BLOCK_NAME, STAGE_NAMES, is_int, parse_dilation

__all__ = [
    "ArchitectureError",
    "Genotype",
    "BlockArchitecture",
    "require_field",
    "parse_candidates",
    "parse_block",
]

_KIND_NAMES = {int: "an integer", str: "a string", list: "a list", dict: "an object"}


class ArchitectureError(ValueError):
    """A malformed architecture file; the message names the field and what is accepted.

    Also raised for a missing file, and for one that does not fit the network or supernet
    checkpoint it is applied to.
    """


@dataclass(frozen=True, kw_only=True)
class Genotype:
    """One dilation kept by a searched conv, and the output channels that use it.

    Attributes:
        dilation (tuple[int, int]): (dh, dw), one of the stage's candidates.
        channels (int): output channels of the split conv that use this dilation:
            ``out_channels / num_groups * len(groups)`` (version 1); a multiple of the
            alignment (version 2); 0 for a genotype of ``BlockArchitecture.dropped``.
        groups (tuple[int]): the channel groups (indices in ``0..num_groups-1``) whose argmax
            chose it.
        rows (tuple[tuple[int, int]] or None): version 2: the ``[start, stop)`` ranges of the
            searched conv's output channels whose weights its slice takes, in slice order
            (``()`` for a dropped genotype); None (version 1): its groups' channels, ascending.
    """

    dilation: Tuple[int, int]  # (dh, dw)
    channels: int  # output channels of the split conv that use this dilation
    groups: Tuple[int, ...]  # the channel groups whose argmax chose it
    rows: Optional[Tuple[Tuple[int, int], ...]] = None  # version 2: source rows of its slice


@dataclass(frozen=True, kw_only=True)
class BlockArchitecture:
    """The decoded 3x3 conv of one searched block: an entry of the file's ``blocks``.

    Attributes:
        out_channels (int): output channels of the block's searched conv.
        num_groups (int): the channel groups N it was searched with (a divisor of
            ``out_channels``).
        genotypes (tuple[Genotype]): the kept genotypes, in candidate order; their ``groups``
            (with those of ``dropped``) cover ``0..N-1`` exactly once.
        dropped (tuple[Genotype]): version 2: genotypes chosen by some groups that the
            alignment or the genotype cap removed (``channels`` 0, ``rows`` ``()``), in
            candidate order; their groups' rows went to kept genotypes.
    """

    out_channels: int
    num_groups: int
    genotypes: Tuple[Genotype, ...]
    dropped: Tuple[Genotype, ...] = ()

    def row_sources(self):
        """Where each output channel of the decoded conv comes from, in decoded channel order.

        Returns:
            list[tuple[int, tuple[int, int]]]: per decoded output channel, ``(row, dilation)``:
            the searched conv's output channel (the supernet's row) whose weights it takes, and
            the dilation (the supernet replica) it takes them from.
        """
        per_group = self.out_channels // self.num_groups
        out = []
        for g in self.genotypes:
            if g.rows is None:  # version 1: its groups' channels, ascending
                rows = [(k * per_group, (k + 1) * per_group) for k in sorted(g.groups)]
            else:
                rows = g.rows
            out.extend((r, tuple(g.dilation)) for a, b in rows for r in range(a, b))
        return out

    def group_choices(self):
        """``{group: dilation}``: the genotype each channel group's argmax chose (eq. 4)."""
        return {k: tuple(g.dilation) for g in self.genotypes + self.dropped for k in g.groups}


def require_field(obj, key, kind, where=""):
    """``obj[key]``, required and of type ``kind``; ``where`` is the path of ``obj``."""
    if key not in obj:
        raise ArchitectureError(f"missing field '{where}{key}'")
    value = obj[key]
    if not (is_int(value) if kind is int else isinstance(value, kind)):
        raise ArchitectureError(f"field '{where}{key}' must be {_KIND_NAMES[kind]}, got {value!r}")
    return value


def _dilation(value, where):
    return parse_dilation(value, where, error=ArchitectureError)


def parse_candidates(stage, cands):
    """One entry of 'candidates': a searched stage and its distinct (dh, dw)s."""
    if stage not in STAGE_NAMES:
        raise ArchitectureError(
            f"'candidates.{stage}' is not a stage; accepted stages: {list(STAGE_NAMES)}"
        )
    if not isinstance(cands, list) or not cands:
        raise ArchitectureError(
            f"'candidates.{stage}' must be a non-empty list of [dh, dw] pairs, " f"got {cands!r}"
        )
    dils = [_dilation(c, f"'candidates.{stage}[{i}]'") for i, c in enumerate(cands)]
    if len(set(dils)) != len(dils):
        raise ArchitectureError(
            f"'candidates.{stage}' must list distinct dilations, got " f"{[list(x) for x in dils]}"
        )
    return dils


def parse_block(name, b, candidates, mode, value, *, align=1, cap=0, v2=False):
    """One entry of 'blocks', checked against 'candidates', 'groups' and (``v2``) 'decode'."""
    match = BLOCK_NAME.fullmatch(name)
    if match is None:
        raise ArchitectureError(
            f"block name 'blocks.{name}' must be '<stage>.<index>' with stage in "
            f"{list(STAGE_NAMES)} and a non-negative index, e.g. 'res4.3'"
        )
    stage = match.group(1)
    if stage not in candidates:
        raise ArchitectureError(
            f"block 'blocks.{name}' is in stage '{stage}', which is not among the "
            f"searched stages of 'candidates': {sorted(candidates)}"
        )
    where = f"blocks.{name}."
    if not isinstance(b, dict):
        raise ArchitectureError(
            f"'blocks.{name}' must be an object with 'out_channels', 'num_groups' and "
            f"'genotypes', got {b!r}"
        )
    out_channels = require_field(b, "out_channels", int, where)
    if out_channels < 1:
        raise ArchitectureError(
            f"'{where}out_channels' must be a positive integer, got {out_channels}"
        )
    num_groups = require_field(b, "num_groups", int, where)
    if num_groups < 1 or out_channels % num_groups:
        raise ArchitectureError(
            f"'{where}num_groups' must be a positive divisor of out_channels "
            f"({out_channels}), got {num_groups}"
        )
    if mode == "count" and num_groups != value:
        raise ArchitectureError(
            f"'{where}num_groups' must equal 'groups.value' ({value}) with "
            f"'groups.mode' 'count', got {num_groups}"
        )
    if mode == "channels" and num_groups * value != out_channels:
        raise ArchitectureError(
            f"'{where}num_groups' must be out_channels / 'groups.value' = "
            f"{out_channels} / {value} with 'groups.mode' 'channels' (out_channels a multiple "
            f"of the value), got {num_groups}"
        )
    per_group = out_channels // num_groups
    stage_cands = candidates[stage]
    if v2 and out_channels % align:
        raise ArchitectureError(
            f"'{where}out_channels' ({out_channels}) must be a multiple of "
            f"'decode.align_channels' ({align})"
        )
    genotypes = [
        _genotype(g, f"{where}genotypes[{i}]", stage, stage_cands, num_groups, per_group, v2=v2)
        for i, g in enumerate(require_field(b, "genotypes", list, where))
    ]
    dropped = []
    if v2:
        dropped = [
            _genotype(g, f"{where}dropped[{i}]", stage, stage_cands, num_groups, 0, dropped=True)
            for i, g in enumerate(require_field(b, "dropped", list, where))
        ]
    seen_groups = [k for g in genotypes + dropped for k in g.groups]
    if sorted(seen_groups) != list(range(num_groups)):
        what = f"'{where}genotypes' and '{where}dropped'" if v2 else f"'{where}genotypes'"
        raise ArchitectureError(
            f"the 'groups' of {what} must cover channel groups "
            f"0..{num_groups - 1} exactly once each, got {sorted(seen_groups)}"
        )
    for key, entries in (("genotypes", genotypes), ("dropped", dropped)):
        dils = [g.dilation for g in entries]
        if dils != sorted(set(dils), key=stage_cands.index):
            raise ArchitectureError(
                f"'{where}{key}' must list distinct dilations in the order of "
                f"'candidates.{stage}' {[list(c) for c in stage_cands]}, got "
                f"{[list(x) for x in dils]}"
            )
    if v2:
        _check_rows(genotypes, dropped, where, out_channels, align, cap)
    return BlockArchitecture(
        out_channels=out_channels,
        num_groups=num_groups,
        genotypes=tuple(genotypes),
        dropped=tuple(dropped),
    )


def _genotype(g, gw, stage, stage_cands, num_groups, per_group, *, v2=False, dropped=False):
    """One entry of a block's 'genotypes' (or, ``dropped``, of its 'dropped')."""
    keys = (
        "'dilation', 'channels', 'groups' and 'rows'"
        if v2
        else "'dilation', 'channels' and 'groups'"
    )
    if dropped:
        keys = "'dilation' and 'groups'"
    if not isinstance(g, dict):
        raise ArchitectureError(f"'{gw}' must be an object with {keys}, got {g!r}")
    dil = _dilation(require_field(g, "dilation", list, gw + "."), f"'{gw}.dilation'")
    if dil not in stage_cands:
        raise ArchitectureError(
            f"'{gw}.dilation' {list(dil)} is not a candidate of {stage}; "
            f"accepted: {[list(c) for c in stage_cands]}"
        )
    chosen = require_field(g, "groups", list, gw + ".")
    for j, k in enumerate(chosen):
        if not is_int(k) or not 0 <= k < num_groups:
            raise ArchitectureError(
                f"'{gw}.groups[{j}]' must be a channel group index in "
                f"0..{num_groups - 1}, got {k!r}"
            )
    if dropped:
        if not chosen:
            raise ArchitectureError(f"'{gw}.groups' must name the groups that chose it, got []")
        return Genotype(dilation=dil, channels=0, groups=tuple(chosen), rows=())
    channels = require_field(g, "channels", int, gw + ".")
    if not v2:
        if channels != per_group * len(chosen) or channels <= 0:
            raise ArchitectureError(
                f"'{gw}.channels' must be {per_group} x len(groups) = "
                f"{per_group * len(chosen)} (and > 0), got {channels}"
            )
        return Genotype(dilation=dil, channels=channels, groups=tuple(chosen))
    if not chosen:
        raise ArchitectureError(f"'{gw}.groups' must name the groups that chose it, got []")
    rows = []
    for j, r in enumerate(require_field(g, "rows", list, gw + ".")):
        if not (isinstance(r, list) and len(r) == 2 and all(is_int(v) for v in r) and r[0] < r[1]):
            raise ArchitectureError(
                f"'{gw}.rows[{j}]' must be a [start, stop) range of output channels with "
                f"start < stop, got {r!r}"
            )
        rows.append((int(r[0]), int(r[1])))
    if channels != sum(b - a for a, b in rows) or channels <= 0:
        raise ArchitectureError(
            f"'{gw}.channels' must be the number of channels its 'rows' cover "
            f"({sum(b - a for a, b in rows)}, and > 0), got {channels}"
        )
    return Genotype(dilation=dil, channels=channels, groups=tuple(chosen), rows=tuple(rows))


def _check_rows(genotypes, dropped, where, out_channels, align, cap):
    """Version 2: aligned channels, the genotype cap, and rows covering the conv once."""
    for i, g in enumerate(genotypes):
        if g.channels % align:
            raise ArchitectureError(
                f"'{where}genotypes[{i}].channels' must be a multiple of "
                f"'decode.align_channels' ({align}), got {g.channels}"
            )
    if cap and len(genotypes) > cap:
        raise ArchitectureError(
            f"'{where}genotypes' must keep at most 'decode.max_genotypes' ({cap}) genotypes, "
            f"got {len(genotypes)}"
        )
    rows = sorted(r for g in genotypes for a, b in g.rows for r in range(a, b))
    if rows != list(range(out_channels)):
        raise ArchitectureError(
            f"the 'rows' of '{where}genotypes' must cover output channels "
            f"0..{out_channels - 1} exactly once each"
        )
