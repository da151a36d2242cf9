"""Carry-over: the decoded net from a supernet checkpoint equals the one-hot supernet."""

import pytest
import torch
from common import tiny_cfg
from detectron2.modeling import build_backbone

from projects.nats.architecture import (
    carry_over_supernet,
    decode_architecture_from_cfg,
    save_architecture,
    save_carried_over,
)
from projects.nats.modeling.mixed_op import MixedDilationConv


def distinct_supernet(cfg, *, seed):
    """The supernet of ``cfg`` in eval mode with distinct replicas, logits and norm statistics."""
    torch.manual_seed(0)
    supernet = build_backbone(cfg).eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(supernet.named_parameters()) + list(supernet.named_buffers()):
            if ".replicas." in name:
                t.mul_(torch.rand(t.shape[0], 1, 1, 1, generator=gen) + 0.5)
            elif name.endswith(".alpha"):
                t.copy_(torch.randn(t.shape, generator=gen))
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
    return supernet


@pytest.mark.parametrize(
    "resnext,shared", [(False, False), (True, False), (False, True)], ids=["", "resnext", "shared"]
)
def test_decoded_from_supernet_equals_one_hot_supernet(tmp_path, resnext, shared):
    cfg = tiny_cfg(tmp_path)
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.NATS.SEARCH.SHARED_WEIGHTS = shared  # one weight for every dilation: no replicas
    if resnext:  # conv groups of 2-8 channels; 4 channel groups per conv move whole conv groups
        cfg.MODEL.RESNETS.NUM_GROUPS, cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 4, 2
    cfg.MODEL.NATS.GROUPS.MODE, cfg.MODEL.NATS.GROUPS.VALUE = "count", 4
    cfg.MODEL.BACKBONE.NAME = "build_nats_supernet_resnet_fpn_backbone"
    supernet = distinct_supernet(cfg, seed=1)
    arch = decode_architecture_from_cfg(supernet, cfg)
    assert any(len(b.genotypes) > 2 for b in arch.blocks.values())
    path = str(tmp_path / "architecture.json")
    save_architecture(arch, path)

    state = {"model": {"backbone." + k: v for k, v in supernet.state_dict().items()}}
    torch.save(state, tmp_path / "supernet.pth")
    save_carried_over(str(tmp_path / "supernet.pth"), path, str(tmp_path / "decoded.pth"))
    carried = torch.load(tmp_path / "decoded.pth")["model"]

    decoded_cfg = cfg.clone()
    decoded_cfg.MODEL.BACKBONE.NAME = "build_nats_resnet_fpn_backbone"
    decoded_cfg.MODEL.NATS.ARCHITECTURE = path
    decoded = build_backbone(decoded_cfg).eval()
    decoded.load_state_dict({k[len("backbone.") :]: v for k, v in carried.items()}, strict=True)

    with torch.no_grad():  # one-hot mixing weights on each group's argmax
        for m in supernet.modules():
            if isinstance(m, MixedDilationConv):
                m.alpha.copy_(
                    torch.nn.functional.one_hot(m.alpha.argmax(1), m.alpha.shape[1]) * 1e4
                )
        x = torch.randn(1, 3, 64, 96)
        expected, got = supernet(x), decoded(x)
    for k in expected:
        scale = expected[k].abs().max()
        assert (got[k] - expected[k]).abs().max() <= 1e-5 * scale, (k, scale)


def test_carry_over_rejects_an_architecture_of_other_logits(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.MODEL.BACKBONE.NAME = "build_nats_supernet_resnet_fpn_backbone"
    cfg.MODEL.NATS.GROUPS.VALUE = 4
    supernet = build_backbone(cfg)
    arch = decode_architecture_from_cfg(supernet, cfg)  # all logits 0: every group picks (1, 1)
    with torch.no_grad():
        supernet.bottom_up.res4[2].conv2.alpha[1, 2] = 5.0
    with pytest.raises(ValueError, match="'blocks.res4.2' does not match the supernet's logits"):
        carry_over_supernet(supernet.state_dict(), arch)


def test_carry_over_of_an_aligned_architecture_uses_each_rows_new_replica(tmp_path):
    # tiny widths res3 16, res4 32, res5 64 with 8 groups: 2, 4, 8 channels per group; aligned
    # to 8, the rounding moves whole groups, so the decoded net equals the supernet with
    # one-hot logits on the genotype each group's rows now belong to.
    cfg = tiny_cfg(tmp_path)
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.NATS.GROUPS.MODE, cfg.MODEL.NATS.GROUPS.VALUE = "count", 8
    cfg.MODEL.NATS.DECODE.ALIGN_CHANNELS, cfg.MODEL.NATS.DECODE.MAX_GENOTYPES = 8, 3
    cfg.MODEL.BACKBONE.NAME = "build_nats_supernet_resnet_fpn_backbone"
    supernet = distinct_supernet(cfg, seed=2)
    arch = decode_architecture_from_cfg(supernet, cfg)
    assert arch.version == 2
    path = str(tmp_path / "architecture.json")
    save_architecture(arch, path)
    carried = carry_over_supernet(supernet.state_dict(), arch)

    decoded_cfg = cfg.clone()
    decoded_cfg.MODEL.BACKBONE.NAME = "build_nats_resnet_fpn_backbone"
    decoded_cfg.MODEL.NATS.ARCHITECTURE = path
    decoded = build_backbone(decoded_cfg).eval()
    decoded.load_state_dict(carried, strict=True)  # no missing or unexpected keys

    moved = 0
    state = supernet.state_dict()
    with torch.no_grad():
        for m_name, m in supernet.named_modules():
            if not isinstance(m, MixedDilationConv):
                continue
            block_name = m_name.split("bottom_up.")[1][: -len(".conv2")]
            block = arch.blocks[block_name]
            per_group = block.out_channels // block.num_groups
            sources = block.row_sources()
            # Each decoded channel holds its row of the replica of the genotype it is in.
            weight = carried[m_name + ".weight"]
            for c, (row, dilation) in enumerate(sources):
                key = (
                    m_name + ".weight"
                    if dilation == (1, 1)
                    else f"{m_name}.replicas.{dilation[0]}x{dilation[1]}"
                )
                assert torch.equal(weight[c], state[key][row])
            now = {row // per_group: d for row, d in sources}
            choice = block.group_choices()
            moved += sum(now[k] != choice[k] for k in choice)
            one_hot = torch.zeros_like(m.alpha)
            for k, d in now.items():
                one_hot[k, m.candidates.index(d)] = 1e4
            m.alpha.copy_(one_hot)
        assert moved > 0  # the alignment or the cap moved some groups to another replica
        x = torch.randn(1, 3, 64, 96)
        expected, got = supernet(x), decoded(x)
    for k in expected:
        scale = expected[k].abs().max()
        assert (got[k] - expected[k]).abs().max() <= 1e-5 * scale, (k, scale)
