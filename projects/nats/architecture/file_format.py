"""The architecture file (``architecture.json``): what a search found, what a decoded net builds.

Format (version 1), human-readable JSON::

    {
      "format": "nats-architecture", "version": 1,
      "groups": {"mode": "count", "value": 16},            # the division it was searched with
      "candidates": {"res3": [[1, 1], [2, 2], ...], ...},  # (dh, dw) per searched stage
      "blocks": {                                          # keyed by block name in the ResNet
        "res4.3": {
          "out_channels": 256, "num_groups": 16,           # of the searched 3x3 conv
          "genotypes": [                                   # kept genotypes, in candidate order
            {"dilation": [1, 1], "channels": 96, "groups": [0, 4, 5, 9, 11, 12]}, ...
          ]
        }, ...
      },
      "meta": {...}                                        # free-form: config, iteration, ...
    }

Genotype g keeps ``channels = out_channels * I^g`` (eq. 5-6), with ``I^g`` the share of the
block's channel groups whose argmax chose it; ``groups`` lists those groups (channel group i is
channels ``[i * out_channels / num_groups, (i + 1) * out_channels / num_groups)``).

Version 2 records a decoding with hardware-friendly channel counts (``MODEL.NATS.DECODE``:
``ALIGN_CHANNELS`` > 1 or ``MAX_GENOTYPES`` > 0; see :func:`~.decode.decode_block`). It adds::

      "decode": {"align_channels": 16, "max_genotypes": 0},
      "blocks": {"res3.0": {"out_channels": 128, "num_groups": 16,
        "genotypes": [{"dilation": [1, 1], "channels": 48, "groups": [0, 4, 5, 9, 11, 12],
                       "rows": [[0, 8], [32, 48], [72, 80], [88, 104]]}, ...],
        "dropped": [{"dilation": [3, 3], "groups": [7]}]}, ...}

where ``channels`` is a multiple of ``align_channels`` (no longer ``out_channels * I^g``),
``groups`` still lists the channel groups whose argmax chose the genotype, and ``rows`` lists, in
the order of the genotype's output slice, the ``[start, stop)`` ranges of the searched conv's
output channels (the supernet's rows; group i owns rows ``[i * C / N, (i + 1) * C / N)``) whose
weights it takes: a row that the re-balancing moved keeps its index and takes the dilation of
the genotype it moved to. ``dropped`` lists the genotypes eq. 4-6 keeps that the alignment or the
genotype cap removed (their groups' rows went to kept genotypes). The rows of all genotypes cover
``0..out_channels-1`` exactly once; the groups of genotypes and dropped ones cover
``0..num_groups-1`` exactly once.

:func:`save_architecture` writes version 1 when ``align_channels`` is 1 and ``max_genotypes`` 0
(the paper's decoding, byte for byte as before) and version 2 otherwise; both versions load.
"""

import json
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from detectron2.utils.file_io import PathManager

from ..atomic import atomic_open
from ..search_space import BLOCK_NAME, GROUP_MODES, STAGE_NAMES, is_int, parse_dilation

__all__ = [
    "ArchitectureError",
    "Genotype",
    "BlockArchitecture",
    "Architecture",
    "save_architecture",
    "load_architecture",
]

FORMAT = "nats-architecture"
VERSION = 1  # the paper's decoding
VERSION_ALIGNED = 2  # with MODEL.NATS.DECODE.ALIGN_CHANNELS > 1 or MAX_GENOTYPES > 0
VERSIONS = (VERSION, VERSION_ALIGNED)
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


