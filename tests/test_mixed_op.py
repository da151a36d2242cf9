"""The mixed op (modeling/mixed_op.py, eq. 2-3): the weighted sum of dilated convs, and gradients
to every logit and replica."""

import pytest
import torch
import torch.nn.functional as F

from projects.nats.config import SETTING_C_RES5
from projects.nats.modeling.mixed_op import MixedDilationConv


@pytest.mark.parametrize("scale_mode", ["weights", "activations", "auto"])
def test_mixed_op_equals_weighted_sum_of_convs(scale_mode, monkeypatch):
    torch.manual_seed(0)
    monkeypatch.setattr(MixedDilationConv, "scale_mode", scale_mode)
    cands = [(1, 1), (2, 2), (1, 3), (3, 1)]
    op = MixedDilationConv(6, 8, candidates=cands, num_groups=4, stride=2, groups=2)
    with torch.no_grad():
        op.alpha.normal_(0, 2)
    x = torch.randn(2, 6, 11, 13)
    weights = op.candidate_weights()
    assert op.weight is weights[0] and set(op.replicas.keys()) == {"2x2", "1x3", "3x1"}
    probs = torch.softmax(op.alpha, dim=1)  # [4, 4]: group i, candidate g
    expected = torch.zeros(2, 8, 6, 7)
    for g, d in enumerate(cands):
        y = F.conv2d(x, weights[g], None, 2, d, d, 2)
        for i in range(4):
            expected[:, 2 * i : 2 * i + 2] += probs[i, g] * y[:, 2 * i : 2 * i + 2]
    torch.testing.assert_close(op(x), expected, rtol=1e-5, atol=1e-5)
    target = torch.randn_like(expected)  # and the same gradients as the explicit sum
    params = [op.alpha] + weights
    got = torch.autograd.grad((op(x) * target).sum(), params)
    ref = torch.autograd.grad((expected * target).sum(), params)
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scale_mode", ["weights", "activations"])
def test_gradients_reach_every_logit_and_replica(scale_mode, monkeypatch):
    torch.manual_seed(1)
    monkeypatch.setattr(MixedDilationConv, "scale_mode", scale_mode)
    op = MixedDilationConv(4, 8, candidates=SETTING_C_RES5, num_groups=8, norm=None)
    with torch.no_grad():
        op.alpha.normal_()
    (op(torch.randn(1, 4, 9, 9)) ** 2).sum().backward()
    assert op.alpha.grad.shape == (8, len(SETTING_C_RES5))
    assert (op.alpha.grad != 0).all()
    for w in op.candidate_weights():
        assert w.grad is not None and w.grad.abs().sum() > 0
