"""The channel-level search space read from ``MODEL.NATS``: searched stages, dilation candidates
per stage and the division of a searched conv's output channels into groups with own logits."""

import re
from dataclasses import dataclass
from typing import Dict, Tuple

__all__ = [
    "STAGE_NAMES",
    "GROUP_MODES",
    "SearchSpace",
    "parse_search_space",
    "parse_candidates",
    "parse_dilation",
    "num_channel_groups",
    "is_int",
    "BLOCK_NAME",
    "split_block_path",
    "replica_key",
]

STAGE_NAMES = ("res2", "res3", "res4", "res5")
GROUP_MODES = ("count", "channels")
# A searched block's name, "<stage>.<index>" as in Detectron2's ResNet (e.g. "res4.3"); the
# architecture file, the logs and the carry-over tool all name blocks so.
BLOCK_NAME = re.compile(r"(" + "|".join(map(re.escape, STAGE_NAMES)) + r")\.(0|[1-9][0-9]*)")
# A searched conv's module path or state-dict prefix: "<prefix><block name>.conv2".
_SEARCHED_CONV_PATH = re.compile(r"^(.*?)(?:^|(?<=\.))(" + BLOCK_NAME.pattern + r")\.conv2$")


@dataclass(frozen=True, kw_only=True)
class SearchSpace:
    """What ``MODEL.NATS`` asks to search; ``candidates``: searched stage -> its (dh, dw)s."""

    stages: Tuple[str, ...]
    candidates: Dict[str, Tuple[Tuple[int, int], ...]]
    group_mode: str
    group_value: int

    def num_groups(self, out_channels, *, conv_groups=1, where="a searched conv"):
        """Number of channel groups of a conv with ``out_channels`` outputs (see
        :func:`num_channel_groups`)."""
        return num_channel_groups(
            out_channels,
            mode=self.group_mode,
            value=self.group_value,
            conv_groups=conv_groups,
            where=where,
        )


def is_int(v):
    """Whether ``v`` is an integer (``bool`` is not, although Python says so)."""
    return isinstance(v, int) and not isinstance(v, bool)


def parse_dilation(value, where, *, error=ValueError):
    """``[dh, dw]`` -> ``(dh, dw)``, positive integers; else ``error`` naming ``where``."""
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(is_int(v) and v >= 1 for v in value)
    ):
        raise error(f"{where} must be a [dh, dw] pair of positive integers, got {value!r}")
    return int(value[0]), int(value[1])


def split_block_path(path):
    """``"backbone.bottom_up.res4.3.conv2"`` -> ``("backbone.bottom_up.", "res4.3")``; None if
    ``path`` is not a searched conv's module path (or state-dict prefix)."""
    match = _SEARCHED_CONV_PATH.match(path)
    return None if match is None else (match.group(1), match.group(2))


def replica_key(dilation):
    """The state-dict key of a supernet conv's replica for ``dilation``, under the block's
    ``conv2.replicas.``: ``(2, 2)`` -> ``"2x2"``."""
    return f"{dilation[0]}x{dilation[1]}"


def parse_candidates(value, key):
    """``[[dh, dw], ...]`` -> tuple of (dh, dw); errors name ``key`` and what is accepted."""
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise ValueError(f"{key} must be a non-empty list of [dh, dw] pairs, got {value!r}")
    out = [parse_dilation(d, f"{key}[{i}]") for i, d in enumerate(value)]
    if len(set(out)) != len(out):
        raise ValueError(f"{key} lists a dilation twice: {[list(d) for d in out]}")
    return tuple(out)


def parse_search_space(cfg):
    """Validate ``MODEL.NATS.STAGES``, ``CANDIDATES.*`` and ``GROUPS.*`` of ``cfg``."""
    nats = cfg.MODEL.NATS
    stages = nats.STAGES
    if (
        not isinstance(stages, (list, tuple))
        or len(stages) == 0
        or any(s not in STAGE_NAMES for s in stages)
        or len(set(stages)) != len(stages)
    ):
        raise ValueError(
            f"MODEL.NATS.STAGES must be a non-empty list of distinct stages among "
            f"{list(STAGE_NAMES)}, got {stages!r}"
        )
    candidates = {}
    for stage in stages:
        key = f"MODEL.NATS.CANDIDATES.{stage.upper()}"
        candidates[stage] = parse_candidates(nats.CANDIDATES.get(stage.upper()), key)
    mode, value = nats.GROUPS.MODE, nats.GROUPS.VALUE
    if mode not in GROUP_MODES:
        raise ValueError(f"MODEL.NATS.GROUPS.MODE must be one of {list(GROUP_MODES)}, got {mode!r}")
    if not is_int(value) or value < 1:
        raise ValueError(f"MODEL.NATS.GROUPS.VALUE must be a positive integer, got {value!r}")
    return SearchSpace(
        stages=tuple(stages), candidates=candidates, group_mode=mode, group_value=value
    )


def num_channel_groups(out_channels, *, mode, value, conv_groups=1, where="a searched conv"):
    """The number N of channel groups of a conv with ``out_channels`` outputs.

    ``mode="count"``: N = ``value``; ``mode="channels"``: ``value`` channels per group. The groups
    must divide the channels equally, and with grouped convs (``conv_groups > 1``, ResNeXt) a
    channel group must not cut through a conv group: its size must be a multiple of
    ``out_channels / conv_groups``, so the decoded split convs stay grouped convs.
    """
    setting = f"MODEL.NATS.GROUPS (MODE={mode!r}, VALUE={value})"
    if mode == "count":
        if out_channels % value:
            raise ValueError(
                f"{setting}: {where} has {out_channels} output channels, not divisible into "
                f"{value} equal groups; accepted VALUEs are the divisors of {out_channels}"
            )
        num = value
    elif mode == "channels":
        if out_channels % value:
            raise ValueError(
                f"{setting}: {where} has {out_channels} output channels, not a multiple of "
                f"{value} channels per group; accepted VALUEs are the divisors of {out_channels}"
            )
        num = out_channels // value
    else:
        raise ValueError(f"MODEL.NATS.GROUPS.MODE must be one of {list(GROUP_MODES)}, got {mode!r}")
    per_group, per_conv_group = out_channels // num, out_channels // conv_groups
    if conv_groups > 1 and per_group % per_conv_group:
        raise ValueError(
            f"{setting}: {where} would get {per_group} channels per group, which cuts through its "
            f"conv groups of {per_conv_group} channels (MODEL.RESNETS.NUM_GROUPS={conv_groups}); "
            f"channels per group must be a multiple of {per_conv_group} (e.g. MODE 'channels' "
            f"with VALUE 32, as the paper uses for X101-32x4d)"
        )
    return num
