"""Decoding logits into an architecture (architecture/decode.py, eq. 4-6), checked against an
independent computation, and a decoded channels-mode file's round trip."""

import os

import pytest
import torch
from common import tiny_cfg
from detectron2.modeling import build_backbone

from projects.nats.architecture import (
    decode_architecture,
    decode_architecture_from_cfg,
    decode_block,
    load_architecture,
    realign_architecture,
    save_architecture,
)
from projects.nats.config import check_search_config
from projects.nats.modeling import mixed_ops
from projects.nats.preflight import check_decode_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def reference_decode(alpha, candidates, out_channels):
    """Eq. 4-6 written out with plain Python: {dilation: (channels, groups)}."""
    rows = alpha.tolist()
    n = len(rows)
    ind = [max(range(len(r)), key=lambda g: (r[g], -g)) for r in rows]  # first max on ties
    result = {}
    for g, d in enumerate(candidates):
        intensity = sum(1 for i in ind if i == g) / n
        if intensity > 0:
            groups = [i for i in range(n) if ind[i] == g]
            result[tuple(d)] = (round(out_channels * intensity), groups)
    return result


def supernet(value=4, mode="count"):
    cfg = tiny_cfg()
    cfg.MODEL.BACKBONE.NAME = "build_nats_supernet_resnet_backbone"
    cfg.MODEL.NATS.GROUPS.MODE, cfg.MODEL.NATS.GROUPS.VALUE = mode, value
    return cfg, build_backbone(cfg)


@pytest.mark.parametrize("seed", [0, 1])
def test_decoding_matches_eq_4_6(seed):
    cfg, model = supernet(value=8)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, op in mixed_ops(model):
            op.alpha.copy_(torch.randn(op.alpha.shape, generator=gen) * 3)
    arch = decode_architecture_from_cfg(model, cfg, meta={"iteration": 7})
    assert arch.group_mode == "count" and arch.group_value == 8 and arch.meta["iteration"] == 7
    assert set(arch.candidates) == {"res3", "res4", "res5"}
    ops = mixed_ops(model)
    assert list(arch.blocks) == [n for n, _ in ops]
    several = 0
    for name, op in ops:
        block = arch.blocks[name]
        expected = reference_decode(op.alpha, op.candidates, op.out_channels)
        got = {g.dilation: (g.channels, list(g.groups)) for g in block.genotypes}
        assert got == expected
        assert [g.dilation for g in block.genotypes] == [
            d for d in op.candidates if d in expected
        ]  # candidate order
        assert sum(g.channels for g in block.genotypes) == op.out_channels
        assert block.num_groups == 8
        several += len(block.genotypes) > 1
    assert several > 0  # random logits: some blocks keep several genotypes


def test_zero_logits_keep_the_first_candidate_and_list_input():
    alpha = torch.zeros(4, 3)
    alpha[2, 1] = 1.0
    arch = decode_architecture(
        [("res4.0", alpha, [(1, 1), (2, 2), (3, 3)], 64)], group_mode="count", group_value=4
    )
    genotypes = arch.blocks["res4.0"].genotypes
    assert [(g.dilation, g.channels, g.groups) for g in genotypes] == [
        ((1, 1), 48, (0, 1, 3)),
        ((2, 2), 16, (2,)),
    ]
    assert arch.candidates == {"res4": [(1, 1), (2, 2), (3, 3)]}


def test_channels_mode_file_round_trip(tmp_path):
    cfg, model = supernet(value=8, mode="channels")
    torch.manual_seed(5)
    with torch.no_grad():
        for _, op in mixed_ops(model):
            op.alpha.normal_()
    arch = decode_architecture_from_cfg(model, cfg, meta={"config": "x.yaml"})
    assert arch.blocks["res5.0"].num_groups == 8 and arch.blocks["res3.0"].num_groups == 2
    path = tmp_path / "architecture.json"
    save_architecture(arch, str(path))
    loaded = load_architecture(str(path))
    assert loaded.to_dict() == arch.to_dict()
    assert loaded.blocks == arch.blocks


def test_mismatched_logits_refused():
    with pytest.raises(ValueError, match=r"do not fit 3 candidates"):
        decode_architecture(
            [("res3.0", torch.zeros(4, 2), [(1, 1), (2, 2), (3, 3)], 64)],
            group_mode="count",
            group_value=4,
        )
    with pytest.raises(ValueError, match="no NATS mixed ops"):
        decode_architecture(torch.nn.Conv2d(1, 1, 1), group_mode="count", group_value=4)