@dataclass(kw_only=True)
class Architecture:
    """What a search found: the content of ``architecture.json`` (see the module docstring).

    Made by :func:`~projects.nats.architecture.decode_architecture` or :func:`load_architecture`;
    :meth:`from_dict` validates a parsed file, :meth:`to_dict` gives the JSON object.

    Attributes:
        candidates (dict[str, list[tuple[int, int]]]): searched stage -> its (dh, dw)s, in the
            order of the logits' columns.
        group_mode (str): the channel-group division searched with: "count" or "channels".
        group_value (int): groups per conv ("count") or channels per group ("channels").
        blocks (dict[str, BlockArchitecture]): block name (e.g. ``"res4.3"``) -> its decoded conv.
        meta (dict): free-form, JSON-serializable information (config, iteration, ...).
        align_channels (int): every genotype's channels are a multiple of it
            (``MODEL.NATS.DECODE.ALIGN_CHANNELS``; 1: the paper's eq. 4-6).
        max_genotypes (int): the most genotypes a block keeps
            (``MODEL.NATS.DECODE.MAX_GENOTYPES``; 0: no cap).
    """

    candidates: Dict[str, List[Tuple[int, int]]]
    group_mode: str
    group_value: int
    blocks: Dict[str, BlockArchitecture]
    meta: dict = field(default_factory=dict)
    align_channels: int = 1
    max_genotypes: int = 0

    @property
    def version(self):
        """The file format version :meth:`to_dict` writes: 1 for the paper's decoding, else 2."""
        return VERSION if (self.align_channels, self.max_genotypes) == (1, 0) else VERSION_ALIGNED

    def to_dict(self):
        """The file's JSON object (format version :attr:`version`), with lists for tuples."""
        v2 = self.version == VERSION_ALIGNED
        out = {
            "format": FORMAT,
            "version": self.version,
            "groups": {"mode": self.group_mode, "value": self.group_value},
            "candidates": {s: [list(d) for d in c] for s, c in self.candidates.items()},
        }
        if v2:
            out["decode"] = {
                "align_channels": self.align_channels,
                "max_genotypes": self.max_genotypes,
            }
        out["blocks"] = {name: _block_dict(b, v2) for name, b in self.blocks.items()}
        out["meta"] = self.meta
        return out

    @classmethod
    def from_dict(cls, d, source="architecture"):
        """Parse and validate ``d`` (a parsed JSON object).

        Args:
            d: the file's content.
            source: what ``d`` came from (a path): the first word of every error message.

        Raises:
            ArchitectureError: naming the offending field and the accepted values.
        """
        try:
            return cls._parse(d)
        except ArchitectureError as e:
            raise ArchitectureError(f"{source}: {e}") from None

    @classmethod
    def _parse(cls, d):
        if not isinstance(d, dict):
            raise ArchitectureError(
                f"the file must hold a JSON object with 'format', 'version', 'groups', "
                f"'candidates' and 'blocks', got {type(d).__name__}"
            )
        if _field(d, "format", str) != FORMAT:
            raise ArchitectureError(f"field 'format' must be '{FORMAT}', got {d['format']!r}")
        version = _field(d, "version", int)
        if version not in VERSIONS:
            raise ArchitectureError(
                f"field 'version' must be one of {list(VERSIONS)}, got {d['version']!r}"
            )
        align, cap = _decode_options(d) if version == VERSION_ALIGNED else (1, 0)
        groups = _field(d, "groups", dict)
        mode = _field(groups, "mode", str, "groups.")
        if mode not in GROUP_MODES:
            raise ArchitectureError(
                f"'groups.mode' must be one of {list(GROUP_MODES)}, got {mode!r}"
            )
        value = _field(groups, "value", int, "groups.")
        if value < 1:
            raise ArchitectureError(
                f"'groups.value' must be a positive integer (groups per conv for mode "
                f"'count', channels per group for mode 'channels'), got {value}"
            )
        candidates = {
            stage: _candidates(stage, cands)
            for stage, cands in _field(d, "candidates", dict).items()
        }
        blocks = {
            name: _block(name, b, candidates, mode, value, align=align, cap=cap, v2=version > 1)
            for name, b in _field(d, "blocks", dict).items()
        }
        if not candidates or not blocks:
            raise ArchitectureError(
                "'candidates' and 'blocks' must name at least one searched stage and block: an "
                "architecture without them would build the stock network"
            )
        meta = d.get("meta", {})
        if not isinstance(meta, dict):
            raise ArchitectureError(
                f"field 'meta' must be an object (free-form information), got {meta!r}"
            )
        return cls(
            candidates=candidates,
            group_mode=mode,
            group_value=value,
            blocks=blocks,
            meta=meta,
            align_channels=align,
            max_genotypes=cap,
        )


def _decode_options(d):
    """Version 2's 'decode': ``(align_channels, max_genotypes)``."""
    options = _field(d, "decode", dict)
    align = _field(options, "align_channels", int, "decode.")
    cap = _field(options, "max_genotypes", int, "decode.")
    if align < 1:
        raise ArchitectureError(
            f"'decode.align_channels' must be an integer >= 1 (1 = no alignment), got {align}"
        )
    if cap < 0:
        raise ArchitectureError(
            f"'decode.max_genotypes' must be an integer >= 0 (0 = no cap), got {cap}"
        )
    if (align, cap) == (1, 0):
        raise ArchitectureError(
            "'decode' with align_channels 1 and max_genotypes 0 is the paper's decoding: write it "
            "as 'version' 1 (version 2 records align_channels > 1 or max_genotypes > 0)"
        )
    return align, cap


