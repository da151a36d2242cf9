#!/usr/bin/env python
"""The search judged on the test bed's two variants with opposite planted answers.

Protocol (fixed in this docstring before the first number was seen; every run is reported):

* Per task variant (``large``, ``small``) and seed (default 0-4): the test bed's search
  (``configs/TestBed/search_testbed_R_50_FPN_G16.yaml`` on ``nats_<variant>_train`` /
  ``nats_<variant>_arch``) from the one ImageNet stand-in; its random control (the same seed);
  and the stock baseline, the searched (NATS), the random and the best panel architecture
  (``--best large=NAME small=NAME``: chosen on **dev** by ``bench_fixed_architectures.py``, read
  from its JSON by default) retrained with the calibration's one budget and seed, evaluated on
  the variant's dev and val splits (runs identical to the calibration's are shared with it
  through ``--calibration-output``).
* **Direction**: per stage, the searched intensities' mean dilation, sum over genotypes of
  I^g x sqrt(dh x dw), must be larger on ``large`` than on ``small`` for the same seed, for at
  least 4 of 5 seeds.
* **Ranking fidelity**: per variant and seed, Kendall's tau-b between a supernet score of each
  panel architecture and the panel's stand-alone dev AP (mean over the calibration's seeds), with
  the number of panel architectures named; two scores, separately: (a) the architecture's
  log-probability under the learned logits (``projects.nats.architecture.score``), (b) minus the
  supernet's loss on the architecture split with that architecture's one-hot mixing (the same
  ``--score-images`` images, flips and samplings for every architecture).
* **Outcome**: NATS against the baseline, the random architecture and the best panel
  architecture, over the seeds: paired differences of val AP, APs, APm, APl with t-based 95%
  intervals.

    python benchmarks/bench_search_validation.py --seeds 0 1 2 3 4
    python benchmarks/bench_search_validation.py --seeds 0 --quick       # a smoke run (minutes)

A ``--quick`` run (short search and retrainings, val alone evaluated, fewer scored images) is a
smoke test of the machinery, not a result; it has its own output folders.

Results: ``--output``/``search_validation.json`` (and ``--json``, e.g.
``benchmarks/results/search_validation.json``) with the command and the commit it ran at.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts"), os.path.join(ROOT, "benchmarks")]

import bench_fixed_architectures as calib  # noqa: E402
from bench_nats_vs_baseline import paired  # noqa: E402
from pipeline import mean_dilation, run_stage, stage_intensities, standin_weights  # noqa: E402

from projects.nats.atomic import atomic_open  # noqa: E402

SCORE_IMAGES = 64
QUICK_SCORE_IMAGES = 16
QUICK_SEARCH = ["SOLVER.MAX_ITER", "30", "MODEL.NATS.SEARCH.WARMUP_ITERS", "10"]


def direction(mean_dilations, seeds, *, need=4):
    """Per stage: on how many seeds ``large`` put more weight on large dilations than ``small``."""
    out = {}
    for stage in mean_dilations["large"][seeds[0]]:
        wins = [
            mean_dilations["large"][s][stage] > mean_dilations["small"][s][stage] for s in seeds
        ]
        out[stage] = {"seeds_right": sum(wins), "of": len(seeds), "pass": sum(wins) >= need}
    return out


def supernet_logits(search_dir, search_opts):
    """The search's final supernet (from ``model_final.pth``) and its config."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from projects.nats import NATSCheckpointer, add_nats_config

    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, calib.SEARCH_CONFIG))
    cfg.merge_from_list(list(search_opts))
    cfg.MODEL.WEIGHTS = ""
    model = build_model(cfg)
    NATSCheckpointer(model).load(os.path.join(search_dir, "model_final.pth"))
    return cfg, model


def one_hot_losses(cfg, model, archs, *, dataset, num_images, seed):
    """Per architecture: the supernet's mean training loss over ``num_images`` images of
    ``dataset`` with every channel group mixing only the architecture's genotype."""
    import torch
    from detectron2.data import DatasetCatalog, DatasetMapper
    from detectron2.utils.events import EventStorage

    from projects.nats.architecture.decode import block_list
    from projects.nats.architecture.score import group_choices
    from projects.nats.search.loader import seed_rngs

    dicts = DatasetCatalog.get(dataset)[:num_images]
    mapper = DatasetMapper(cfg, is_train=True)
    blocks = block_list(model)
    saved = [alpha.detach().clone() for _, alpha, _, _ in blocks]
    batch = cfg.SOLVER.IMS_PER_BATCH
    out = {}
    model.train()  # training losses; FrozenBN keeps the statistics fixed
    try:
        for name, arch in archs.items():
            for block, alpha, candidates, _ in blocks:
                choice = torch.tensor(group_choices(arch, block, candidates))
                one_hot = torch.nn.functional.one_hot(choice, alpha.shape[1]).to(alpha)
                alpha.data.copy_(60.0 * one_hot)  # softmax: exactly one-hot in float32
            seed_rngs(seed)  # the same flips and RPN/RoI samples for every architecture
            total, count = 0.0, 0
            with torch.no_grad(), EventStorage(0):
                for i in range(0, len(dicts), batch):
                    inputs = [mapper(d) for d in dicts[i : i + batch]]
                    losses = model(inputs)
                    total += float(sum(losses.values())) * len(inputs)
                    count += len(inputs)
            out[name] = total / count
    finally:
        for (_, alpha, _, _), value in zip(blocks, saved):
            alpha.data.copy_(value)
    return out