# --- MODEL.NATS.DECODE: aligned channels and a genotype cap ---

CANDIDATES_C = [(1, 1), (2, 2), (3, 3), (1, 3), (3, 1)]


def _rows_of(block):
    """{row: dilation} of a decoded block, from its row sources."""
    sources = block.row_sources()
    assert len(sources) == block.out_channels
    return dict(sources)


@pytest.mark.parametrize(
    "out_channels,num_groups,align", [(128, 16, 16), (256, 16, 32), (512, 16, 8), (96, 8, 16)]
)
@pytest.mark.parametrize("seed", range(4))
def test_align_channels_are_multiples_sum_to_width_and_stay_within_one_unit(
    out_channels, num_groups, align, seed
):
    alpha = torch.randn(num_groups, 5, generator=torch.Generator().manual_seed(seed)) * 2
    exact = reference_decode(alpha, CANDIDATES_C, out_channels)
    block = decode_block(alpha, CANDIDATES_C, out_channels, align_channels=align)
    got = {g.dilation: g.channels for g in block.genotypes}
    assert all(c % align == 0 and c > 0 for c in got.values())
    assert sum(got.values()) == out_channels
    for d, (channels, groups) in exact.items():  # floor or ceil of C x I^g in units
        assert abs(got.get(d, 0) - channels) < align, (d, got.get(d, 0), channels)
    # Eq. 4's choices are kept: per group, the genotype it chose (kept or dropped).
    assert block.group_choices() == {k: d for d, (_, gs) in exact.items() for k in gs}
    assert {g.dilation for g in block.dropped} == set(exact) - set(got)
    # Every row appears once; only as many rows change dilation as the rounding moves.
    rows = _rows_of(block)
    assert sorted(rows) == list(range(out_channels))
    per_group = out_channels // num_groups
    choice = block.group_choices()
    moved = sum(rows[r] != choice[r // per_group] for r in rows)
    assert moved == sum(max(0, c - got.get(d, 0)) for d, (c, _) in exact.items())


def test_align_moves_a_group_to_the_genotype_its_logits_rank_next():
    # 8 groups of 4 channels over 32; (1, 1) 3 groups = 12 channels, (2, 2) 5 groups = 20:
    # aligned to 8: remainders 4 and 4, the larger share (2, 2) gets the unit -> 8 and 24.
    alpha = torch.full((8, 3), -5.0)
    alpha[:3, 0] = 1.0
    alpha[3:, 1] = 1.0
    alpha[1, 1] = 0.9  # group 1 of (1, 1) is the least decided against (2, 2)
    block = decode_block(alpha, [(1, 1), (2, 2), (3, 3)], 32, align_channels=8)
    assert [(g.dilation, g.channels, g.groups) for g in block.genotypes] == [
        ((1, 1), 8, (0, 1, 2)),
        ((2, 2), 24, (3, 4, 5, 6, 7)),
    ]
    assert block.genotypes[0].rows == ((0, 4), (8, 12))
    assert block.genotypes[1].rows == ((4, 8), (12, 32))  # group 1 moved, its index kept


def test_max_genotypes_folds_the_smallest_into_the_highest_logit_kept_one():
    gen = torch.Generator().manual_seed(3)
    alpha = torch.randn(16, 9, generator=gen)
    cands = [(i, i) for i in range(1, 10)]
    exact = reference_decode(alpha, cands, 256)
    assert len(exact) > 3
    block = decode_block(alpha, cands, 256, max_genotypes=3)  # no alignment: whole groups
    largest = sorted(exact, key=lambda d: (-len(exact[d][1]), cands.index(d)))[:3]
    assert [g.dilation for g in block.genotypes] == sorted(largest, key=cands.index)
    kept = [cands.index(d) for d in largest]
    rows = _rows_of(block)
    for i in range(16):
        want = cands[max(kept, key=lambda g: (alpha[i, g].item(), -g))]
        assert {rows[r] for r in range(i * 16, (i + 1) * 16)} == {want}
    assert {g.dilation for g in block.dropped} == set(exact) - set(largest)
    capped_aligned = decode_block(alpha, cands, 256, align_channels=32, max_genotypes=2)
    assert len(capped_aligned.genotypes) <= 2
    assert all(g.channels % 32 == 0 for g in capped_aligned.genotypes)


def test_align_1_is_todays_decoding_and_writes_version_1(tmp_path):
    cfg, model = supernet(value=8)
    torch.manual_seed(2)
    with torch.no_grad():
        for _, op in mixed_ops(model):
            op.alpha.normal_()
    default = decode_architecture_from_cfg(model, cfg)
    cfg.MODEL.NATS.DECODE.ALIGN_CHANNELS, cfg.MODEL.NATS.DECODE.MAX_GENOTYPES = 1, 0
    explicit = decode_architecture_from_cfg(model, cfg)
    assert default.to_dict() == explicit.to_dict()
    d = default.to_dict()
    assert d["version"] == 1 and "decode" not in d
    assert all("rows" not in g for b in d["blocks"].values() for g in b["genotypes"])
    for name, op in mixed_ops(model):  # exactly eq. 4-6
        got = {g.dilation: (g.channels, list(g.groups)) for g in default.blocks[name].genotypes}
        assert got == reference_decode(op.alpha, op.candidates, op.out_channels)


def test_aligned_file_round_trips_as_version_2(tmp_path):
    cfg, model = supernet(value=8)
    torch.manual_seed(4)
    with torch.no_grad():
        for _, op in mixed_ops(model):
            op.alpha.normal_()
    cfg.MODEL.NATS.DECODE.ALIGN_CHANNELS, cfg.MODEL.NATS.DECODE.MAX_GENOTYPES = 8, 3
    arch = decode_architecture_from_cfg(model, cfg)
    assert (arch.align_channels, arch.max_genotypes, arch.version) == (8, 3, 2)
    path = str(tmp_path / "architecture.json")
    save_architecture(arch, path)
    loaded = load_architecture(path)
    assert loaded == arch and loaded.to_dict() == arch.to_dict()
    assert loaded.to_dict()["decode"] == {"align_channels": 8, "max_genotypes": 3}
    for block in loaded.blocks.values():
        assert len(block.genotypes) <= 3 and all(g.channels % 8 == 0 for g in block.genotypes)


def test_align_that_does_not_divide_the_width_is_refused():
    with pytest.raises(
        ValueError, match=r"24 output channels are not a multiple of the alignment 16"
    ):
        decode_block(torch.zeros(4, 2), [(1, 1), (2, 2)], 24, align_channels=16)
    cfg, model = supernet(value=4)  # tiny widths: res3 16, res4 32, res5 64
    cfg.MODEL.NATS.DECODE.ALIGN_CHANNELS = 32
    message = (
        r"MODEL.NATS.DECODE.ALIGN_CHANNELS = 32 does not divide the 3x3 width of searched stage "
        r"res3 \(16 channels"
    )
    with pytest.raises(ValueError, match=message):
        check_search_config(cfg)
    with pytest.raises(ValueError, match=message):
        decode_architecture_from_cfg(model, cfg)
    cfg.MODEL.NATS.DECODE.ALIGN_CHANNELS = 16
    decode_architecture_from_cfg(model, cfg)  # 16 divides every searched width


@pytest.mark.parametrize(
    "key,value,accepted",
    [
        ("ALIGN_CHANNELS", 0, "an integer >= 1"),
        ("ALIGN_CHANNELS", 8.0, "an integer >= 1"),
        ("MAX_GENOTYPES", -1, "an integer >= 0"),
        ("MAX_GENOTYPES", True, "an integer >= 0"),
    ],
)
def test_bad_decode_keys_are_named(key, value, accepted):
    cfg, _ = supernet(value=4)
    setattr(cfg.MODEL.NATS.DECODE, key, value)
    with pytest.raises(ValueError, match=f"MODEL.NATS.DECODE.{key} must be {accepted}"):
        check_decode_config(cfg)


def test_realign_keeps_the_choices_of_a_file_without_logits():
    path = os.path.join(ROOT, "configs/NATS/architectures/reference_R50_G16_settingC.json")
    exact = load_architecture(path)
    aligned = realign_architecture(exact, align_channels=16)
    assert aligned.version == 2 and aligned.meta["realigned_from_choices"]
    for name, block in exact.blocks.items():
        assert aligned.blocks[name].group_choices() == block.group_choices()
        assert all(g.channels % 16 == 0 for g in aligned.blocks[name].genotypes)
    # res3 (128 channels, 8 per group) had slices of 8; at least one block changes
    assert any(aligned.blocks[n] != exact.blocks[n] for n in exact.blocks if n.startswith("res3"))
