"""The main job's pipeline (scripts/pipeline.py) end to end on the test bed's configs and the small
variant's splits, at 1/8 width, 96x128 images and a few iterations: every artefact, four
evaluations (baseline, NATS, random, a fixed panel architecture) with finite AP, equal parameters
and FLOPs, the direction check, and a second run that skips the completed stages; and the main
job's choice of variant from a calibration."""

import json
import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from demo import variant_overrides  # noqa: E402
from pipeline import (  # noqa: E402
    AP_KEYS,
    FIXED,
    TESTBED_CONFIGS,
    main_job_choice,
    run_pipeline,
    summary_markdown,
)

TINY = [
    "MODEL.RESNETS.STEM_OUT_CHANNELS", "16",
    "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
    "MODEL.RESNETS.WIDTH_PER_GROUP", "8",
    "MODEL.FPN.OUT_CHANNELS", "32",
    "MODEL.RPN.PRE_NMS_TOPK_TEST", "100",
    "MODEL.RPN.POST_NMS_TOPK_TEST", "50",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", "32",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST", "0.0",
    "MODEL.ROI_BOX_HEAD.FC_DIM", "32",
    "INPUT.MIN_SIZE_TRAIN", "(96,)",
    "INPUT.MAX_SIZE_TRAIN", "128",
    "INPUT.MIN_SIZE_TEST", "96",
    "INPUT.MAX_SIZE_TEST", "128",
    "DATALOADER.NUM_WORKERS", "0",
    "SOLVER.IMS_PER_BATCH", "2",
    "SOLVER.MAX_ITER", "3",
    "SOLVER.STEPS", "()",
    "SOLVER.WARMUP_ITERS", "0",
]  # fmt: skip
SEARCH = [
    "MODEL.NATS.GROUPS.VALUE", "4",
    "MODEL.NATS.SEARCH.WARMUP_ITERS", "1",
    "MODEL.NATS.SEARCH.LOG_PERIOD", "1",
    "SOLVER.MAX_ITER", "5",
]  # fmt: skip
STANDIN = dict(num_train=128, num_val=48, size=32, iters=4, batch=16)


def _fixed_file(out):
    """res4+res5 at dilation 3 for the tiny test-bed network."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_backbone

    from projects.nats import add_nats_config
    from projects.nats.architecture import PANEL, fixed_architecture, save_architecture

    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, TESTBED_CONFIGS["search"]))
    cfg.merge_from_list(TINY + SEARCH)
    path = os.path.join(out, "res45_d3.json")
    save_architecture(fixed_architecture(build_backbone(cfg), cfg, rule=PANEL["res45_d3"]), path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pipeline"))
    search, retrain, _ = variant_overrides("small")
    kwargs = dict(
        seed=3,
        test_datasets=("nats_small_dev",),
        opts=TINY,
        search_opts=SEARCH + search,
        retrain_opts=retrain,
        standin_training=STANDIN,
        standin_cache=os.path.join(out, "standin_cache"),
        configs=TESTBED_CONFIGS,
        fixed_architecture=_fixed_file(out),
    )
    return out, kwargs, run_pipeline(out, **kwargs)


def test_every_artefact_and_an_honest_summary(run):
    out, _, summary = run
    for path in (
        "search/model_final.pth",
        "search/architecture.json",
        "search/architecture_heatmap.png",
        "search/search_decision.json",
        "random/architecture.json",
        "erf.png",
        "summary.json",
        "summary.md",
    ):
        assert os.path.isfile(os.path.join(out, path)), path
    assert summary == json.load(open(os.path.join(out, "summary.json")))
    models = summary["models"]
    assert sorted(models) == sorted(["baseline", "nats", "random", FIXED])
    for name, m in models.items():
        # the small variant has small objects only: APm and APl are NaN (no such objects)
        assert all(math.isfinite(m[k]) for k in AP_KEYS if k not in ("APm", "APl")), (name, m)
        assert all(math.isnan(m[k]) for k in ("APm", "APl")), (name, m)
        assert os.path.isfile(m["weights"]) and os.path.isfile(m["config_file"])
        assert m["erf"] and all(r > 0 for r in m["erf"].values())
    # No extra parameters or FLOPs: the four networks differ only in their dilations.
    assert len({m["params"] for m in models.values()}) == 1
    assert len({m["flops"] for m in models.values()}) == 1 and models["nats"]["flops"] > 0
    # Each retraining evaluated the requested dataset, from the stand-in's weights.
    for name in models:
        log = open(os.path.join(out, name, "log.txt")).read()
        assert "nats_small_dev" in log and "nats_small_arch" in log  # evaluated; trained on
        with open(models[name]["config_file"]) as f:
            assert summary["standin"]["weights"] in f.read()
    search_log = open(os.path.join(out, "search", "log.txt")).read()
    assert "nats_small_train" in search_log and "nats_small_arch" in search_log
    # The searched and the random architectures are both summarised, per stage.
    for stage, row in summary["search"].items():
        assert math.isclose(sum(row["intensities"].values()), 1.0)
        assert math.isclose(sum(summary["random_intensities"][stage].values()), 1.0)
    # The direction check: res3 of res45_d3 is all dilation 1, res4/res5 above the uniform mean.
    direction = summary["direction"]
    assert direction["res3"]["fixed"] == 1.0 and direction["res5"]["fixed"] == 3.0
    for d in direction.values():
        moved = (d["searched"] - d["uniform"]) * (d["fixed"] - d["uniform"])
        assert d["toward_fixed"] == (moved > 0)
    text = summary_markdown(summary)
    assert f"| {FIXED} |" in text and "moved towards it" in text


def test_a_second_run_skips_completed_stages(run, capsys):
    out, kwargs, summary = run
    os.remove(os.path.join(out, "summary.json"))
    again = run_pipeline(out, **kwargs)
    printed = capsys.readouterr().out
    assert printed.count("completed earlier") == 7  # search, draw, 4 retrainings, ERF
    assert again["models"] == summary["models"]


def _calibration(diffs, best):
    """A calibration's analysis: per variant, dev differences vs all_d1 and dev APs."""
    analysis = {}
    for variant, rows in diffs.items():
        table = {"all_d1": {"dev": {"AP": {"mean": 10.0}}}}
        vs = {}
        for arch, (mean, se) in rows.items():
            table[arch] = {"dev": {"AP": {"mean": 10.0 + mean}}}
            vs[arch] = {"mean": mean, "se": se, "resolved": abs(mean) > 2 * se}
        analysis[variant] = {"table": table, "vs_all_d1": {"dev": vs}, "best_on_dev": best[variant]}
    return {"analysis": analysis}


