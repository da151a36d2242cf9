#!/usr/bin/env python
"""Why the search does what it does on the test bed: the measurements of issue 24's item 4.

Protocol (fixed in this docstring before the first number was seen; every run is reported).
Everything is measured on search and dev splits (``nats_<variant>_arch`` for losses and
gradients, ``nats_<variant>_dev`` for retrained AP), never on val, on the searches that
``bench_search_validation.py`` ran (``--validation-output``, the seeds given):

1. **Replica initialisation.** The supernet's one-hot loss of each panel architecture (the
   validation's fidelity score: ``--score-images`` architecture-split images, the same flips and
   samples for every architecture) at three points: ``init``, the supernet built from the
   ImageNet stand-in (every dilated replica a copy of the pretrained dilation-1 kernel, logits
   zero; FPN, RPN and RoI heads untrained, so its losses rank backbones through random heads,
   drawn from the seed: amended after the second invocation showed them unseeded);
   ``warmup``, after the weight-only warm-up, before the first architecture step (logits still
   zero: ``model_0000059.pth`` of the same search rerun with ``SOLVER.CHECKPOINT_PERIOD 60``,
   whose ``architecture.json`` is compared with the validation's: the runs are deterministic);
   ``iter100``, after 100 iterations (``model_0000099.pth``, 40 architecture steps); ``final``.
   Per point: Kendall's tau-b against the panel's stand-alone dev AP and all_d1's rank (1 = the
   lowest loss of the panel).
2. **Per-stage gradient scale.** The mean absolute gradient of the architecture loss with respect
   to the logits, per stage, over the same images, at the same three points, and each stage's
   ratio to res3's.
3. **Shared BatchNorm statistics.** How many normalisation modules of the supernet update running
   statistics in training (0: every replica sees the same frozen statistics, and the question
   does not arise).
4. **Architecture learning rate and warm-up** (``--settings``; only on ``--settings-variant``):
   searches with ``MODEL.NATS.SEARCH.ARCH.BASE_LR`` 0.03 and 0.3 (the test bed's 0.1) and with
   ``MODEL.NATS.SEARCH.WARMUP_ITERS`` 120 (60), per seed: the mean dilation per stage and the
   decoded network retrained with the calibration's budget, evaluated on dev only, beside the
   default search's dev AP and the calibration's dev-best panel architecture's.
5. **Amendment** (fixed after items 1-4's numbers were seen, before its own runs): the
   logits' Adam has coupled L2 decay (``MODEL.NATS.SEARCH.ARCH.WEIGHT_DECAY``, 1e-5 on the test
   bed), whose fixed point is alpha = -mean gradient / decay, so a stage with smaller gradients
   would keep smaller logits, nearer uniform. Per point: each stage's mean |alpha| beside its
   mean |gradient| / decay; in item 4 a search with ``WEIGHT_DECAY`` 0, and for every setting
   the final softmax entropy per stage (of ln K, from ``search_decision.json``).

    python benchmarks/bench_search_diagnosis.py --seeds 0 1 --settings \\
        --json benchmarks/results/search_diagnosis.json

Results: ``--output``/``search_diagnosis.json`` (and ``--json``) with the command and commit.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts"), os.path.join(ROOT, "benchmarks")]

import bench_fixed_architectures as calib  # noqa: E402
import bench_search_validation as validation  # noqa: E402
from pipeline import mean_dilation, run_stage, stage_intensities, standin_weights  # noqa: E402

POINTS = {"init": None, "warmup": None, "iter100": "model_0000099.pth", "final": "model_final.pth"}
SETTINGS = {
    "arch_lr_0.03": ["MODEL.NATS.SEARCH.ARCH.BASE_LR", "0.03"],
    "arch_lr_0.3": ["MODEL.NATS.SEARCH.ARCH.BASE_LR", "0.3"],
    "warmup_120": ["MODEL.NATS.SEARCH.WARMUP_ITERS", "120"],
    "arch_wd_0": ["MODEL.NATS.SEARCH.ARCH.WEIGHT_DECAY", "0.0"],
}


def supernet_at(search_opts, *, checkpoint, seed):
    """The test bed's supernet loaded from ``checkpoint`` (the stand-in's .pkl or a search's);
    the heads that the stand-in lacks are initialised from ``seed``."""
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from projects.nats import NATSCheckpointer, add_nats_config
    from projects.nats.search.loader import seed_rngs

    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, calib.SEARCH_CONFIG))
    cfg.merge_from_list(list(search_opts))
    cfg.MODEL.WEIGHTS = ""
    seed_rngs(seed)  # the init point's random heads: the same in every invocation
    model = build_model(cfg)
    NATSCheckpointer(model).load(checkpoint)
    return cfg, model


def logit_gradients(cfg, model, *, dataset, num_images, seed):
    """Per stage: the mean |d loss / d logits| over ``num_images`` images of ``dataset``."""
    import torch
    from detectron2.data import DatasetCatalog, DatasetMapper
    from detectron2.utils.events import EventStorage

    from projects.nats.architecture.decode import block_list
    from projects.nats.search.loader import seed_rngs

    dicts = DatasetCatalog.get(dataset)[:num_images]
    mapper = DatasetMapper(cfg, is_train=True)
    blocks = block_list(model)
    alphas = [alpha for _, alpha, _, _ in blocks]
    sums = [torch.zeros_like(a) for a in alphas]
    batch = cfg.SOLVER.IMS_PER_BATCH
    model.train()
    seed_rngs(seed)
    with EventStorage(0):
        for i in range(0, len(dicts), batch):
            inputs = [mapper(d) for d in dicts[i : i + batch]]
            grads = torch.autograd.grad(sum(model(inputs).values()), alphas)
            for s, g in zip(sums, grads):
                s += g.detach() * len(inputs)
    per_stage = {}
    for (name, _, _, _), s in zip(blocks, sums):
        per_stage.setdefault(name.split(".")[0], []).append(float((s / len(dicts)).abs().mean()))
    scale = {stage: sum(v) / len(v) for stage, v in per_stage.items()}
    first = scale[sorted(scale)[0]]
    return {"mean_abs": scale, "ratio_to_res3": {k: v / first for k, v in scale.items()}}


def logit_scale(model):
    """Per stage: the mean |alpha| of the logits."""
    from projects.nats.architecture.decode import block_list

    per_stage = {}
    for name, alpha, _, _ in block_list(model):
        per_stage.setdefault(name.split(".")[0], []).append(alpha.detach().abs().flatten())
    return {
        k: float(sum(v.sum() for v in a) / sum(v.numel() for v in a)) for k, a in per_stage.items()
    }


def final_entropy(search_dir):
    """Per stage: the groups' mean softmax entropy at the end, of ln K (search_decision.json)."""
    with open(os.path.join(search_dir, "search_decision.json")) as f:
        decision = json.load(f)
    return {stage: d["entropy_last"] / d["ln_K"] for stage, d in decision.items()}


