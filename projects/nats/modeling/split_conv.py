"""The decoded 3x3 conv: one stock-shaped weight, split by output channels into dilated sub-convs.

Genotype ``g`` (kept in the architecture file's order) owns the output channels
``[o_g, o_g + C_g)`` of the stock weight ``W`` (``C_out x C_in/groups x 3 x 3``): the paper's
decomposition of ``W`` into ``{C_g x C_in x 3 x 3}`` (sec. 3.4) without changing ``W``'s key or
shape, so stock checkpoints load unchanged and parameters and FLOPs equal the stock conv's.

On CPU, ``torch.nn.functional.conv2d`` hands oneDNN an NCHW input, which oneDNN first copies into
its channel-blocked layout: once per call, so once per genotype. In inference the slices instead
share one blocked copy of the input: the same convs, with outputs equal up to float rounding (on
R50's searched convs, bit for bit). That path calls ``torch.mkldnn_convolution``, which is not
public PyTorch API: :func:`onednn_shared_input_supported` probes it once, and where it is missing
or behaves otherwise the plain convs run instead (logged once).
"""

import functools
import logging
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d

__all__ = ["SplitDilationConv", "split_pieces", "onednn_shared_input_supported"]

logger = logging.getLogger(__name__)

# One sub-conv: output channels [o0, o1), input channels [i0, i1), conv groups, dilation (dh, dw).
Piece = Tuple[int, int, int, int, int, Tuple[int, int]]


