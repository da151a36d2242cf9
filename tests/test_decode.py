"""Decoding logits into an architecture (architecture/decode.py, eq. 4-6), checked against an
independent computation, and a decoded channels-mode file's round trip."""

import pytest
import torch
from common import tiny_cfg
from detectron2.modeling import build_backbone

from projects.nats.architecture import (
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
