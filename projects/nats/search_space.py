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
    "check_search_mode_config",
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
    """What ``MODEL.NATS`` asks to search, as :func:`parse_search_space` validated it.

    Attributes:
        stages (tuple[str]): the searched stages, among ``STAGE_NAMES``, in config order.
        candidates (dict[str, tuple[tuple[int, int]]]): searched stage -> its (dh, dw)s, in the
            order of the logits' columns.
        group_mode (str): ``MODEL.NATS.GROUPS.MODE``: "count" or "channels".
        group_value (int): ``MODEL.NATS.GROUPS.VALUE``: groups per conv ("count") or channels
            per group ("channels").
    """

    stages: Tuple[str, ...]
    candidates: Dict[str, Tuple[Tuple[int, int], ...]]
    group_mode: str
    group_value: int

    def num_groups(self, out_channels, *, conv_groups=1, where="a searched conv"):
        """Number of channel groups of a conv with ``out_channels`` outputs.

        :func:`num_channel_groups` with this space's ``group_mode`` and ``group_value``.

        Args:
            out_channels (int): output channels of the searched conv.
            conv_groups (int): the conv's own groups (``MODEL.RESNETS.NUM_GROUPS``; > 1: ResNeXt).
            where (str): how the conv is named in error messages (e.g. ``"res4.3"``).

        Returns:
            int: the number N of channel groups.

        Raises:
            ValueError: as :func:`num_channel_groups`.
        """
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
    """``[dh, dw]`` -> ``(dh, dw)``, positive integers; else ``error`` naming ``where``.

    Args:
        value: the dilation: a list or tuple of two integers >= 1 (bools are refused).
        where (str): how ``value`` is named in the error message (e.g. a config key).
        error (type): the exception class raised for a bad ``value``.

    Returns:
        tuple[int, int]: ``(dh, dw)``.

    Raises:
        error: if ``value`` is not a pair of positive integers.
    """
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(is_int(v) and v >= 1 for v in value)
    ):
        raise error(f"{where} must be a [dh, dw] pair of positive integers, got {value!r}")
    return int(value[0]), int(value[1])


def split_block_path(path):
    """Split a searched conv's module path into (prefix, block name).

    ``"backbone.bottom_up.res4.3.conv2"`` -> ``("backbone.bottom_up.", "res4.3")``; None if
    ``path`` is not a searched conv's module path (or state-dict prefix).

    Args:
        path (str): a module path or state-dict prefix.

    Returns:
        tuple[str, str] or None: ``(prefix, block_name)``, the prefix empty or ending in ``"."``.
    """
    match = _SEARCHED_CONV_PATH.match(path)
    return None if match is None else (match.group(1), match.group(2))


def replica_key(dilation):
    """The state-dict key of a supernet conv's replica for ``dilation``, under the block's
    ``conv2.replicas.``: ``(2, 2)`` -> ``"2x2"``."""
    return f"{dilation[0]}x{dilation[1]}"


def parse_candidates(value, key):
    """``[[dh, dw], ...]`` -> tuple of (dh, dw); errors name ``key`` and what is accepted.

    Args:
        value: a non-empty list or tuple of distinct ``[dh, dw]`` pairs of positive integers.
        key (str): the config key ``value`` comes from, named in error messages.

    Returns:
        tuple[tuple[int, int]]: the dilations, in the given order.

    Raises:
        ValueError: if ``value`` is not a non-empty list, holds a bad pair or a pair twice.
    """
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise ValueError(f"{key} must be a non-empty list of [dh, dw] pairs, got {value!r}")
    out = [parse_dilation(d, f"{key}[{i}]") for i, d in enumerate(value)]
    if len(set(out)) != len(out):
        raise ValueError(f"{key} lists a dilation twice: {[list(d) for d in out]}")
    return tuple(out)


def parse_search_space(cfg):
    """Validate ``MODEL.NATS.STAGES``, ``CANDIDATES.*`` and ``GROUPS.*`` of ``cfg``.

    Only the searched stages' ``CANDIDATES`` are read.

    Args:
        cfg (CfgNode): a config with the NATS keys (:func:`~projects.nats.add_nats_config`).

    Returns:
        SearchSpace: the searched stages, their candidates and the channel-group division.

    Raises:
        ValueError: naming the key and the accepted values: STAGES not a non-empty list of
            distinct stage names, a searched stage's CANDIDATES not a non-empty list of distinct
            ``[dh, dw]`` pairs, GROUPS.MODE not "count" or "channels", or GROUPS.VALUE not >= 1.
    """
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

    Args:
        out_channels (int): output channels of the conv.
        mode (str): ``MODEL.NATS.GROUPS.MODE``: "count" or "channels".
        value (int): ``MODEL.NATS.GROUPS.VALUE``: the number of groups ("count") or of channels
            per group ("channels").
        conv_groups (int): the conv's own groups (``MODEL.RESNETS.NUM_GROUPS``); 1: plain conv.
        where (str): how the conv is named in error messages (e.g. ``"res4.3"``).

    Returns:
        int: N.

    Raises:
        ValueError: if ``mode`` is unknown, the channels do not divide into equal groups or a
            channel group cuts through a conv group; the message names MODEL.NATS.GROUPS and
            the accepted values.
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


SEARCH_MODES = ("mix", "sample")


def check_search_mode_config(cfg):
    """Validate ``MODEL.NATS.SEARCH.{MODE, SHARED_WEIGHTS, TAU}``: how the mixed ops run.

    Args:
        cfg (CfgNode): a config with the NATS keys.

    Returns:
        tuple[str, bool]: ``(mode, shared_weights)``.

    Raises:
        ValueError: naming the key and the accepted values: MODE not "mix" or "sample",
            SHARED_WEIGHTS not a bool, or (in "sample" mode) TAU not two numbers
            start >= end > 0.
    """
    search = cfg.MODEL.NATS.SEARCH
    mode, shared, tau = search.MODE, search.SHARED_WEIGHTS, tuple(search.TAU)
    if mode not in SEARCH_MODES:
        raise ValueError(
            f"MODEL.NATS.SEARCH.MODE must be one of {list(SEARCH_MODES)}, got {mode!r}"
        )
    if not isinstance(shared, bool):
        raise ValueError(f"MODEL.NATS.SEARCH.SHARED_WEIGHTS must be True or False, got {shared!r}")
    if mode == "sample" and (
        len(tau) != 2
        or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in tau)
        or not tau[0] >= tau[1] > 0
    ):
        raise ValueError(
            "MODEL.NATS.SEARCH.TAU must be two numbers (start, end) with start >= end > 0 for "
            f'MODEL.NATS.SEARCH.MODE "sample", got {search.TAU!r}'
        )
    return mode, shared