def fidelity(search_dir, search_opts, standalone, *, variant, num_images, seed):
    """Kendall's tau-b of both supernet scores against the panel's stand-alone dev AP."""
    from projects.nats.architecture import load_architecture
    from projects.nats.architecture.decode import block_list
    from projects.nats.architecture.score import kendall_tau, log_probability

    names = sorted(standalone)
    archs = {n: load_architecture(os.path.join(ROOT, calib.PANEL_DIR, f"{n}.json")) for n in names}
    cfg, model = supernet_logits(search_dir, search_opts)
    logp = {n: log_probability(a, block_list(model)) for n, a in archs.items()}
    losses = one_hot_losses(
        cfg, model, archs, dataset=f"nats_{variant}_arch", num_images=num_images, seed=seed
    )
    ap = [standalone[n] for n in names]
    return {
        "panel": names,
        "num_architectures": len(names),
        "log_probability": logp,
        "one_hot_loss": losses,
        "tau_log_probability": kendall_tau([logp[n] for n in names], ap),
        "tau_one_hot_loss": kendall_tau([-losses[n] for n in names], ap),
    }


def outcome(runs, seeds, models=("baseline", "random", "best_fixed")):
    """Paired differences NATS - model of val AP columns over the seeds."""
    out = {}
    for other in models:
        row = {}
        for k in calib.KEYS:
            a = [runs[s]["nats"]["val"][k] for s in seeds]
            b = [runs[s][other]["val"][k] for s in seeds]
            mean, ci = paired(a, b)
            row[k] = {"mean": mean, "ci95": ci}
        out[f"nats - {other}"] = row
    per_model = {}
    for m in ("baseline", "nats", "random", "best_fixed"):
        per_model[m] = {
            k: calib.describe([runs[s][m]["val"][k] for s in seeds]) for k in calib.KEYS
        }
    return {"models": per_model, "paired": out}


def calibration_best_and_ap(path):
    """From bench_fixed_architectures.py's JSON: per variant the dev-chosen best architecture
    and the panel's mean dev AP."""
    with open(path) as f:
        result = json.load(f)
    best, ap = {}, {}
    for variant, res in result["analysis"].items():
        best[variant] = res["best_on_dev"]
        ap[variant] = {a: row["dev"]["AP"]["mean"] for a, row in res["table"].items()}
    return best, ap


def run_variant_seed(out, *, variant, seed, weights, best, calib_out, extra, search_extra, splits):
    """Search, random draw and the four retrainings of one variant and seed."""
    search_dir = os.path.join(out, variant, f"seed{seed}", "search")
    search_opts = variant_search_opts(variant) + list(search_extra)
    common = ["MODEL.WEIGHTS", weights, "SEED", str(seed)]
    run_stage(
        search_dir,
        f"search: {variant} / seed {seed}",
        ["search_net.py", "--config-file", calib.SEARCH_CONFIG, "--resume"]
        + ["OUTPUT_DIR", search_dir, *common, *search_opts],
    )
    random_file = os.path.join(out, variant, f"seed{seed}", "random", "architecture.json")
    run_stage(
        os.path.join(out, variant, f"seed{seed}", "random", "draw"),
        f"random architecture: {variant} / seed {seed}",
        ["tools/make_random_architecture.py", "--config-file", calib.SEARCH_CONFIG]
        + ["--seed", str(seed), "--output", random_file, *search_opts],
    )
    runs = {  # name: (run folder, panel name or architecture file)
        "baseline": (os.path.join(calib_out, variant, "all_d1", f"seed{seed}"), "all_d1"),
        "best_fixed": (os.path.join(calib_out, variant, best, f"seed{seed}"), best),
        "nats": (
            os.path.join(out, variant, f"seed{seed}", "nats"),
            os.path.join(search_dir, "architecture.json"),
        ),
        "random": (os.path.join(out, variant, f"seed{seed}", "random"), random_file),
    }
    results = {}
    for name, (run_dir, arch) in runs.items():
        results[name], _ = calib.retrain(
            run_dir,
            arch=arch,
            variant=variant,
            seed=seed,
            weights=weights,
            splits=splits,
            extra=extra,
        )
    return search_dir, search_opts, results


def variant_search_opts(variant):
    """Overrides that put the test-bed search on ``variant``'s weight and architecture splits,
    at the variant's image size."""
    from projects.nats.data.shapes import variant_config_opts

    return [
        "DATASETS.TRAIN",
        f"('nats_{variant}_train',)",
        "MODEL.NATS.SEARCH.ARCH.DATASETS",
        f"('nats_{variant}_arch',)",
        *variant_config_opts(variant),
    ]