def split_pieces(splits, *, in_channels, out_channels, groups=1) -> List[Piece]:
    """Cut ``[(dilation, channels), ...]`` (consecutive output slices) into grouped-conv pieces.

    With ``groups > 1`` (ResNeXt) a slice covers whole conv groups with one grouped conv; a part
    of a conv group at either end of a slice gets its own conv over that group's inputs.

    Args:
        splits: ``[((dh, dw), channels), ...]``: consecutive output slices from channel 0, in
            genotype order; the channels must sum to ``out_channels``.
        in_channels (int): input channels of the conv.
        out_channels (int): output channels of the conv.
        groups (int): the conv's groups; 1: one conv over all inputs per slice.

    Returns:
        list[Piece]: ``(o0, o1, i0, i1, conv_groups, (dh, dw))`` per sub-conv, in output channel
        order: output channels ``[o0, o1)`` of the weight, input channels ``[i0, i1)``.

    Raises:
        ValueError: if the slices' channels do not sum to ``out_channels``.
    """
    if sum(c for _, c in splits) != out_channels:
        raise ValueError(
            f"the genotypes' channels {[c for _, c in splits]} must sum to out_channels "
            f"{out_channels}"
        )
    w_out, w_in = out_channels // groups, in_channels // groups
    pieces, start = [], 0
    for dilation, channels in splits:
        dilation = tuple(int(d) for d in dilation)
        end = start + channels
        cuts = sorted({start, end} | set(range(-(-start // w_out) * w_out, end, w_out)))
        run = None  # consecutive whole conv groups are merged into one grouped conv
        for a, b in zip(cuts[:-1], cuts[1:]):
            k = a // w_out
            whole = b - a == w_out
            if whole and run is not None:
                run[1], run[3], run[4] = b, (k + 1) * w_in, run[4] + 1
                continue
            if run is not None:
                pieces.append(tuple(run) + (dilation,))
                run = None
            if whole:
                run = [a, b, k * w_in, (k + 1) * w_in, 1]
            else:
                pieces.append((a, b, k * w_in, (k + 1) * w_in, 1, dilation))
        if run is not None:
            pieces.append(tuple(run) + (dilation,))
        start = end
    return pieces


def _blocked_convs(x, weights_and_dilations, stride):
    """The shared path's convs: ``x`` into oneDNN's blocked layout once (an identity depthwise
    conv), then one conv per ``(weight, dilation)`` on it; outputs back to NCHW."""
    c = x.shape[1]
    blocked = torch.mkldnn_convolution(
        x.to_mkldnn(), x.new_ones(c, 1, 1, 1), None, (0, 0), (1, 1), (1, 1), c
    )
    return [
        torch.mkldnn_convolution(blocked, w, None, dilation, stride, dilation, 1).to_dense()
        for w, dilation in weights_and_dilations
    ]


@functools.lru_cache(maxsize=None)
def onednn_shared_input_supported() -> bool:
    """Whether this PyTorch's ``torch.mkldnn_convolution`` (not public API) exists and computes,
    called as the shared path calls it, what ``F.conv2d`` computes. Probed once; False is logged
    once, and every split conv then runs its plain convs."""
    try:
        g = torch.Generator().manual_seed(0)
        x, w = torch.randn(1, 16, 7, 6, generator=g), torch.randn(16, 16, 3, 3, generator=g)
        pieces = [(w[:8], (1, 1)), (w[8:], (2, 3))]
        got = torch.cat(_blocked_convs(x, pieces, (1, 1)), dim=1)
        want = torch.cat([F.conv2d(x, p, None, 1, d, d) for p, d in pieces], dim=1)
        if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-4, atol=1e-4):
            raise RuntimeError("its result differs from F.conv2d's")
    except Exception as e:  # noqa: BLE001 - any failure means: use the plain convs
        logger.info(
            f"Split convs use plain convs in CPU inference: torch.mkldnn_convolution is not usable "
            f"in this PyTorch {torch.__version__} ({type(e).__name__}: {e})"
        )
        return False
    return True


class SplitDilationConv(Conv2d):
    """A 3x3 ``Conv2d`` whose output channel slices use different dilations, then its norm.

    Holds the stock ``weight`` (and ``norm``) only; ``forward`` concatenates the slices'
    outputs in channel order, so nothing is permuted at run time.
    """

    # CPU inference: the slices read one oneDNN-blocked copy of the input (False: never).
    share_blocked_input = True
    # ... when there are at least this many sub-convs; with fewer, the blocked copy's two
    # conversions cost more than the plain convs' own (benchmarks/bench_dilated_conv.py)
    min_pieces_to_share = 3

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        splits: Sequence[Tuple[Tuple[int, int], int]],
        stride=1,
        groups: int = 1,
        norm=None,
        activation=None,
    ):
        """
        The weight is a new parameter of the stock shape; :meth:`from_conv` shares a conv's.

        Args:
            in_channels (int): input channels.
            out_channels (int): output channels.
            splits: ``[((dh, dw), channels), ...]``: consecutive output channel slices from
                channel 0 and their dilations; the channels must sum to ``out_channels``.
            stride (int or tuple[int, int]): the conv's stride.
            groups (int): conv groups (``MODEL.RESNETS.NUM_GROUPS``; > 1 for ResNeXt).
            norm (nn.Module or None): applied to the concatenated slices.
            activation (callable or None): applied after the norm.
        """
        super().__init__(
            in_channels,
            out_channels,
            kernel_size=3,
            stride=stride,
            padding=1,
            bias=False,
            groups=groups,
            norm=norm,
            activation=activation,
        )
        self.splits = [(tuple(d), int(c)) for d, c in splits]
        self.pieces = split_pieces(
            self.splits, in_channels=in_channels, out_channels=out_channels, groups=groups
        )

    @classmethod
    def from_conv(cls, conv: Conv2d, splits):
        """Replace a stock 3x3 ``conv``, sharing its weight parameter and norm module.

        Args:
            conv (detectron2.layers.Conv2d): the stock 3x3 conv (e.g. a bottleneck's ``conv2``);
                its channels, stride, groups, norm and activation are taken over.
            splits: ``[((dh, dw), channels), ...]``, as in ``__init__``.

        Returns:
            SplitDilationConv: holding ``conv.weight`` itself, not a copy.
        """
        new = cls(
            in_channels=conv.in_channels,
            out_channels=conv.out_channels,
            splits=splits,
            stride=conv.stride,
            groups=conv.groups,
            norm=conv.norm,
            activation=conv.activation,
        )
        new.weight = conv.weight
        return new

    def forward(self, x):
        """Each slice's dilated conv of ``x``, concatenated in channel order; norm, activation.

        Args:
            x (Tensor): [N, in_channels, H, W].

        Returns:
            Tensor: [N, out_channels, H', W'], the stock 3x3 conv's output size.
        """
        if self._shares_blocked_input(x):
            outs = self._slices_on_blocked_input(x)
        else:
            outs = []
            for o0, o1, i0, i1, groups, dilation in self.pieces:
                xi = x if (i0 == 0 and i1 == self.in_channels) else x[:, i0:i1]
                w = self.weight[o0:o1]
                outs.append(F.conv2d(xi, w, None, self.stride, dilation, dilation, groups))
        x = outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def _shares_blocked_input(self, x) -> bool:
        """CPU float32 NCHW inference through oneDNN, not traced (tracing must record stock
        convs, for fvcore and export), with whole-input slices (``groups == 1``) and at least
        ``min_pieces_to_share`` of them."""
        return (
            self.share_blocked_input
            and len(self.pieces) >= self.min_pieces_to_share
            and self.groups == 1
            and x.device.type == "cpu"
            and x.dtype == self.weight.dtype == torch.float32
            and x.is_contiguous()
            and torch.backends.mkldnn.is_available()
            and torch.backends.mkldnn.enabled
            and not torch.is_autocast_enabled("cpu")
            and not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad))
            and not torch.jit.is_tracing()
            and not torch.jit.is_scripting()
            and onednn_shared_input_supported()
        )

    def _slices_on_blocked_input(self, x):
        """Each slice's conv on one blocked copy of ``x`` (see :func:`_blocked_convs`)."""
        pieces = [(self.weight[o0:o1], dilation) for o0, o1, _, _, _, dilation in self.pieces]
        return _blocked_convs(x, pieces, self.stride)

    def extra_repr(self):
        dils = ", ".join(f"{c}@{d[0]}x{d[1]}" for d, c in self.splits)
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}, splits=[{dils}]"