def updating_norms(model):
    """Normalisation modules that update running statistics in training mode."""
    import torch

    return sum(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        for m in model.modules()
    )


def measure_point(search_opts, checkpoint, standalone, *, variant, num_images, seed):
    from projects.nats.architecture import load_architecture
    from projects.nats.architecture.score import kendall_tau

    names = sorted(standalone)
    archs = {n: load_architecture(os.path.join(ROOT, calib.PANEL_DIR, f"{n}.json")) for n in names}
    cfg, model = supernet_at(search_opts, checkpoint=checkpoint, seed=seed)
    dataset = f"nats_{variant}_arch"
    losses = validation.one_hot_losses(
        cfg, model, archs, dataset=dataset, num_images=num_images, seed=seed
    )
    ranked = sorted(names, key=lambda n: losses[n])
    return {
        "one_hot_loss": losses,
        "tau_one_hot_loss": kendall_tau(
            [-losses[n] for n in names], [standalone[n] for n in names]
        ),
        "all_d1_rank": ranked.index("all_d1") + 1,
        "lowest_loss": ranked[0],
        "gradients": logit_gradients(cfg, model, dataset=dataset, num_images=num_images, seed=seed),
        "updating_norms": updating_norms(model),
        "mean_abs_logits": logit_scale(model),
    }


def rerun_with_warmup_checkpoint(out, validation_dir, *, variant, seed, weights):
    """The validation's search rerun, checkpointed every 60 iterations: its end-of-warm-up
    checkpoint, and whether the rerun decoded the same architecture."""
    from projects.nats.architecture import load_architecture

    search_dir = os.path.join(out, variant, f"seed{seed}", "rerun", "search")
    run_stage(
        search_dir,
        f"search rerun (checkpoint period 60): {variant} / seed {seed}",
        ["search_net.py", "--config-file", calib.SEARCH_CONFIG, "--resume", "OUTPUT_DIR"]
        + [
            search_dir,
            "MODEL.WEIGHTS",
            weights,
            "SEED",
            str(seed),
            *validation.variant_search_opts(variant),
        ]
        + ["SOLVER.CHECKPOINT_PERIOD", "60"],
    )
    same = (
        load_architecture(os.path.join(search_dir, "architecture.json")).blocks
        == load_architecture(os.path.join(validation_dir, "architecture.json")).blocks
    )
    return os.path.join(search_dir, "model_0000059.pth"), same


