"""Atomic writes: a write that fails leaves the previous file; checkpoints and their tag too."""

import os

import pytest
import torch

from projects.nats.atomic import atomic_open
from projects.nats.checkpoint import NATSCheckpointer


def test_atomic_open_replaces_the_file_only_on_success(tmp_path):
    path = tmp_path / "sub" / "f.txt"
    with atomic_open(path) as f:
        f.write("one")
    assert path.read_text() == "one"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual mode, not mkstemp's 0600
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_open(path) as f:
            f.write("two, half written")
            raise RuntimeError("disk full")
    assert path.read_text() == "one"
    assert os.listdir(path.parent) == ["f.txt"]  # no temporary file left behind
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb'"):
        with atomic_open(path, "a"):
            pass


def test_checkpoint_killed_while_saving_keeps_the_previous_one(tmp_path, monkeypatch):
    model = torch.nn.Linear(3, 2)
    checkpointer = NATSCheckpointer(model, str(tmp_path))
    checkpointer.save("model_0000009", iteration=9)
    first = (tmp_path / "model_0000009.pth").read_bytes()

    def dying_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("killed")

    monkeypatch.setattr(torch, "save", dying_save)
    for name in ("model_0000009", "model_0000019"):  # overwrite, and a new one
        with pytest.raises(OSError, match="killed"):
            checkpointer.save(name, iteration=19)
    monkeypatch.undo()
    assert (tmp_path / "model_0000009.pth").read_bytes() == first
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000009.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000009.pth"

    fresh = torch.nn.Linear(3, 2)
    extra = NATSCheckpointer(fresh, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 9 and torch.equal(fresh.weight, model.weight)
