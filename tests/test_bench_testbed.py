"""The test-bed benchmarks: run folders of quick runs, the diagnosis' norm count, --help."""

import os
import subprocess
import sys

import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "benchmarks"), os.path.join(ROOT, "scripts")]

from bench_search_diagnosis import updating_norms  # noqa: E402
from bench_search_validation import output_dirs  # noqa: E402


def test_quick_runs_never_share_run_folders_with_full_runs():
    full = output_dirs(quick=False)
    quick = output_dirs(quick=True)
    assert full == ("output/search_validation", "output/fixed_architectures")
    assert quick == (
        "output/search_validation_quick",
        "output/search_validation_quick/fixed_architectures",
    )
    assert not set(full) & set(quick)
    assert output_dirs(quick=True, output="a", calibration_output="b") == ("a", "b")
    assert output_dirs(quick=True, output="a") == ("a", os.path.join("a", "fixed_architectures"))


def test_updating_norms_counts_batchnorm_but_not_frozen_batchnorm():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        FrozenBatchNorm2d(4),
        torch.nn.BatchNorm2d(4),
        torch.nn.SyncBatchNorm(4),
        torch.nn.BatchNorm2d(4, track_running_stats=False),
    )
    assert updating_norms(model) == 2
    assert updating_norms(torch.nn.Sequential(FrozenBatchNorm2d(4))) == 0


@pytest.mark.parametrize(
    "script", ["bench_fixed_architectures", "bench_search_validation", "bench_search_diagnosis"]
)
def test_testbed_benches_print_help(script):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", f"{script}.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "--seeds" in out.stdout and "--json" in out.stdout
