"""Decoding logits into an architecture (eq. 4-6), checked against an independent computation,
and the architecture file round trip."""

import json
import os
import re

import pytest
import torch
from common import tiny_cfg
from detectron2.modeling import build_backbone

from projects.nats.architecture import (
    Architecture,
    ArchitectureError,
    BlockArchitecture,
    Genotype,
    decode_architecture,
    decode_architecture_from_cfg,
    load_architecture,
    save_architecture,
)
from projects.nats.modeling import mixed_ops


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


def small_architecture_dict():
    """A valid two-block file (count mode, 2 groups per conv) for the bad-file cases to edit."""
    cands = [[1, 1], [2, 2]]
    return {
        "format": "nats-architecture",
        "version": 1,
        "groups": {"mode": "count", "value": 2},
        "candidates": {"res3": cands, "res4": cands},
        "blocks": {
            "res3.0": {
                "out_channels": 8,
                "num_groups": 2,
                "genotypes": [
                    {"dilation": [1, 1], "channels": 4, "groups": [0]},
                    {"dilation": [2, 2], "channels": 4, "groups": [1]},
                ],
            },
            "res4.0": {
                "out_channels": 16,
                "num_groups": 2,
                "genotypes": [{"dilation": [2, 2], "channels": 16, "groups": [0, 1]}],
            },
        },
        "meta": {"note": "test"},
    }


def _set_block(d, name, block):
    d["blocks"][name] = block


BAD_FILES = {
    "candidates not a list": (
        lambda d: d["candidates"].update(res3=5),
        "'candidates.res3' must be a non-empty list of [dh, dw] pairs",
    ),
    "string channel group": (
        lambda d: d["blocks"]["res3.0"]["genotypes"][1].update(groups=["1"]),
        "'blocks.res3.0.genotypes[1].groups[0]' must be a channel group index in 0..1",
    ),
    "count value disagrees with num_groups": (
        lambda d: d["groups"].update(value=4),
        "'blocks.res3.0.num_groups' must equal 'groups.value' (4)",
    ),
    "channels value disagrees with num_groups": (
        # 8 / 4 = 2 groups fits res3.0; res4.0 would need 16 / 4 = 4, not 2
        lambda d: d["groups"].update(mode="channels", value=4),
        "'blocks.res4.0.num_groups' must be out_channels / 'groups.value' = 16 / 4",
    ),
    "zero value": (
        lambda d: d["groups"].update(value=0),
        "'groups.value' must be a positive integer",
    ),
    "negative value": (
        lambda d: d["groups"].update(value=-2),
        "'groups.value' must be a positive integer",
    ),
    "unknown stage in candidates": (
        lambda d: d["candidates"].update(res9=[[1, 1]]),
        "'candidates.res9' is not a stage; accepted stages: ['res2', 'res3', 'res4', 'res5']",
    ),
    "block name without index": (
        lambda d: _set_block(d, "res3", d["blocks"].pop("res3.0")),
        "'blocks.res3' must be '<stage>.<index>' with stage in ['res2', 'res3', 'res4', 'res5']",
    ),
    "block name of an unknown stage": (
        lambda d: _set_block(d, "res9.0", d["blocks"].pop("res3.0")),
        "'blocks.res9.0' must be '<stage>.<index>'",
    ),
    "block of a stage not in candidates": (
        lambda d: _set_block(d, "res2.0", d["blocks"].pop("res3.0")),
        "'blocks.res2.0' is in stage 'res2', which is not among the searched stages",
    ),
    "meta not an object": (
        lambda d: d.update(meta=["iteration", 7]),
        "field 'meta' must be an object",
    ),
}


def test_small_architecture_file_is_valid(tmp_path):
    path = tmp_path / "architecture.json"
    path.write_text(json.dumps(small_architecture_dict()))
    arch = load_architecture(str(path))
    assert arch.to_dict() == small_architecture_dict()


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_architecture_file_names_the_field(tmp_path, case):
    edit, message = BAD_FILES[case]
    data = small_architecture_dict()
    edit(data)
    path = tmp_path / "architecture.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ArchitectureError, match=re.escape(message)) as info:
        load_architecture(str(path))
    assert str(info.value).startswith(str(path))  # the file is named too


def test_committed_reference_architecture_loads_and_matches_its_generator():
    from tools.make_reference_architecture import DEFAULT_OUT, seeded_architecture

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    loaded = load_architecture(os.path.join(root, DEFAULT_OUT))
    assert loaded.to_dict() == seeded_architecture().to_dict()


def test_dataclasses_are_keyword_only():
    genotype = Genotype(dilation=(1, 1), channels=8, groups=(0, 1))
    block = BlockArchitecture(out_channels=8, num_groups=2, genotypes=(genotype,))
    arch = Architecture(candidates={"res3": [(1, 1)]}, group_mode="count", group_value=2, blocks={})
    assert arch.meta == {} and block.genotypes[0] is genotype
    for cls, args in [
        (Genotype, ((1, 1), 8, (0, 1))),
        (BlockArchitecture, (8, 2, (genotype,))),
        (Architecture, ({"res3": [(1, 1)]}, "count", 2, {})),
    ]:
        with pytest.raises(TypeError):
            cls(*args)