def _block_dict(b, v2):
    """One entry of the file's 'blocks' (``v2``: with 'rows' and 'dropped')."""
    per_group = b.out_channels // b.num_groups
    genotypes = []
    for g in b.genotypes:
        entry = {"dilation": list(g.dilation), "channels": g.channels, "groups": list(g.groups)}
        default = _merge_ranges((k * per_group, (k + 1) * per_group) for k in sorted(g.groups))
        rows = default if g.rows is None else _merge_ranges(g.rows)
        if v2:
            entry["rows"] = [list(r) for r in rows]
        elif rows != default or b.dropped:
            raise ArchitectureError(
                "a block with re-balanced 'rows' or 'dropped' genotypes needs format version 2: "
                "set the Architecture's align_channels > 1 or max_genotypes > 0"
            )
        genotypes.append(entry)
    out = {"out_channels": b.out_channels, "num_groups": b.num_groups, "genotypes": genotypes}
    if v2:
        out["dropped"] = [
            {"dilation": list(g.dilation), "groups": list(g.groups)} for g in b.dropped
        ]
    return out


def _merge_ranges(ranges):
    """``[(start, stop), ...]`` with adjacent ranges joined (order kept)."""
    out = []
    for a, b in ranges:
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return tuple(out)


def _field(obj, key, kind, where=""):
    """``obj[key]``, required and of type ``kind``; ``where`` is the path of ``obj``."""
    if key not in obj:
        raise ArchitectureError(f"missing field '{where}{key}'")
    value = obj[key]
    if not (is_int(value) if kind is int else isinstance(value, kind)):
        raise ArchitectureError(f"field '{where}{key}' must be {_KIND_NAMES[kind]}, got {value!r}")
    return value


def _dilation(value, where):
    return parse_dilation(value, where, error=ArchitectureError)


def _candidates(stage, cands):
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


def _block(name, b, candidates, mode, value, *, align=1, cap=0, v2=False):
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
    out_channels = _field(b, "out_channels", int, where)
    if out_channels < 1:
        raise ArchitectureError(
            f"'{where}out_channels' must be a positive integer, got {out_channels}"
        )
    num_groups = _field(b, "num_groups", int, where)
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
        for i, g in enumerate(_field(b, "genotypes", list, where))
    ]
    dropped = []
    if v2:
        dropped = [
            _genotype(g, f"{where}dropped[{i}]", stage, stage_cands, num_groups, 0, dropped=True)
            for i, g in enumerate(_field(b, "dropped", list, where))
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
    dil = _dilation(_field(g, "dilation", list, gw + "."), f"'{gw}.dilation'")
    if dil not in stage_cands:
        raise ArchitectureError(
            f"'{gw}.dilation' {list(dil)} is not a candidate of {stage}; "
            f"accepted: {[list(c) for c in stage_cands]}"
        )
    chosen = _field(g, "groups", list, gw + ".")
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
    channels = _field(g, "channels", int, gw + ".")
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
    for j, r in enumerate(_field(g, "rows", list, gw + ".")):
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


def save_architecture(arch, path):
    """Write ``arch`` as JSON, atomically (temp file + rename) on local paths.

    Args:
        arch (Architecture): the architecture to write.
        path (str): the file to write (a search writes ``OUTPUT_DIR/architecture.json``); local
            or a ``PathManager`` URL.
    """
    with atomic_open(path, "w") as f:
        f.write(json.dumps(arch.to_dict(), indent=1) + "\n")


def load_architecture(path):
    """Read and validate an architecture file; errors name the field and accepted values.

    Args:
        path (str): the ``architecture.json`` to read, local or a ``PathManager`` URL.

    Returns:
        Architecture

    Raises:
        ArchitectureError: if the file does not exist, is not valid JSON or breaks the format;
            the message names ``path``.
    """
    if not PathManager.exists(path):
        raise ArchitectureError(f"architecture file {path} does not exist")
    if PathManager.isdir(path):
        raise ArchitectureError(f"{path} is a folder, not an architecture file")
    try:
        with PathManager.open(path, "r") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ArchitectureError(f"{path} is not valid JSON: {e}") from None
    except UnicodeDecodeError:
        raise ArchitectureError(f"{path} is not a text (JSON) file") from None
    except RecursionError:
        raise ArchitectureError(f"{path} nests JSON too deeply to be an architecture") from None
    except OSError as e:
        raise ArchitectureError(f"{path} cannot be read: {e.strerror or e}") from None
    return Architecture.from_dict(data, source=path)
