"""Checkpoints across Detectron2 v0.6 and main: a search written under one resumes under the
other, and either version's model_final.pth loads as MODEL.WEIGHTS in the other.

The other version runs in its own venv, named by NATS_OTHER_DETECTRON2_PYTHON (``.ci/run``'s
second leg sets it: main here, v0.6 there); without it these tests cannot run.
"""

import os
import shutil
import subprocess

import pytest
import torch
from cross_version import outputs, search, train

OTHER = os.environ.get("NATS_OTHER_DETECTRON2_PYTHON")
HERE = os.path.dirname(os.path.abspath(__file__))
pytestmark = pytest.mark.skipif(
    not OTHER,
    reason="needs a venv with the other Detectron2 (NATS_OTHER_DETECTRON2_PYTHON, which "
    ".ci/run's second leg sets)",
)


def _other(command, *args):
    proc = subprocess.run(
        [OTHER, os.path.join(HERE, "cross_version.py"), command, *map(str, args)],
        cwd=os.path.dirname(HERE),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def _state(trainer):
    return {k: v.detach().clone() for k, v in trainer._trainer._inner_model.state_dict().items()}


def test_search_checkpoint_of_the_other_version_resumes_here(tmp_path):
    _other("search-cut", tmp_path / "other")  # stopped after 3 iterations, checkpoint at 2
    shutil.copytree(tmp_path / "other", tmp_path / "here")
    resumed = search(str(tmp_path / "here"), resume=True)
    assert resumed.start_iter == 2 and resumed.iter == resumed.max_iter == 5
    ours = search(str(tmp_path / "full"))  # this version, uninterrupted
    a, b = _state(ours), _state(resumed)
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"resumed from the other version, these differ: {differ[:5]}"
    assert any(k.endswith("conv2.alpha") for k in a)
    arch = resumed._trainer.arch_optimizer.state_dict()["state"]
    assert arch and all(torch.isfinite(s["exp_avg"]).all() for s in arch.values())


def test_search_checkpoint_of_this_version_resumes_in_the_other(tmp_path):
    search(str(tmp_path / "run"), stop_at=3)
    cut = torch.load(tmp_path / "run" / "model_0000001.pth", weights_only=False)["model"]
    _other("search-resume", tmp_path / "run")
    _other("search-full", tmp_path / "full")  # the other version, uninterrupted
    a, b = (
        torch.load(tmp_path / d / "model_final.pth", weights_only=False) for d in ("full", "run")
    )
    assert a["iteration"] == b["iteration"] == 4
    differ = [k for k in a["model"] if not torch.equal(a["model"][k], b["model"][k])]
    assert not differ, f"resumed in the other version, these differ: {differ[:5]}"
    alphas = [k for k in cut if k.endswith("conv2.alpha")]
    assert alphas and any(not torch.equal(cut[k], b["model"][k]) for k in alphas)
    assert os.path.exists(tmp_path / "run" / "architecture.json")


@pytest.mark.parametrize("writer", ["here", "other"])
def test_model_final_loads_as_weights_in_the_other_version(tmp_path, writer):
    folder = tmp_path / "train"
    if writer == "other":
        _other("train", folder)
        weights = str(folder / "model_final.pth")
        _other("outputs", tmp_path, weights)
        expected = torch.load(tmp_path / "outputs.pth")
        got = outputs(weights)
    else:
        weights = train(str(folder))
        expected = outputs(weights)
        _other("outputs", tmp_path, weights)
        got = torch.load(tmp_path / "outputs.pth")
    assert expected.keys() == got.keys()
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=0, atol=0)
