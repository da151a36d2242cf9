"""The split conv's CPU inference path: one oneDNN-blocked input shared by the genotypes' convs,
the same outputs as the plain path, and the plain path wherever the shared one must not run."""

import pytest
import torch
import torch.nn.functional as F
from detectron2.layers import FrozenBatchNorm2d

from projects.nats.modeling.split_conv import SplitDilationConv

pytestmark = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="the shared blocked input is oneDNN's (CPU)"
)
SPLITS = [((1, 1), 8), ((2, 3), 24), ((5, 1), 8), ((3, 3), 16)]


def _conv(*, stride=1, groups=1, splits=SPLITS):
    torch.manual_seed(0)
    norm = FrozenBatchNorm2d(56)
    norm.weight.uniform_(0.5, 2.0)
    norm.bias.normal_()
    return SplitDilationConv(
        in_channels=32, out_channels=56, splits=splits, stride=stride, groups=groups, norm=norm
    )


@pytest.fixture
def onednn_calls(monkeypatch):
    """Counts ``torch.mkldnn_convolution`` calls (the shared path's only convs)."""
    calls = []
    original = torch.mkldnn_convolution

    def spy(*args):
        calls.append(args[0].is_mkldnn)
        return original(*args)

    monkeypatch.setattr(torch, "mkldnn_convolution", spy)
    return calls


@pytest.mark.parametrize("stride", [1, 2])
def test_inference_shares_one_blocked_input_with_plain_results(onednn_calls, stride):
    conv = _conv(stride=stride)
    x = torch.randn(2, 32, 13, 11)
    with torch.no_grad():
        shared = conv(x)
        # one identity conv into oneDNN's layout, then one conv per genotype, all on it
        assert onednn_calls == [True] * (1 + len(SPLITS))
        conv.share_blocked_input = False
        plain = conv(x)
        assert len(onednn_calls) == 1 + len(SPLITS)
    torch.testing.assert_close(shared, plain, rtol=1e-6, atol=1e-6)
    expected, start = [], 0
    for d, c in SPLITS:  # genotype g: its slice of the full conv with dilation g, then the norm
        expected.append(F.conv2d(x, conv.weight, None, stride, d, d)[:, start : start + c])
        start += c
    with torch.no_grad():
        torch.testing.assert_close(shared, conv.norm(torch.cat(expected, 1)), rtol=1e-5, atol=1e-5)


def test_training_tracing_and_resnext_use_plain_convs(onednn_calls):
    conv = _conv()
    x = torch.randn(1, 32, 9, 9)
    conv(x).sum().backward()  # autograd: the weight gets its gradient through F.conv2d
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    with torch.no_grad():
        traced = torch.jit.trace(conv, x, check_trace=False)  # the check reruns it untraced
        conv(x.contiguous(memory_format=torch.channels_last))  # oneDNN reads NHWC as it is
        _conv(groups=4, splits=[((1, 1), 24), ((3, 3), 32)])(x)  # slices of conv groups
    assert onednn_calls == []
    graph = str(traced.graph)
    assert "aten::_convolution" in graph and "mkldnn" not in graph  # what fvcore counts
    torch.testing.assert_close(traced(x), conv(x).detach())
