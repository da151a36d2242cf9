#!/usr/bin/env python
"""Calibration of the test bed: can it tell fixed architectures apart, before any search?

Protocol (fixed before the first number was seen; every run is reported):

* Panel: the hand-written architectures of ``projects.nats.architecture.PANEL`` (all dilation 1 =
  the stock baseline, res4+res5 all 2, res4+res5 all 3, res5 only at 3, res5 at 5, res4+res5 half
  (1, 3) / half (3, 1)) and two random draws (``random_a``, ``random_b``: seeds 100 and 101),
  as files in ``configs/TestBed/panel/`` (``--write-panel`` writes them again).
* Each is retrained from the one ImageNet stand-in with the test bed's one budget
  (``configs/TestBed/``: ``all_d1`` with the stock baseline config, the others with the decoded
  config), once per seed and task variant (``large``, ``small``: ``nats_<variant>_*``), and
  evaluated with COCOEvaluator on both the variant's dev and val splits.
* Reported per variant and architecture: AP, APs, APm, APl as mean, standard deviation and t-based
  95% interval over the seeds, the wall time per run, and paired differences against ``all_d1``
  (same seed) with their t intervals; a difference is *resolved* when it exceeds 2 standard errors
  of the paired difference. The best architecture of a variant is chosen on **dev** (mean AP), never
  on val; val is reported beside it.
* Verdicts: the baseline's val AP >= 25, at least one resolved pair, and whether the best panel
  architecture differs between the variants with the difference resolved on both.

    python benchmarks/bench_fixed_architectures.py --seeds 0 1 2          # the full calibration
    python benchmarks/bench_fixed_architectures.py --seeds 0 --quick      # a smoke run (minutes)

Results: ``--output``/``fixed_architectures.json`` (and ``--json``, e.g.
``benchmarks/results/fixed_architectures.json``) with the command and the commit it ran at.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts"), os.path.join(ROOT, "benchmarks")]

from bench_nats_vs_baseline import T975, paired  # noqa: E402
from pipeline import run_stage, standin_weights  # noqa: E402

from projects.nats.atomic import atomic_open  # noqa: E402
from projects.nats.data.variants import ON_TRIAL  # noqa: E402

TESTBED = "configs/TestBed"
BASELINE_CONFIG = f"{TESTBED}/faster_rcnn_R_50_FPN_testbed.yaml"
NATS_CONFIG = f"{TESTBED}/faster_rcnn_R_50_FPN_nats_testbed.yaml"
SEARCH_CONFIG = f"{TESTBED}/search_testbed_R_50_FPN_G16.yaml"
PANEL_DIR = f"{TESTBED}/panel"
RANDOM_DRAWS = {"random_a": 100, "random_b": 101}
VARIANTS = ("large", "small")
TRIALS = ON_TRIAL  # designs on trial, with splits of their own (nats_<design>_*)
KEYS = ("AP", "APs", "APm", "APl")
SPLITS = ("dev", "val")
QUICK_OPTS = ["SOLVER.MAX_ITER", "40", "SOLVER.STEPS", "(30,)", "SOLVER.WARMUP_ITERS", "10"]
QUICK_STANDIN = {"iters": 100}
QUICK_PANEL = ("all_d1", "res45_d3")


def panel_names():
    from projects.nats.architecture import PANEL

    return [*PANEL, *RANDOM_DRAWS]


def variant_opts(variant, splits=SPLITS):
    """Overrides that put a test-bed config on ``variant``'s splits: trained on both search
    splits, evaluated on ``splits`` (of "dev", "val"), at the variant's image size."""
    from projects.nats.data.shapes import variant_config_opts

    train = f"('nats_{variant}_train', 'nats_{variant}_arch')"
    test = "(" + "".join(f"'nats_{variant}_{s}', " for s in splits) + ")"
    return ["DATASETS.TRAIN", train, "DATASETS.TEST", test, *variant_config_opts(variant)]


