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
from typing import Dict, List, Tuple

from detectron2.utils.file_io import PathManager

from ..atomic import atomic_open
from ..search_space import GROUP_MODES
from .blocks import (
    ArchitectureError,
    BlockArchitecture,
    Genotype,
    parse_block,
    parse_candidates,
    require_field,
)

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
        if require_field(d, "format", str) != FORMAT:
            raise ArchitectureError(f"field 'format' must be '{FORMAT}', got {d['format']!r}")
        version = require_field(d, "version", int)
        if version not in VERSIONS:
            raise ArchitectureError(
                f"field 'version' must be one of {list(VERSIONS)}, got {d['version']!r}"
            )
        align, cap = _decode_options(d) if version == VERSION_ALIGNED else (1, 0)
        groups = require_field(d, "groups", dict)
        mode = require_field(groups, "mode", str, "groups.")
        if mode not in GROUP_MODES:
            raise ArchitectureError(
                f"'groups.mode' must be one of {list(GROUP_MODES)}, got {mode!r}"
            )
        value = require_field(groups, "value", int, "groups.")
        if value < 1:
            raise ArchitectureError(
                f"'groups.value' must be a positive integer (groups per conv for mode "
                f"'count', channels per group for mode 'channels'), got {value}"
            )
        candidates = {
            stage: parse_candidates(stage, cands)
            for stage, cands in require_field(d, "candidates", dict).items()
        }
        blocks = {
            name: parse_block(
                name, b, candidates, mode, value, align=align, cap=cap, v2=version > 1
            )
            for name, b in require_field(d, "blocks", dict).items()
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
    options = require_field(d, "decode", dict)
    align = require_field(options, "align_channels", int, "decode.")
    cap = require_field(options, "max_genotypes", int, "decode.")
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