def write_results(result, paths):
    """``result`` as JSON, atomically, into every path of ``paths`` that is not None."""
    for path in filter(None, paths):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_open(path, "w") as f:
            json.dump(result, f, indent=1, default=str)


def output_dirs(*, quick, output=None, calibration_output=None):
    """The run folders: given ones as they are; by default a quick run never shares (resumable)
    folders with a full run's, which ``--resume`` would mix into its results."""
    output = output or ("output/search_validation" + ("_quick" if quick else ""))
    if calibration_output is None:
        calibration_output = (
            os.path.join(output, "fixed_architectures") if quick else "output/fixed_architectures"
        )
    return output, calibration_output


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--quick", action="store_true", help="smoke run: short search/retraining")
    parser.add_argument(
        "--calibration",
        default="benchmarks/results/fixed_architectures.json",
        help="bench_fixed_architectures.py's JSON: the dev-chosen best panel architecture per "
        "variant and the panel's stand-alone dev AP",
    )
    parser.add_argument(
        "--calibration-output",
        help="where the calibration's retrainings are (shared with it; default "
        "output/fixed_architectures, or <--output>/fixed_architectures with --quick)",
    )
    parser.add_argument(
        "--score-images",
        type=int,
        help=f"images of the one-hot loss score (default {SCORE_IMAGES}, {QUICK_SCORE_IMAGES} "
        "with --quick)",
    )
    parser.add_argument(
        "--output", help="default output/search_validation (output/search_validation_quick)"
    )
    parser.add_argument("--json", help="also write the results here (e.g. benchmarks/results/...)")
    args = parser.parse_args(argv)
    args.output, args.calibration_output = output_dirs(
        quick=args.quick, output=args.output, calibration_output=args.calibration_output
    )
    if args.score_images is None:
        args.score_images = QUICK_SCORE_IMAGES if args.quick else SCORE_IMAGES
    if not os.path.isfile(args.calibration):
        parser.error(
            f"--calibration {args.calibration} does not exist: run "
            "benchmarks/bench_fixed_architectures.py first (its --json)"
        )
    best, standalone = calibration_best_and_ap(args.calibration)
    missing = [v for v in calib.VARIANTS if v not in best]
    if missing:
        parser.error(f"--calibration {args.calibration} has no results for variants {missing}")
    extra = calib.QUICK_OPTS if args.quick else []
    search_extra = QUICK_SEARCH if args.quick else []
    start, at_commit = time.perf_counter(), calib.commit()  # the code the runs start from
    weights, accuracy = standin_weights(training=calib.QUICK_STANDIN if args.quick else None)
    runs, dilations, fidelities, intensities = {}, {}, {}, {}
    for variant in calib.VARIANTS:
        for seed in args.seeds:
            search_dir, search_opts, results = run_variant_seed(
                args.output,
                variant=variant,
                seed=seed,
                weights=weights,
                best=best[variant],
                calib_out=args.calibration_output,
                extra=extra,
                search_extra=search_extra,
                splits=("val",) if args.quick else calib.SPLITS,  # the outcome is judged on val
            )
            runs.setdefault(variant, {})[seed] = results
            arch = stage_intensities(os.path.join(search_dir, "architecture.json"))
            intensities.setdefault(variant, {})[seed] = arch
            dilations.setdefault(variant, {})[seed] = mean_dilation(arch)
            fidelities.setdefault(variant, {})[seed] = fidelity(
                search_dir,
                search_opts,
                standalone[variant],
                variant=variant,
                num_images=args.score_images,
                seed=seed,
            )
    result = {
        "command": "python benchmarks/bench_search_validation.py " + " ".join(argv or sys.argv[1:]),
        "commit": at_commit,
        "seeds": args.seeds,
        "quick": args.quick,
        "best_fixed": best,
        "standin": {"weights": weights, "val_accuracy": accuracy},
        "intensities": intensities,
        "mean_dilation": dilations,
        "direction": direction(dilations, args.seeds, need=min(4, len(args.seeds))),
        "fidelity": fidelities,
        "outcome": {v: outcome(runs[v], args.seeds) for v in calib.VARIANTS},
        "runs": runs,
        "seconds": time.perf_counter() - start,
    }
    write_results(result, (os.path.join(args.output, "search_validation.json"), args.json))
    print(json.dumps({k: result[k] for k in ("direction", "best_fixed")}, indent=1))
    for variant in calib.VARIANTS:
        taus = [
            (f["tau_log_probability"], f["tau_one_hot_loss"]) for f in fidelities[variant].values()
        ]
        print(variant, "Kendall tau (log-prob, one-hot loss) per seed:", taus)
        for name, row in result["outcome"][variant]["paired"].items():
            print(f"  {name}: AP {row['AP']['mean']:+.2f} {row['AP']['ci95']}")


if __name__ == "__main__":
    main()