def write_panel(out_dir=os.path.join(ROOT, PANEL_DIR)):
    """Write every panel architecture of the test-bed search space into ``out_dir``."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_backbone

    from projects.nats import add_nats_config
    from projects.nats.architecture import (
        PANEL,
        fixed_architecture,
        random_architecture,
        save_architecture,
    )

    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, SEARCH_CONFIG))
    supernet = build_backbone(cfg)  # only the mixed ops' shapes are read
    meta = {"panel": "test bed calibration", "search_config": SEARCH_CONFIG}
    for name, rule in PANEL.items():
        arch = fixed_architecture(supernet, cfg, rule=rule, meta={**meta, "name": name})
        save_architecture(arch, os.path.join(out_dir, f"{name}.json"))
    for name, seed in RANDOM_DRAWS.items():
        arch = random_architecture(supernet, cfg, seed=seed, meta={**meta, "name": name})
        save_architecture(arch, os.path.join(out_dir, f"{name}.json"))


def eval_metrics(output_dir, datasets):
    """The last evaluation's AP columns per dataset, from the trainer's metrics.json."""
    with open(os.path.join(output_dir, "metrics.json")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    # Detectron2 prefixes the keys with the dataset's name only where a run tests several.
    with open(os.path.join(output_dir, "config.yaml")) as f:
        tested = list(yaml.safe_load(f)["DATASETS"]["TEST"])
    out = {}
    for name in datasets:
        prefix = f"{name}/bbox/" if len(tested) > 1 else "bbox/"
        evals = [r for r in rows if prefix + "AP" in r] if name in tested else []
        if not evals:
            raise RuntimeError(
                f"{output_dir}/metrics.json has no bbox evaluation of {name} (tested: {tested})"
            )
        out[name] = {k: evals[-1][prefix + k] for k in KEYS}
    return out


def retrain(out, *, arch, variant, seed, weights, splits=SPLITS, extra=()):
    """Retrain one panel architecture (a completed run is skipped) and return its metrics."""
    if arch == "all_d1":
        config, arch_opts = BASELINE_CONFIG, []
    else:  # a panel name, or an architecture file (a search's, a random draw)
        path = arch if arch.endswith(".json") else os.path.join(ROOT, PANEL_DIR, f"{arch}.json")
        config, arch_opts = NATS_CONFIG, ["MODEL.NATS.ARCHITECTURE", path]
    args = ["train_net.py", "--config-file", config, "--resume", "OUTPUT_DIR", out]
    args += [
        "MODEL.WEIGHTS",
        weights,
        "SEED",
        str(seed),
        *arch_opts,
        *variant_opts(variant, splits),
    ]
    seconds = run_stage(out, f"{variant} / {arch} / seed {seed}", args + list(extra))
    metrics = eval_metrics(out, [f"nats_{variant}_{s}" for s in splits])
    return {s: metrics[f"nats_{variant}_{s}"] for s in splits}, seconds


def describe(values):
    """Mean, standard deviation and t-based 95% interval of ``values``."""
    if any(math.isnan(v) for v in values):  # e.g. APm of a split without medium objects
        return {"mean": float("nan"), "sd": None, "ci95": None}
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": mean, "sd": None, "ci95": None}
    sd = statistics.stdev(values)
    half = T975[min(len(values) - 1, len(T975)) - 1] * sd / math.sqrt(len(values))
    return {"mean": mean, "sd": sd, "ci95": [mean - half, mean + half]}


def paired_se(a, b):
    """The standard error of the mean paired difference a - b (None with fewer than 2 pairs)."""
    d = [x - y for x, y in zip(a, b)]
    return statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else None


def analyse(runs, archs, seeds, splits=SPLITS):
    """Per variant: the table rows, paired differences against all_d1, the dev-chosen best."""
    out = {}
    for variant, by_arch in runs.items():
        table, diffs = {}, {}
        for arch in archs:
            rows = [by_arch[arch][s] for s in seeds]
            table[arch] = {
                split: {k: describe([r["metrics"][split][k] for r in rows]) for k in KEYS}
                for split in splits
            }
            table[arch]["seconds"] = statistics.fmean(r["seconds"] for r in rows)
        for split in splits:
            for arch in archs:
                if arch == "all_d1":
                    continue
                a = [by_arch[arch][s]["metrics"][split]["AP"] for s in seeds]
                b = [by_arch["all_d1"][s]["metrics"][split]["AP"] for s in seeds]
                mean, ci = paired(a, b)
                se = paired_se(a, b)
                resolved = se is not None and abs(mean) > 2 * se
                diffs.setdefault(split, {})[arch] = {
                    "mean": mean,
                    "ci95": ci,
                    "se": se,
                    "resolved": resolved,
                }
        best = max(archs, key=lambda a: table[a][splits[0]]["AP"]["mean"])
        out[variant] = {"table": table, "vs_all_d1": diffs, "best_on_dev": best}
    return out


def markdown(analysis, seeds, splits=SPLITS):
    last = splits[-1]
    lines = [f"Seeds {seeds}; AP columns on {last} (best on {splits[0]} marked *).", ""]
    for variant, res in analysis.items():
        lines += [f"### {variant}", ""]
        lines.append(
            f"| architecture | AP ({last}) | APs | APm | APl | AP ({splits[0]}) | "
            f"vs all_d1, {last} AP | s/run |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        for arch, row in res["table"].items():

            def cell(d):
                if d["sd"] is None:
                    return f"{d['mean']:.2f}"
                return f"{d['mean']:.2f} [{d['ci95'][0]:.2f}, {d['ci95'][1]:.2f}]"

            diff = res["vs_all_d1"].get(last, {}).get(arch)
            dtext = "-"
            if diff is not None:
                dtext = f"{diff['mean']:+.2f}"
                if diff["ci95"] is not None:
                    dtext += f" [{diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f}]"
                dtext += " (resolved)" if diff["resolved"] else ""
            mark = "*" if arch == res["best_on_dev"] else ""
            val = row[last]
            lines.append(
                f"| {arch}{mark} | {cell(val['AP'])} | {cell(val['APs'])} | {cell(val['APm'])} | "
                f"{cell(val['APl'])} | {cell(row[splits[0]]['AP'])} | {dtext} | "
                f"{row['seconds']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True)
        return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except OSError:
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANTS + TRIALS,
        default=list(VARIANTS),
        help="task variants (and designs on trial, at their own image size)",
    )
    parser.add_argument("--archs", nargs="+", help="panel architectures (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 archs, 40 iterations")
    parser.add_argument(
        "--output", help="default output/fixed_architectures (output/fixed_architectures_quick)"
    )
    parser.add_argument("--json", help="also write the results here (e.g. benchmarks/results/...)")
    parser.add_argument(
        "--splits",
        nargs="+",
        choices=SPLITS,
        default=list(SPLITS),
        help="evaluation splits; the best architecture is chosen on the first (settings are "
        "chosen with dev alone)",
    )
    parser.add_argument("--write-panel", action="store_true", help="(re)write the panel files")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="overrides of every retraining")
    args = parser.parse_args(argv)
    # A quick run never shares (resumable) run folders with a full run's: --resume would mix them.
    args.output = args.output or ("output/fixed_architectures" + ("_quick" if args.quick else ""))
    if args.write_panel:
        write_panel()
        print(f"wrote the panel into {PANEL_DIR}: {panel_names()}")
        return
    archs = args.archs or (list(QUICK_PANEL) if args.quick else panel_names())
    unknown = sorted(set(archs) - set(panel_names()))
    if unknown:
        parser.error(f"--archs {unknown} unknown; accepted: {panel_names()}")
    if "all_d1" not in archs:
        parser.error("--archs must include all_d1 (the baseline every difference is paired with)")
    extra = (QUICK_OPTS if args.quick else []) + list(args.opts)
    start, at_commit = time.perf_counter(), commit()  # the code the runs start from
    weights, accuracy = standin_weights(training=QUICK_STANDIN if args.quick else None)
    runs = {}
    for variant in args.variants:
        for arch in archs:
            for seed in args.seeds:
                out = os.path.join(args.output, variant, arch, f"seed{seed}")
                metrics, seconds = retrain(
                    out,
                    arch=arch,
                    variant=variant,
                    seed=seed,
                    weights=weights,
                    splits=args.splits,
                    extra=extra,
                )
                runs.setdefault(variant, {}).setdefault(arch, {})[seed] = {
                    "metrics": metrics,
                    "seconds": seconds,
                }
    analysis = analyse(runs, archs, args.seeds, args.splits)
    result = {
        "command": "python benchmarks/bench_fixed_architectures.py "
        + " ".join(argv or sys.argv[1:]),
        "commit": at_commit,
        "seeds": args.seeds,
        "quick": args.quick,
        "standin": {"weights": weights, "val_accuracy": accuracy},
        "runs": {
            v: {a: {str(s): r for s, r in x.items()} for a, x in d.items()} for v, d in runs.items()
        },
        "analysis": analysis,
        "seconds": time.perf_counter() - start,
    }
    text = markdown(analysis, args.seeds, args.splits)
    for path in filter(None, (os.path.join(args.output, "fixed_architectures.json"), args.json)):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_open(path, "w") as f:
            json.dump(result, f, indent=1)
    with atomic_open(os.path.join(args.output, "fixed_architectures.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
