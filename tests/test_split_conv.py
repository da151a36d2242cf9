"""The split conv's CPU inference path: one oneDNN-blocked input shared by the genotypes' convs,
the same outputs as the plain path, and the plain path wherever the shared one must not run."""

import pytest
import torch
import torch.nn.functional as F
from detectron2.layers import FrozenBatchNorm2d

from projects.nats.modeling import split_conv
from projects.nats.modeling.split_conv import SplitDilationConv, onednn_shared_input_supported

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
    assert onednn_shared_input_supported()  # probed before the spy: its calls are not counted
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


@pytest.mark.parametrize("splits", [[((2, 2), 56)], [((1, 1), 24), ((3, 1), 32)]])
def test_one_or_two_genotypes_run_plain_convs(onednn_calls, splits):
    # the blocked copy's conversions cost more than they save below three sub-convs
    conv = _conv(splits=splits)
    x = torch.randn(2, 32, 13, 11)
    with torch.no_grad():
        plain = conv(x)
        assert onednn_calls == []
        conv.min_pieces_to_share = 1
        shared = conv(x)
        assert onednn_calls == [True] * (1 + len(splits))
    torch.testing.assert_close(shared, plain, rtol=1e-6, atol=1e-6)


def _mkldnn_missing(monkeypatch):
    monkeypatch.delattr(torch, "mkldnn_convolution")


def _mkldnn_other_signature(monkeypatch):
    def conv(input, weight, bias, padding, stride, dilation, groups, extra):
        raise AssertionError("not called with this signature")

    monkeypatch.setattr(torch, "mkldnn_convolution", conv)


def _mkldnn_other_meaning(monkeypatch):  # same signature, arguments read in another order
    original = torch.mkldnn_convolution
    monkeypatch.setattr(
        torch,
        "mkldnn_convolution",
        lambda x, w, b, padding, stride, dilation, groups: original(
            x, w, b, stride, padding, dilation, groups
        ),
    )


@pytest.mark.parametrize(
    "change", [_mkldnn_missing, _mkldnn_other_signature, _mkldnn_other_meaning]
)
def test_a_pytorch_without_the_op_falls_back_to_plain_convs(monkeypatch, caplog, change):
    conv = _conv()
    x = torch.randn(2, 32, 13, 11)
    conv.share_blocked_input = False
    with torch.no_grad():
        plain = conv(x)
    conv.share_blocked_input = True
    change(monkeypatch)
    onednn_shared_input_supported.cache_clear()
    try:
        with caplog.at_level("INFO", logger=split_conv.__name__), torch.no_grad():
            outs = [conv(x), conv(x)]  # probed once, logged once
        assert not onednn_shared_input_supported()
        assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
        assert "plain convs" in caplog.records[0].getMessage()
        for out in outs:
            torch.testing.assert_close(out, plain, rtol=0, atol=0)
    finally:
        monkeypatch.undo()
        onednn_shared_input_supported.cache_clear()
    assert onednn_shared_input_supported()  # this PyTorch has it: the shared path is back
