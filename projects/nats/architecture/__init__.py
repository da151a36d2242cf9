"""What a search found: the architecture file, decoding the logits into it (paper eq. 4-6), its
picture, a random architecture of the same search space (the NAS sanity check), fixed
(hand-written) architectures of the test bed's calibration panel, and carrying
the supernet's weights over to the decoded network."""

from .carry_over import carry_over_supernet, save_carried_over
from .decode import (
    decode_architecture,
    decode_architecture_from_cfg,
    decode_block,
    realign_architecture,
)
from .file_format import (
    Architecture,
    ArchitectureError,
    BlockArchitecture,
    Genotype,
    load_architecture,
    save_architecture,
)
from .fixed_architecture import PANEL, fixed_architecture
from .heatmap import save_architecture_heatmap
from .random_architecture import random_architecture

__all__ = [
    "Architecture",
    "ArchitectureError",
    "BlockArchitecture",
    "Genotype",
    "PANEL",
    "carry_over_supernet",
    "decode_architecture",
    "decode_architecture_from_cfg",
    "decode_block",
    "fixed_architecture",
    "load_architecture",
    "random_architecture",
    "realign_architecture",
    "save_architecture",
    "save_architecture_heatmap",
    "save_carried_over",
]
