"""The main job's pipeline (scripts/pipeline.py) end to end at 1/8 width, 96x128 images and a few
iterations: every artefact, three evaluations with finite AP, equal parameters and FLOPs, and a
second run that skips the completed stages."""

import json
import math
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from pipeline import AP_KEYS, run_pipeline, summary_markdown  # noqa: E402

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


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("pipeline"))
    kwargs = dict(
        seed=3,
        test_datasets=("nats_shapes_dev",),
        opts=TINY,
        search_opts=SEARCH,
        standin_training=STANDIN,
        standin_cache=os.path.join(out, "standin_cache"),
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
    assert sorted(models) == ["baseline", "nats", "random"]
    for name, m in models.items():
        assert all(math.isfinite(m[k]) for k in AP_KEYS), (name, m)
        assert os.path.isfile(m["weights"]) and os.path.isfile(m["config_file"])
        assert m["erf"] and all(r > 0 for r in m["erf"].values())
    # No extra parameters or FLOPs: the three networks differ only in their dilations.
    assert len({m["params"] for m in models.values()}) == 1
    assert len({m["flops"] for m in models.values()}) == 1 and models["nats"]["flops"] > 0
    # Each retraining evaluated the requested dataset, from the stand-in's weights.
    for name in models:
        log = open(os.path.join(out, name, "log.txt")).read()
        assert "nats_shapes_dev" in log
        with open(models[name]["config_file"]) as f:
            assert summary["standin"]["weights"] in f.read()
    # The searched and the random architectures are both summarised, per stage.
    for stage, row in summary["search"].items():
        assert math.isclose(sum(row["intensities"].values()), 1.0)
        assert math.isclose(sum(summary["random_intensities"][stage].values()), 1.0)
    assert "| nats |" in summary_markdown(summary)


def test_a_second_run_skips_completed_stages(run, capsys):
    out, kwargs, summary = run
    os.remove(os.path.join(out, "summary.json"))
    again = run_pipeline(out, **kwargs)
    printed = capsys.readouterr().out
    assert printed.count("completed earlier") == 6  # search, draw, 3 retrainings, ERF
    assert again["models"] == summary["models"]
