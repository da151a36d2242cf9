"""The benchmark's straightforward split conv computes what its architecture says, channel by
channel, so its timings stand for the issue's reference design."""

import os
import sys

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d, FrozenBatchNorm2d

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.bench_decoded import ReorderSplitConv  # noqa: E402
from projects.nats.architecture import BlockArchitecture, Genotype  # noqa: E402
from projects.nats.modeling.split_conv import SplitDilationConv  # noqa: E402


def test_reorder_split_conv_matches_per_channel_dilations():
    torch.manual_seed(0)
    # 4 groups of 2 channels; genotypes own non-adjacent groups, as a search leaves them.
    genotypes = (
        Genotype(dilation=(1, 1), channels=4, groups=(0, 2)),
        Genotype(dilation=(2, 3), channels=2, groups=(3,)),
        Genotype(dilation=(3, 1), channels=2, groups=(1,)),
    )
    arch = BlockArchitecture(out_channels=8, num_groups=4, genotypes=genotypes)
    norm = FrozenBatchNorm2d(8)
    norm.weight.uniform_(0.5, 2.0)
    norm.bias.normal_()
    conv = Conv2d(6, 8, kernel_size=3, padding=1, bias=False, norm=norm)
    split = SplitDilationConv.from_conv(conv, [(g.dilation, g.channels) for g in genotypes])
    reorder = ReorderSplitConv(conv=split, block_arch=arch)
    assert reorder.weight is conv.weight  # same parameters, only the channel placement differs

    x = torch.randn(2, 6, 11, 13)
    dilation_of = {2 * k + i: g.dilation for g in genotypes for k in g.groups for i in range(2)}
    expected = torch.cat(
        [
            F.conv2d(x, conv.weight[c : c + 1], None, 1, dilation_of[c], dilation_of[c])
            for c in range(8)
        ],
        dim=1,
    )
    with torch.no_grad():
        torch.testing.assert_close(reorder(x), norm(expected))
