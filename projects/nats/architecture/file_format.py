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
"""

import json
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

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
VERSION = 1
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
            ``out_channels / num_groups * len(groups)``.
        groups (tuple[int]): the channel groups (indices in ``0..num_groups-1``) whose argmax
            chose it.
    """

    dilation: Tuple[int, int]  # (dh, dw)
    channels: int  # output channels of the split conv that use this dilation
    groups: Tuple[int, ...]  # the channel groups whose argmax chose it


@dataclass(frozen=True, kw_only=True)
class BlockArchitecture:
    """The decoded 3x3 conv of one searched block: an entry of the file's ``blocks``.

    Attributes:
        out_channels (int): output channels of the block's searched conv.
        num_groups (int): the channel groups N it was searched with (a divisor of
            ``out_channels``).
        genotypes (tuple[Genotype]): the kept genotypes, in candidate order; their ``groups``
            cover ``0..N-1`` exactly once.
    """

    out_channels: int
    num_groups: int
    genotypes: Tuple[Genotype, ...]


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
    """

    candidates: Dict[str, List[Tuple[int, int]]]
    group_mode: str
    group_value: int
    blocks: Dict[str, BlockArchitecture]
    meta: dict = field(default_factory=dict)

    def to_dict(self):
        """The file's JSON object (format version 1), with lists for tuples."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "groups": {"mode": self.group_mode, "value": self.group_value},
            "candidates": {s: [list(d) for d in c] for s, c in self.candidates.items()},
            "blocks": {
                name: {
                    "out_channels": b.out_channels,
                    "num_groups": b.num_groups,
                    "genotypes": [
                        {
                            "dilation": list(g.dilation),
                            "channels": g.channels,
                            "groups": list(g.groups),
                        }
                        for g in b.genotypes
                    ],
                }
                for name, b in self.blocks.items()
            },
            "meta": self.meta,
        }

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
        if _field(d, "version", int) != VERSION:
            raise ArchitectureError(f"field 'version' must be {VERSION}, got {d['version']!r}")
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
            name: _block(name, b, candidates, mode, value)
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
            candidates=candidates, group_mode=mode, group_value=value, blocks=blocks, meta=meta
        )


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


def _block(name, b, candidates, mode, value):
    """One entry of 'blocks', checked against 'candidates' and 'groups'."""
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
    genotypes, seen_groups = [], []
    for i, g in enumerate(_field(b, "genotypes", list, where)):
        gw = f"{where}genotypes[{i}]"
        if not isinstance(g, dict):
            raise ArchitectureError(
                f"'{gw}' must be an object with 'dilation', 'channels' and 'groups', " f"got {g!r}"
            )
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
        channels = _field(g, "channels", int, gw + ".")
        if channels != per_group * len(chosen) or channels <= 0:
            raise ArchitectureError(
                f"'{gw}.channels' must be {per_group} x len(groups) = "
                f"{per_group * len(chosen)} (and > 0), got {channels}"
            )
        genotypes.append(Genotype(dilation=dil, channels=channels, groups=tuple(chosen)))
        seen_groups.extend(chosen)
    if sorted(seen_groups) != list(range(num_groups)):
        raise ArchitectureError(
            f"the 'groups' of '{where}genotypes' must cover channel groups "
            f"0..{num_groups - 1} exactly once each, got {sorted(seen_groups)}"
        )
    dils = [g.dilation for g in genotypes]
    if dils != sorted(set(dils), key=stage_cands.index):
        raise ArchitectureError(
            f"'{where}genotypes' must list distinct dilations in the order of "
            f"'candidates.{stage}' {[list(c) for c in stage_cands]}, got "
            f"{[list(x) for x in dils]}"
        )
    return BlockArchitecture(
        out_channels=out_channels, num_groups=num_groups, genotypes=tuple(genotypes)
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
