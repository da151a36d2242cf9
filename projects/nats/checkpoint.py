"""Checkpoint loading: Detectron2's formats plus torchvision ImageNet ResNet/ResNeXt state dicts.

Detectron2 converts torchvision names only in a tools/ script; :class:`NATSCheckpointer` does it
at load time, so ``MODEL.WEIGHTS`` may name torchvision's ``resnet50-*.pth`` directly. It also
writes checkpoints and the ``last_checkpoint`` tag atomically, so a run killed while saving
leaves the previous checkpoint to resume from, not a truncated one. Each checkpoint it writes
records what the model is (``"nats"``: a supernet's search space, a decoded network's
architecture fingerprint; ``fingerprint.py``), and one that does not fit the model it is loaded
into (``MODEL.WEIGHTS``, ``--eval-only``, ``--resume``) is refused before anything is loaded.
Torchvision weights expect RGB input and torchvision's normalization, and put the stride in
the 3x3 conv: ``INPUT.FORMAT "RGB"``, ``MODEL.PIXEL_MEAN [123.675, 116.28, 103.53]``,
``MODEL.PIXEL_STD [58.395, 57.12, 57.375]``, ``MODEL.RESNETS.STRIDE_IN_1X1 False``.
"""

import re

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils.file_io import PathManager

from .atomic import atomic_open
from .fingerprint import CHECKPOINT_KEY, check_checkpoint_fits, describe_model

__all__ = ["NATSCheckpointer", "is_torchvision_resnet", "convert_torchvision_resnet"]

_BLOCK = re.compile(r"^layer(\d)\.(\d+)\.(.+)$")
_BLOCK_PARTS = {"downsample.0": "shortcut", "downsample.1": "shortcut.norm"}


def is_torchvision_resnet(state_dict):
    """Whether ``state_dict`` uses torchvision's ResNet names (``layer1.0.conv1.weight``...).

    Args:
        state_dict (dict): a model state dict (name -> tensor).

    Returns:
        bool: True when it has both ``conv1.weight`` and ``layer1.0.conv1.weight``.
    """
    return "layer1.0.conv1.weight" in state_dict and "conv1.weight" in state_dict


def _rename(key):
    if key.startswith("fc.") or key.endswith("num_batches_tracked"):
        return None
    if key == "conv1.weight":
        return "stem.conv1.weight"
    if key.startswith("bn1."):
        return "stem.conv1.norm." + key[len("bn1.") :]
    m = _BLOCK.match(key)
    if m is None:
        raise KeyError(f"torchvision ResNet checkpoint: unexpected key '{key}'")
    stage, index, rest = int(m.group(1)) + 1, m.group(2), m.group(3)
    for old, new in _BLOCK_PARTS.items():
        if rest.startswith(old + "."):
            rest = new + rest[len(old) :]
            break
    else:
        rest = re.sub(r"^bn(\d)\.", r"conv\1.norm.", rest)
    return f"res{stage}.{index}.{rest}"


def convert_torchvision_resnet(state_dict):
    """Rename a torchvision ResNet/ResNeXt state dict to Detectron2's ResNet names; drop ``fc``.

    ``conv1``/``bn1`` become ``stem.conv1``/``stem.conv1.norm``; ``layer<k>.<i>.`` becomes
    ``res<k+1>.<i>.``, with ``bn<j>`` -> ``conv<j>.norm`` and ``downsample.0``/``downsample.1``
    -> ``shortcut``/``shortcut.norm``. ``fc.*`` and ``num_batches_tracked`` entries are dropped.

    Args:
        state_dict (dict): a torchvision ResNet/ResNeXt state dict (name -> tensor).

    Returns:
        dict: the same tensors under Detectron2's names.

    Raises:
        KeyError: for a key that is not one of a torchvision ResNet.
    """
    out = {}
    for key, value in state_dict.items():
        new = _rename(key)
        if new is not None:
            out[new] = value
    return out


class _AtomicWritesPathManager:
    """Detectron2's ``PathManager``, except that files opened for writing appear atomically."""

    def __getattr__(self, name):
        return getattr(PathManager, name)

    def open(self, path, mode="r", **kwargs):
        if mode in ("w", "wb"):
            return atomic_open(path, mode)
        return PathManager.open(path, mode, **kwargs)


class NATSCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` that also reads torchvision ResNet ``.pth`` files, writes its
    files (checkpoints, ``last_checkpoint``) atomically with what the model is under ``"nats"``,
    and refuses a checkpoint trained for another network (:func:`check_checkpoint_fits`)."""

    def __init__(self, model, save_dir="", **kwargs):
        """
        Args:
            model (nn.Module): the model whose state is saved and loaded.
            save_dir (str): the folder that checkpoints and ``last_checkpoint`` are written to.
            kwargs: passed to ``DetectionCheckpointer``: ``save_to_disk`` and the other objects
                to checkpoint with the model (e.g. ``trainer``, ``optimizer``).
        """
        super().__init__(model, save_dir, **kwargs)
        self.path_manager = _AtomicWritesPathManager()  # fvcore's save() writes through it

    def save(self, name, **kwargs):
        """Save as ``DetectionCheckpointer.save``, with ``describe_model(model)`` under ``"nats"``.

        Args:
            name (str): the file's name, without ``.pth``.
            kwargs: further data to save (e.g. ``iteration``).
        """
        kwargs.setdefault(CHECKPOINT_KEY, describe_model(self.model))
        super().save(name, **kwargs)

    def _load_file(self, filename):
        loaded = super()._load_file(filename)
        model = loaded.get("model")
        if isinstance(model, dict) and is_torchvision_resnet(model):
            self.logger.info(f"Converting torchvision ResNet names of {filename}")
            return {
                "model": convert_torchvision_resnet(model),
                "__author__": "torchvision",
                "matching_heuristics": True,  # backbone keys are matched by suffix
            }
        check_checkpoint_fits(loaded, self.model, path=filename)  # before any state is loaded
        return loaded
