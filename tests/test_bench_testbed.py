"""The test-bed benchmarks: run folders of quick runs, the diagnosis' norm count, --help."""

import json
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


def _run_dir(tmp_path, tested, row):
    (tmp_path / "config.yaml").write_text(f"DATASETS:\n  TEST: {list(tested)}\n")
    (tmp_path / "metrics.json").write_text(json.dumps({"iteration": 1}) + "\n" + json.dumps(row))
    return os.fspath(tmp_path)


def test_eval_metrics_reads_one_dataset_of_a_run_that_tested_two_or_one(tmp_path):
    from bench_fixed_architectures import KEYS, eval_metrics

    two = {f"{d}/bbox/{k}": v for d, v in (("a_dev", 1.0), ("a_val", 2.0)) for k in KEYS}
    (tmp_path / "two").mkdir()
    run = _run_dir(tmp_path / "two", ["a_dev", "a_val"], two)
    assert eval_metrics(run, ["a_dev"])["a_dev"]["AP"] == 1.0
    assert eval_metrics(run, ["a_dev", "a_val"])["a_val"]["AP"] == 2.0
    (tmp_path / "one").mkdir()
    run = _run_dir(tmp_path / "one", ["a_val"], {f"bbox/{k}": 3.0 for k in KEYS})
    assert eval_metrics(run, ["a_val"])["a_val"]["AP"] == 3.0
    with pytest.raises(RuntimeError, match=r"no bbox evaluation of a_dev \(tested: \['a_val'\]\)"):
        eval_metrics(run, ["a_dev"])  # never the other dataset's numbers
