"""The cheaper search modes: sampled channel groups (MODE "sample") and shared dilation weights.

Run as a group with ``pytest -k "sampled or shared"``.
"""

import json
import os

import pytest
import torch
import torch.nn.functional as F
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_backbone
from detectron2.utils import comm
from test_search_trainer import build, changed, interrupted_and_resumed, search_cfg, split_state

from projects.nats.architecture import load_architecture
from projects.nats.config import check_search_config
from projects.nats.modeling import MixedDilationConv, mixed_ops
from projects.nats.search.sampling import SamplingSchedule

CANDIDATES = [(1, 1), (2, 2), (1, 3), (3, 1)]


def _op(*, mode="sample", shared=False, in_channels=8, out_channels=16, num_groups=4, **kw):
    torch.manual_seed(0)
    op = MixedDilationConv(
        in_channels,
        out_channels,
        candidates=CANDIDATES,
        num_groups=num_groups,
        mode=mode,
        shared_weights=shared,
        **kw,
    )
    with torch.no_grad():
        op.alpha.normal_()
    return op


def _one_hot_mix(op, drawn):
    """The exact ("mix") op's output with one-hot mixing weights on ``drawn``."""
    exact = _op(mode="mix", shared=op.shared_weights, in_channels=op.in_channels,
                out_channels=op.out_channels, num_groups=op.num_groups, stride=op.stride,
                groups=op.groups)  # fmt: skip
    exact.load_state_dict(op.state_dict())
    per_group = op.out_channels // op.num_groups
    one_hot = F.one_hot(drawn, len(op.candidates)).float().repeat_interleave(per_group, dim=0)
    exact.mixing_weights = lambda: one_hot
    return exact


@pytest.mark.parametrize("stride,groups", [(1, 1), (2, 1), (1, 4)])
def test_sampled_op_equals_the_exact_op_with_one_hot_weights_on_its_draw(stride, groups):
    op = _op(stride=stride, groups=groups)
    op.sample_seed, op.tau = 123, 0.5
    x = torch.randn(2, 8, 11, 13)
    drawn = op.draw()
    assert len(set(drawn.tolist())) > 1  # several candidates: the channels are reassembled
    out = op(x)
    ref = _one_hot_mix(op, drawn)(x)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_shared_weights_op_equals_the_stock_conv_at_each_single_dilation():
    op = _op(mode="mix", shared=True)
    assert [n for n, _ in op.named_parameters()] == ["weight", "alpha"]
    x = torch.randn(2, 8, 9, 9)
    for i, d in enumerate(CANDIDATES):
        drawn = torch.full((op.num_groups,), i)
        stock = F.conv2d(x, op.weight, None, 1, d, d)
        torch.testing.assert_close(_one_hot_mix(op, drawn)(x), stock, rtol=1e-5, atol=1e-5)