def run_setting(out, name, opts, *, variant, seed, weights):
    """One search with ``opts`` and its decoded network retrained, evaluated on dev."""
    search_dir = os.path.join(out, variant, f"seed{seed}", name, "search")
    search_opts = validation.variant_search_opts(variant)
    run_stage(
        search_dir,
        f"search {name}: {variant} / seed {seed}",
        ["search_net.py", "--config-file", calib.SEARCH_CONFIG, "--resume", "OUTPUT_DIR"]
        + [search_dir, "MODEL.WEIGHTS", weights, "SEED", str(seed), *search_opts, *opts],
    )
    arch_file = os.path.join(search_dir, "architecture.json")
    metrics, _ = calib.retrain(
        os.path.join(out, variant, f"seed{seed}", name, "retrain"),
        arch=arch_file,
        variant=variant,
        seed=seed,
        weights=weights,
        splits=("dev",),
    )
    return {
        "mean_dilation": mean_dilation(stage_intensities(arch_file)),
        "entropy_of_ln_K": final_entropy(search_dir),
        "dev": metrics["dev"],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--variants", nargs="+", choices=calib.VARIANTS, default=calib.VARIANTS)
    parser.add_argument("--calibration", default="benchmarks/results/fixed_architectures.json")
    parser.add_argument("--validation-output", default="output/search_validation")
    parser.add_argument("--score-images", type=int, default=validation.SCORE_IMAGES)
    parser.add_argument("--settings", action="store_true", help="also item 4's searches")
    parser.add_argument("--settings-variant", choices=calib.VARIANTS, default="large")
    parser.add_argument("--output", default="output/search_diagnosis")
    parser.add_argument("--json", help="also write the results here (e.g. benchmarks/results/...)")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.calibration):
        parser.error(f"--calibration {args.calibration} does not exist")
    best, standalone = validation.calibration_best_and_ap(args.calibration)
    searches = {
        (v, s): os.path.join(args.validation_output, v, f"seed{s}", "search")
        for v in args.variants
        for s in args.seeds
    }
    for (v, s), path in searches.items():
        for point, name in POINTS.items():
            if name and not os.path.isfile(os.path.join(path, name)):
                parser.error(
                    f"--validation-output: {path} has no {name}: run "
                    f"benchmarks/bench_search_validation.py --seeds {s} first"
                )
    start, at_commit = time.perf_counter(), calib.commit()
    weights, accuracy = standin_weights()
    points, reruns = {}, {}
    for (variant, seed), path in searches.items():
        warm, same = rerun_with_warmup_checkpoint(
            args.output, path, variant=variant, seed=seed, weights=weights
        )
        reruns.setdefault(variant, {})[seed] = {"same_architecture": same}
        for point, name in POINTS.items():
            checkpoint = {"init": weights, "warmup": warm}.get(point) or os.path.join(path, name)
            print(f"=== {variant} / seed {seed} / {point}", flush=True)
            points.setdefault(variant, {}).setdefault(seed, {})[point] = measure_point(
                validation.variant_search_opts(variant),
                checkpoint,
                standalone[variant],
                variant=variant,
                num_images=args.score_images,
                seed=seed,
            )
    settings = {}
    if args.settings:
        v = args.settings_variant
        for name, opts in SETTINGS.items():
            for seed in args.seeds:
                settings.setdefault(name, {})[seed] = run_setting(
                    args.output, name, opts, variant=v, seed=seed, weights=weights
                )
        settings["default"] = {
            seed: {
                "mean_dilation": mean_dilation(
                    stage_intensities(os.path.join(searches[(v, seed)], "architecture.json"))
                ),
                "entropy_of_ln_K": final_entropy(searches[(v, seed)]),
                "dev": calib.eval_metrics(
                    os.path.join(args.validation_output, v, f"seed{seed}", "nats"),
                    [f"nats_{v}_dev"],
                )[f"nats_{v}_dev"],
            }
            for seed in args.seeds
        }
        settings["best_fixed"] = {
            "name": best[v],
            "dev_AP_calibration_mean": standalone[v][best[v]],
        }
    result = {
        "command": "python benchmarks/bench_search_diagnosis.py " + " ".join(argv or sys.argv[1:]),
        "commit": at_commit,
        "seeds": args.seeds,
        "standin": {"weights": weights, "val_accuracy": accuracy},
        "points": points,
        "reruns": reruns,
        "settings": settings,
        "seconds": time.perf_counter() - start,
    }
    validation.write_results(
        result, (os.path.join(args.output, "search_diagnosis.json"), args.json)
    )
    for variant, by_seed in points.items():
        for seed, by_point in by_seed.items():
            for point, m in by_point.items():
                print(
                    f"{variant} seed {seed} {point}: tau {m['tau_one_hot_loss']:+.2f}, all_d1 "
                    f"rank {m['all_d1_rank']}/{len(m['one_hot_loss'])}, lowest {m['lowest_loss']},"
                    f" grad ratio {m['gradients']['ratio_to_res3']}"
                )
    for name, by_seed in settings.items():
        print(name, json.dumps(by_seed, default=str)[:400])


if __name__ == "__main__":
    main()
