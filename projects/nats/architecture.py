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
import os
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from iopath.common.file_io import PathManager as _PathManagerCls

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
GROUP_MODES = ("count", "channels")
PathManager = _PathManagerCls()


class ArchitectureError(ValueError):
    """A malformed architecture file; the message names the field and what is accepted."""


@dataclass(frozen=True)
class Genotype:
    dilation: Tuple[int, int]  # (dh, dw)
    channels: int  # output channels of the split conv that use this dilation
    groups: Tuple[int, ...]  # the channel groups whose argmax chose it


@dataclass(frozen=True)
class BlockArchitecture:
    out_channels: int
    num_groups: int
    genotypes: Tuple[Genotype, ...]


@dataclass
class Architecture:
    candidates: Dict[str, List[Tuple[int, int]]]
    group_mode: str
    group_value: int
    blocks: Dict[str, BlockArchitecture]
    meta: dict = field(default_factory=dict)

    def to_dict(self):
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
        """Parse and validate; every error names the offending field and the accepted values."""

        def need(obj, key, kind, where):
            if not isinstance(obj, dict) or key not in obj:
                raise ArchitectureError(f"{source}: missing field '{where}{key}'")
            value = obj[key]
            if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
                raise ArchitectureError(
                    f"{source}: field '{where}{key}' must be {getattr(kind, '__name__', kind)}, "
                    f"got {value!r}"
                )
            return value

        if need(d, "format", str, "") != FORMAT:
            raise ArchitectureError(
                f"{source}: field 'format' must be '{FORMAT}', got {d['format']!r}"
            )
        if need(d, "version", int, "") != VERSION:
            raise ArchitectureError(
                f"{source}: field 'version' must be {VERSION}, got {d['version']!r}"
            )
        groups = need(d, "groups", dict, "")
        mode = need(groups, "mode", str, "groups.")
        if mode not in GROUP_MODES:
            raise ArchitectureError(
                f"{source}: 'groups.mode' must be one of {GROUP_MODES}, got {mode!r}"
            )
        value = need(groups, "value", int, "groups.")
        candidates = {}
        for stage, cands in need(d, "candidates", dict, "").items():
            candidates[stage] = [_dilation(c, f"{source}: 'candidates.{stage}'") for c in cands]
        blocks = {}
        for name, b in need(d, "blocks", dict, "").items():
            where = f"blocks.{name}."
            stage = name.split(".")[0]
            if stage not in candidates:
                raise ArchitectureError(
                    f"{source}: block '{name}' is in stage '{stage}', which is not among the "
                    f"searched stages of 'candidates': {sorted(candidates)}"
                )
            out_channels = need(b, "out_channels", int, where)
            num_groups = need(b, "num_groups", int, where)
            if num_groups <= 0 or out_channels % num_groups:
                raise ArchitectureError(
                    f"{source}: '{where}num_groups' must be a positive divisor of out_channels "
                    f"({out_channels}), got {num_groups}"
                )
            per_group = out_channels // num_groups
            genotypes, seen_groups = [], []
            for i, g in enumerate(need(b, "genotypes", list, where)):
                gw = f"{where}genotypes[{i}]."
                dil = _dilation(need(g, "dilation", list, gw), f"{source}: '{gw}dilation'")
                if dil not in candidates[stage]:
                    raise ArchitectureError(
                        f"{source}: '{gw}dilation' {list(dil)} is not a candidate of {stage}; "
                        f"accepted: {[list(c) for c in candidates[stage]]}"
                    )
                chosen = tuple(need(g, "groups", list, gw))
                channels = need(g, "channels", int, gw)
                if channels != per_group * len(chosen) or channels <= 0:
                    raise ArchitectureError(
                        f"{source}: '{gw}channels' must be {per_group} x len(groups) = "
                        f"{per_group * len(chosen)} (and > 0), got {channels}"
                    )
                genotypes.append(Genotype(dil, channels, chosen))
                seen_groups.extend(chosen)
            if sorted(seen_groups) != list(range(num_groups)):
                raise ArchitectureError(
                    f"{source}: the 'groups' of '{where}genotypes' must cover channel groups "
                    f"0..{num_groups - 1} exactly once each, got {sorted(seen_groups)}"
                )
            dils = [g.dilation for g in genotypes]
            if dils != sorted(set(dils), key=candidates[stage].index):
                raise ArchitectureError(
                    f"{source}: '{where}genotypes' must list distinct dilations in the order of "
                    f"'candidates.{stage}' {[list(c) for c in candidates[stage]]}, got "
                    f"{[list(x) for x in dils]}"
                )
            blocks[name] = BlockArchitecture(out_channels, num_groups, tuple(genotypes))
        meta = d.get("meta", {})
        return cls(candidates, mode, value, blocks, meta if isinstance(meta, dict) else {})


def _dilation(value, where):
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
        raise ArchitectureError(f"{where} must be [dh, dw] with positive integers, got {value!r}")
    return tuple(value)


def save_architecture(arch, path):
    """Write ``arch`` as JSON; atomically (temp file + rename) on local paths."""
    text = json.dumps(arch.to_dict(), indent=1) + "\n"
    local_dir = os.path.dirname(os.path.abspath(path))
    if "://" in path:
        with PathManager.open(path, "w") as f:
            f.write(text)
        return
    os.makedirs(local_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".architecture-", suffix=".json.tmp", dir=local_dir)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_architecture(path):
    """Read and validate an architecture file; errors name the field and accepted values."""
    if not PathManager.exists(path):
        raise ArchitectureError(f"architecture file {path} does not exist")
    with PathManager.open(path, "r") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ArchitectureError(f"{path} is not valid JSON: {e}") from None
    return Architecture.from_dict(data, source=path)