def test_sampled_straight_through_gradient_reaches_every_logit():
    op = _op(shared=True)
    op.sample_seed, op.tau = 7, 2.0
    x = torch.randn(2, 8, 9, 9)
    out = op(x)
    (out * torch.randn_like(out)).sum().backward()
    assert op.alpha.grad is not None and (op.alpha.grad != 0).all()
    # softmax backward: per group the gradient sums to zero over the candidates
    torch.testing.assert_close(
        op.alpha.grad.sum(dim=1), torch.zeros(op.num_groups), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("scale_mode", ["weights", "activations"])
def test_sampled_gradients_equal_the_exact_op_with_straight_through_weights(shared, scale_mode):
    # GDAS's estimator: only the drawn candidate runs, scaled by 1 + p - p.detach(); the exact op
    # with those mixing weights (0 elsewhere) must give the same weight and logit gradients
    op = _op(shared=shared, groups=1)
    op.sample_seed, op.tau, op.scale_mode = 11, 0.7, scale_mode
    x = torch.randn(2, 8, 9, 9)
    drawn = op.draw()
    assert len(set(drawn.tolist())) > 1
    ref = _one_hot_mix(op, drawn)
    per_group = op.out_channels // op.num_groups

    def straight_through():
        p = F.softmax(ref.alpha / op.tau, dim=1)
        hard = F.one_hot(drawn, len(op.candidates)).to(p.dtype)
        return (hard * (1 + p - p.detach())).repeat_interleave(per_group, dim=0)

    ref.mixing_weights = straight_through
    grad_out = torch.randn(2, op.out_channels, 9, 9)
    (op(x) * grad_out).sum().backward()
    (ref(x) * grad_out).sum().backward()
    for (name, got), (_, want) in zip(op.named_parameters(), ref.named_parameters()):
        if got.grad is None:  # a replica no group drew: no gradient at all, as the exact op's zero
            assert name.startswith("replicas.") and not want.grad.any(), name
            continue
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_sampled_draws_follow_softmax_and_are_independent_across_groups():
    # 4096 groups with the same logits, 8 seeds: 32768 draws. The seeds are fixed, so the test
    # is deterministic; the tolerance is ~8 standard deviations of a frequency.
    op = _op(in_channels=4, out_channels=4096, num_groups=4096)
    with torch.no_grad():
        op.alpha.copy_(torch.tensor([0.5, -0.3, 1.2, 0.0]).expand(4096, 4))
    op.tau = 0.7
    draws = []
    for seed in range(8):
        op.sample_seed = seed
        draws.append(op.draw())
    draws = torch.stack(draws).flatten()
    p = F.softmax(op.alpha[0].detach() / op.tau, dim=0)
    freq = torch.bincount(draws, minlength=4).double() / draws.numel()
    assert (freq - p.double()).abs().max() < 0.025, (freq, p)
    pairs = draws.view(-1, 2)  # neighbouring groups drawn jointly as independent ones would be
    joint = torch.bincount(pairs[:, 0] * 4 + pairs[:, 1], minlength=16).double() / len(pairs)
    assert (joint - torch.outer(p, p).flatten().double()).abs().max() < 0.025


def test_sampled_draws_repeat_for_a_seed_and_iteration_and_differ_otherwise(monkeypatch):
    model = torch.nn.ModuleDict({"res3": torch.nn.ModuleList([_op(), _op()])})
    schedule = SamplingSchedule(tau_start=10.0, tau_end=0.1, max_iter=11)

    def draws(step, iteration, rank=0):
        monkeypatch.setattr(comm, "get_rank", lambda: rank)
        schedule.apply(model, run_seed=5, step=step, iteration=iteration)
        return torch.cat([op.draw() for _, op in mixed_ops(model)]).tolist()

    assert draws("weight", 3) == draws("weight", 3)
    others = [draws("weight", 4), draws("arch", 3), draws("weight", 3, rank=1)]
    assert all(d != draws("weight", 3) for d in others)
    ops = [op for _, op in mixed_ops(model)]
    assert ops[0].sample_seed != ops[1].sample_seed  # blocks draw independently
    assert schedule.tau(0) == 10.0 and schedule.tau(10) == pytest.approx(0.1)
    assert schedule.tau(5) == pytest.approx(5.05)


def _mode_cfg(output_dir, mode, shared, **kw):
    cfg = search_cfg(output_dir, **kw)
    cfg.MODEL.NATS.SEARCH.MODE = mode
    cfg.MODEL.NATS.SEARCH.SHARED_WEIGHTS = shared
    return cfg


@pytest.mark.parametrize("mode,shared", [("sample", False), ("mix", True), ("sample", True)])
def test_sampled_and_shared_searches_decode_log_and_resume_exactly(tmp_path, mode, shared):
    full = build(_mode_cfg(tmp_path / "full", mode, shared, max_iter=5, warmup_iters=1,
                           checkpoint_period=2))  # fmt: skip
    full.resume_or_load(resume=False)
    before = split_state(full)
    full.train()
    after = split_state(full)
    assert changed(before[0], after[0]) == set(before[0])  # every block's logits moved
    if shared:
        assert not any(".replicas." in k for k in after[1])
    arch = load_architecture(str(tmp_path / "full" / "architecture.json"))
    assert arch.meta["iteration"] == 5 and len(arch.blocks) == 13  # the finished run's file
    assert os.path.exists(tmp_path / "full" / "architecture_heatmap.png")
    records = [json.loads(x) for x in open(tmp_path / "full" / "metrics.json")]
    assert ("search/tau" in records[-1]) == (mode == "sample")

    cfg = _mode_cfg(tmp_path / "cut", mode, shared, max_iter=5, warmup_iters=1, checkpoint_period=2)
    resumed = interrupted_and_resumed(cfg)
    (la, wa), (lb, wb) = split_state(full), split_state(resumed)
    assert not changed(la, lb) and not changed(wa, wb), "a resumed run differs"


def test_stock_checkpoint_loads_into_the_shared_weights_supernet_without_key_warnings(tmp_path):
    cfg = _mode_cfg(tmp_path, "sample", True, max_iter=1, warmup_iters=0)
    stock_cfg = cfg.clone()
    stock_cfg.MODEL.BACKBONE.NAME = "build_resnet_fpn_backbone"
    stock = build_backbone(stock_cfg)
    supernet = build_backbone(cfg)
    assert {k for k in supernet.state_dict() if not k.endswith(".alpha")} == set(stock.state_dict())
    incompatible = DetectionCheckpointer(supernet)._load_model({"model": stock.state_dict()})
    assert not incompatible.missing_keys and not incompatible.unexpected_keys
    for name, op in mixed_ops(supernet):
        torch.testing.assert_close(
            op.weight, stock.state_dict()[f"bottom_up.{name}.conv2.weight"], rtol=0, atol=0
        )


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("MODE", "gdas", r"MODEL.NATS.SEARCH.MODE must be one of \['mix', 'sample'\], got 'gdas'"),
        ("TAU", (0.1, 10.0), r"MODEL.NATS.SEARCH.TAU must be two numbers \(start, end\)"),
        ("TAU", (1.0, 0.0), r"MODEL.NATS.SEARCH.TAU must be two numbers"),
        ("SHARED_WEIGHTS", "yes", r"MODEL.NATS.SEARCH.SHARED_WEIGHTS must be True or False"),
    ],
)
def test_bad_sampled_or_shared_settings_are_refused(tmp_path, key, value, message):
    cfg = _mode_cfg(tmp_path, "sample", False, max_iter=2, warmup_iters=0)
    cfg.MODEL.NATS.SEARCH[key] = value
    with pytest.raises(ValueError, match=message):
        check_search_config(cfg)
