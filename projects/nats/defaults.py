"""The NATS config keys: ``add_nats_config(cfg)`` adds them (all under ``MODEL.NATS``) after
``get_cfg()``. The checks of a config live in ``config.py`` and ``preflight.py``, which both read
this module; neither imports the other's module at import time or later."""

from detectron2.config import CfgNode as CN

__all__ = [
    "add_nats_config",
    "SETTING_C_RES34",
    "SETTING_C_RES5",
    "SUPERNET_BACKBONES",
    "DECODED_BACKBONES",
]

# The registered backbone builders (modeling/): search supernets and decoded networks.
SUPERNET_BACKBONES = (
    "build_nats_supernet_resnet_backbone",
    "build_nats_supernet_resnet_fpn_backbone",
    "build_nats_supernet_retinanet_resnet_fpn_backbone",
)
DECODED_BACKBONES = (
    "build_nats_resnet_backbone",
    "build_nats_resnet_fpn_backbone",
    "build_nats_retinanet_resnet_fpn_backbone",
)
# The paper's genotype setting C (Table 5): dilations (dh, dw) for res3/res4 and for res5.
SETTING_C_RES34 = [[1, 1], [2, 2], [3, 3], [1, 3], [3, 1]]
SETTING_C_RES5 = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 5], [1, 3], [3, 1], [1, 5], [5, 1]]