def test_main_job_choice_takes_the_clearest_planted_optimum():
    calibration = _calibration(
        {
            "large": {"res45_d3": (2.0, 0.5), "res5_d3": (1.0, 0.2), "random_a": (-9.0, 1.0)},
            "small": {"res45_d3": (-1.2, 0.2), "res5_d3": (-0.5, 0.1)},  # best: all_d1
        },
        best={"large": "res45_d3", "small": "all_d1"},
    )
    # large: its best, res45_d3, better by 4 SE; small: all_d1 best, its runner-up (res5_d3)
    # worse by 5 SE; res45_d3 worse by 6 SE on small is not the runner-up: not an optimum
    choice = main_job_choice(calibration)
    assert choice.pop("t_dev") == pytest.approx(5.0)
    assert choice == {
        "variant": "small",
        "fixed": "res5_d3",
        "contrast": "res5_d3",
        "planted_optimum_shown": True,
    }
    # a resolved-worse pattern while neither it nor all_d1 is best is not an optimum
    small = calibration["analysis"]["small"]
    small["table"]["res5_d3"]["dev"]["AP"]["mean"] = 10.3
    small["vs_all_d1"]["dev"]["res5_d3"] = {"mean": 0.3, "se": 0.5, "resolved": False}
    choice = main_job_choice(calibration)
    assert choice["variant"] == "large" and choice["fixed"] == "res45_d3"
    assert choice["contrast"] == "res45_d3" and choice["t_dev"] == pytest.approx(4.0)
    assert choice["planted_optimum_shown"]
    # no optimum shown: the clearest resolved contrast of any panel architecture (random_a,
    # t = 9) decides the variant, the fixed row is still its best pattern, and it says so
    calibration["analysis"]["large"]["vs_all_d1"]["dev"]["res45_d3"]["resolved"] = False
    choice = main_job_choice(calibration)
    assert choice.pop("t_dev") == pytest.approx(9.0)
    assert choice == {
        "variant": "large",
        "fixed": "res45_d3",
        "contrast": "random_a",
        "planted_optimum_shown": False,
    }
    for rows in calibration["analysis"].values():
        for d in rows["vs_all_d1"]["dev"].values():
            d["resolved"], d["se"] = False, None  # as a one-seed calibration writes them
    with pytest.raises(
        ValueError, match="resolved no difference between a panel architecture and all_d1 on dev"
    ):
        main_job_choice(calibration)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist: run benchmarks/bench_fixed_architectures.py"),
        ("{}", "lacks 'analysis': not a bench_fixed_architectures.py JSON"),
        ("{", "--calibration"),
    ],
)
def test_main_job_refuses_a_bad_calibration_before_writing(tmp_path, content, message):
    import subprocess

    calibration = tmp_path / "calibration.json"
    if content is not None:
        calibration.write_text(content)
    out = tmp_path / "out"
    args = [sys.executable, os.path.join(ROOT, "scripts", "demo.py"), "--output", str(out)]
    proc = subprocess.run(
        args + ["--calibration", str(calibration)], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2 and message in proc.stderr
    assert not out.exists()
