#!/usr/bin/env python
"""The main job on CPU: NATS against the baseline, a random and the best fixed architecture.

On the test bed, from one ImageNet stand-in, in minutes (the old shapes task: ``--task shapes``):

0. pretrain the ImageNet stand-in (Detectron2's stock ResNet of the demo on a shapes
   classification task; cached, so it trains once) -> an MSRA-style ``.pkl``;
1. search from it (``search_net.py``) -> ``architecture.json``, its heatmap, and whether the
   search decided (``search_decision.json``: per-stage entropy and argmax stability);
2. draw a random architecture of the same search space (``tools/make_random_architecture.py``);
3. retrain the stock baseline, the NATS network, the random one and (on the test bed) the fixed
   one from the stand-in with one schedule, data and seed (``train_net.py``), each evaluated by
   COCOEvaluator;
4. their ERF maps (``visualize_erf.py``);
5. ``summary.json`` and ``summary.md``, printed at the end. Everything lands in ``--output``
(``output/testbed``, with ``--task shapes`` ``output/demo``).

The test bed (``configs/TestBed/``) runs on the variant where the calibration (``--calibration``,
written by ``benchmarks/bench_fixed_architectures.py``) shows the clearest planted optimum on dev,
or, where it shows none, the clearest resolved difference of any panel architecture (and says so);
it retrains that variant's best hand-written panel architecture as the fourth model,
``best_fixed`` (:func:`pipeline.main_job_choice`); the summary adds the direction check (did the
search move each stage towards it) and whether the baseline reached AP 25. It refuses, before any
work, when the calibration resolved no difference at all: the test bed could not tell the models
apart. ``--task shapes`` runs the first demo on ``nats_shapes_*`` with ``configs/Demo/``.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pipeline import (  # noqa: E402
    ROOT,
    TESTBED_CONFIGS,
    main_job_choice,
    run_pipeline,
    summary_markdown,
)

from projects.nats.atomic import atomic_open  # noqa: E402

CALIBRATION = "benchmarks/results/fixed_architectures.json"
PANEL_DIR = "configs/TestBed/panel"
TARGET_AP = 25.0  # the test bed's baseline must reach it (on val)
NO_PLANT = (
    "NOTE: no variant's best hand-written dilation pattern is resolved against all_d1 on dev in "
    "the calibration: no planted optimum is shown, so NATS vs baseline here cannot say whether "
    "the search finds better dilations (benchmarks/README.md, the test bed's lab notes)"
)


def variant_overrides(variant):
    """(search overrides, retraining overrides, test datasets) that put the test bed's configs on
    ``variant``'s splits, at its image size."""
    from projects.nats.data.shapes import variant_config_opts

    images = variant_config_opts(variant)
    search = ["DATASETS.TRAIN", f"('nats_{variant}_train',)"]
    search += ["MODEL.NATS.SEARCH.ARCH.DATASETS", f"('nats_{variant}_arch',)", *images]
    retrain = ["DATASETS.TRAIN", f"('nats_{variant}_train', 'nats_{variant}_arch')", *images]
    return search, retrain, (f"nats_{variant}_val",)


def print_files(output):
    print(
        f"summary: {output}/summary.json, {output}/summary.md; pictures: "
        f"{output}/search/architecture_heatmap.png, {output}/erf.png"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", help="default: output/testbed, with --task shapes output/demo")
    parser.add_argument("--seed", type=int, default=1, help="of the search, retrainings, draw")
    parser.add_argument(
        "--task",
        choices=("testbed", "shapes"),
        default="testbed",
        help="the test bed (default) or the old shapes task of the first demo",
    )
    parser.add_argument("--calibration", default=CALIBRATION, help="the calibration's JSON")
    args = parser.parse_args()
    args.output = args.output or ("output/testbed" if args.task == "testbed" else "output/demo")
    if args.task == "shapes":
        summary = run_pipeline(args.output, seed=args.seed)
        print("\n" + summary_markdown(summary))
        print_files(args.output)
        return
    path = os.path.join(ROOT, args.calibration)
    if not os.path.isfile(path):
        parser.error(
            f"--calibration {args.calibration} does not exist: run "
            "benchmarks/bench_fixed_architectures.py with --json first"
        )
    try:  # before anything is written
        with open(path) as f:
            choice = main_job_choice(json.load(f))
    except ValueError as e:  # json.JSONDecodeError included
        parser.error(f"--calibration {args.calibration}: {e}")
    except KeyError as e:
        parser.error(
            f"--calibration {args.calibration} lacks {e}: not a bench_fixed_architectures.py JSON"
        )
    variant = choice["variant"]
    print(
        f"=== test bed variant {variant!r} (its dev contrast {choice['contrast']} vs all_d1: "
        f"{choice['t_dev']:.1f} standard errors), fixed row {choice['fixed']} ({args.calibration})",
        flush=True,
    )
    if not choice["planted_optimum_shown"]:
        print(NO_PLANT, flush=True)
    search, retrain, test = variant_overrides(variant)
    summary = run_pipeline(
        args.output,
        seed=args.seed,
        configs=TESTBED_CONFIGS,
        fixed_architecture=os.path.join(ROOT, PANEL_DIR, f"{choice['fixed']}.json"),
        search_opts=search,
        retrain_opts=retrain,
        test_datasets=test,
    )
    baseline = summary["models"]["baseline"]["AP"]
    summary["main_job"] = {
        **choice,
        "calibration": args.calibration,
        "baseline_ap_target": TARGET_AP,
        "baseline_ap_met": baseline >= TARGET_AP,
    }
    met = "met" if baseline >= TARGET_AP else "NOT met"
    notes = [] if choice["planted_optimum_shown"] else [NO_PLANT]
    notes.append(
        f"baseline AP {baseline:.2f} on nats_{variant}_val: the target AP >= {TARGET_AP} {met}"
    )
    text = summary_markdown(summary) + "\n" + "\n\n".join(notes)
    with atomic_open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    with atomic_open(os.path.join(args.output, "summary.md"), "w") as f:
        f.write(text + "\n")
    print("\n" + text)
    print_files(args.output)


if __name__ == "__main__":
    main()