def add_nats_config(cfg):
    """Add the NATS keys (search space, decoded architecture, search schedule) to ``cfg``.

    Every key goes under ``MODEL.NATS``; the comments in this function describe each.

    Args:
        cfg (CfgNode): a Detectron2 config (from ``get_cfg()``), not frozen; modified in place.
    """
    _C = cfg
    _C.MODEL.NATS = CN()
    # Stages whose bottleneck 3x3 convs are searched (paper: res3, res4, res5).
    _C.MODEL.NATS.STAGES = ["res3", "res4", "res5"]
    # Dilation candidates (dh, dw) per stage, in the order of the architecture logits.
    _C.MODEL.NATS.CANDIDATES = CN()
    # res2 candidates, used only when "res2" is in STAGES.
    _C.MODEL.NATS.CANDIDATES.RES2 = [list(d) for d in SETTING_C_RES34]
    # res3 candidates (default: setting C, {1, 2, 3, (1,3), (3,1)}).
    _C.MODEL.NATS.CANDIDATES.RES3 = [list(d) for d in SETTING_C_RES34]
    # res4 candidates (default: setting C, {1, 2, 3, (1,3), (3,1)}).
    _C.MODEL.NATS.CANDIDATES.RES4 = [list(d) for d in SETTING_C_RES34]
    # res5 candidates (default: setting C, {1..5, (1,3), (3,1), (1,5), (5,1)}).
    _C.MODEL.NATS.CANDIDATES.RES5 = [list(d) for d in SETTING_C_RES5]
    # How a searched conv's output channels are divided into groups with their own logits.
    _C.MODEL.NATS.GROUPS = CN()
    # "count": VALUE groups per block (paper default 16; 1 = path-level search);
    # "channels": VALUE channels per group (Table 3), so the group count varies by block.
    _C.MODEL.NATS.GROUPS.MODE = "count"
    # The number of groups ("count") or of channels per group ("channels").
    _C.MODEL.NATS.GROUPS.VALUE = 16
    # Decoded network: path of the architecture.json written by search_net.py.
    _C.MODEL.NATS.ARCHITECTURE = ""
    # The search config (configs/NATS-Search/...) whose run writes ARCHITECTURE; named in the error.
    _C.MODEL.NATS.ARCHITECTURE_SEARCH_CONFIG = ""
    # How search_net.py and the random control decode the logits into architecture.json.
    _C.MODEL.NATS.DECODE = CN()
    # Make every genotype's channels a multiple of this (e.g. 16 for oneDNN on CPU, 8 for GPU
    # tensor cores) by largest remainders, keeping each block's width; 1 = the paper's eq. 4-6
    # exactly. Must divide every searched stage's 3x3 width.
    _C.MODEL.NATS.DECODE.ALIGN_CHANNELS = 1
    # The most genotypes a block keeps; the groups of the smallest are folded into the kept
    # genotype their logits rank highest. 0 = no cap.
    _C.MODEL.NATS.DECODE.MAX_GENOTYPES = 0
    # Architecture search (search_net.py).
    _C.MODEL.NATS.SEARCH = CN()
    # --- SEARCH keys: owned by the search issue ---
    # Search length in epochs (paper: 25); an epoch is the weight split's images after
    # Detectron2's filtering divided by SOLVER.IMS_PER_BATCH. 0 = use SOLVER.MAX_ITER instead;
    # a positive value needs SOLVER.MAX_ITER = 0 (or the same number of iterations).
    _C.MODEL.NATS.SEARCH.EPOCHS = 25
    # Epochs of weight steps only before the first architecture step (paper: 10), with EPOCHS > 0.
    _C.MODEL.NATS.SEARCH.WARMUP_EPOCHS = 10
    # Iterations without architecture steps when EPOCHS = 0 (schedule given in iterations).
    _C.MODEL.NATS.SEARCH.WARMUP_ITERS = 0
    # Final LR of the weights' cosine schedule (from SOLVER.BASE_LR), in SOLVER.BASE_LR's units:
    # per batch of SOLVER.IMS_PER_BATCH images. The paper's 0.00125 -> 0.00005 are read as per
    # image (as its retraining LR is), i.e. BASE_LR 0.01 -> 0.0004 for its 8 images per batch.
    _C.MODEL.NATS.SEARCH.BASE_LR_END = 0.0004
    # Period (iterations) of the architecture log: intensities I^g and group entropy per block.
    _C.MODEL.NATS.SEARCH.LOG_PERIOD = 20
    # Update the mixed ops' conv weights with SGD inside the backward, freeing each gradient at
    # once (less peak memory, same results); used only where gradients are final as they
    # accumulate: one process, no AMP, no gradient clipping.
    _C.MODEL.NATS.SEARCH.FUSED_WEIGHT_UPDATE = True
    # How the mixed ops run: "mix" (the paper: every candidate, mixed by softmax(alpha)) or
    # "sample" (GDAS-style: each channel group runs only the candidate it draws from
    # softmax(alpha / tau), straight-through gradients to alpha; costs what the decoded net costs).
    _C.MODEL.NATS.SEARCH.MODE = "mix"
    # "sample" mode temperature (start, end), linear over the search iterations (GDAS: 10, 0.1).
    _C.MODEL.NATS.SEARCH.TAU = (10.0, 0.1)
    # One 3x3 weight per searched conv, used at every dilation (RF-Next style): the supernet has
    # exactly the stock parameters; False: one weight per candidate (the paper).
    _C.MODEL.NATS.SEARCH.SHARED_WEIGHTS = False
    # The architecture split and the architecture optimizer (Adam over the logits only).
    _C.MODEL.NATS.SEARCH.ARCH = CN()
    # Datasets of the architecture split (paper: coco_2014_valminusminival). Empty = split
    # DATASETS.TRAIN by MODEL.NATS.SEARCH.SPLIT instead.
    _C.MODEL.NATS.SEARCH.ARCH.DATASETS = ()
    # Images per architecture step over all GPUs (like SOLVER.IMS_PER_BATCH for weight steps).
    _C.MODEL.NATS.SEARCH.ARCH.IMS_PER_BATCH = 8
    # Adam learning rate of the logits (paper: 0.01), constant over the search.
    _C.MODEL.NATS.SEARCH.ARCH.BASE_LR = 0.01
    # Adam weight decay of the logits (paper: 0.00001).
    _C.MODEL.NATS.SEARCH.ARCH.WEIGHT_DECAY = 1e-5
    # Adam betas (not stated by the paper; PyTorch's defaults).
    _C.MODEL.NATS.SEARCH.ARCH.BETAS = (0.9, 0.999)
    # Split of DATASETS.TRAIN into weight and architecture parts, used when ARCH.DATASETS is
    # empty: by a hash of (image_id, SEED), so stable across runs and machines.
    _C.MODEL.NATS.SEARCH.SPLIT = CN()
    # Share of the (filtered) DATASETS.TRAIN images that go to the architecture split, in (0, 1).
    _C.MODEL.NATS.SEARCH.SPLIT.FRACTION = 0.3
    # Seed of the split's hash; changing it draws a different (still deterministic) split.
    _C.MODEL.NATS.SEARCH.SPLIT.SEED = 0
    # Effective receptive fields measured during training (train_net.py, search_net.py).
    _C.MODEL.NATS.ERF = CN()
    # Measure every PERIOD iterations on rank 0, into TensorBoard and metrics.json; 0 = off.
    _C.MODEL.NATS.ERF.PERIOD = 0
    # ResNet stages (res2-res5) and FPN levels (p2-p7) to measure; empty = every map the
    # backbone has.
    _C.MODEL.NATS.ERF.FEATURES = []
    # (H, W) in pixels of the all-ones input the ERFs are measured on.
    _C.MODEL.NATS.ERF.INPUT_SIZE = (512, 512)
