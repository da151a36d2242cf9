"""The main job's pipeline, shared by ``scripts/demo.py`` and the experiment (``benchmarks/``).

ImageNet stand-in -> search -> random-architecture control -> three retrainings with one budget
(stock baseline, NATS, random), each evaluated with COCOEvaluator -> ERFs -> summary. Every stage
runs as a user runs it (``search_net.py``, ``train_net.py``, ``tools/...``, ``visualize_erf.py``,
in a subprocess) and writes ``stage.json`` (its wall time) atomically when it completes: a run
started again skips completed stages, resumes interrupted trainings from their last checkpoint
(``--resume``) and never reads the files of a stage that did not complete.
"""

import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from projects.nats.atomic import atomic_open  # noqa: E402

# The configs of a pipeline: the old shapes task (the first demo, its 5-seed experiment) and the
# test bed (configs/TestBed/: the main job since the test bed was calibrated).
DEMO_CONFIGS = {
    "search": "configs/Demo/search_shapes_R_50_FPN_G16.yaml",
    "baseline": "configs/Demo/faster_rcnn_R_50_FPN_shapes.yaml",
    "nats": "configs/Demo/faster_rcnn_R_50_FPN_nats_shapes.yaml",
    "standin": "configs/Demo/Base-Demo-RCNN-FPN.yaml",
}
TESTBED_CONFIGS = {
    "search": "configs/TestBed/search_testbed_R_50_FPN_G16.yaml",
    "baseline": "configs/TestBed/faster_rcnn_R_50_FPN_testbed.yaml",
    "nats": "configs/TestBed/faster_rcnn_R_50_FPN_nats_testbed.yaml",
    "standin": "configs/TestBed/Base-TestBed-RCNN-FPN.yaml",
}
SEARCH_CONFIG = DEMO_CONFIGS["search"]
STANDIN_BASE = DEMO_CONFIGS["standin"]
AP_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
MODELS = ("baseline", "nats", "random")
FIXED = "best_fixed"  # the summary's name of the fixed (calibration panel) architecture


def run_stage(out_dir, title, args):
    """Run ``args`` with this Python from the repository root unless ``out_dir`` completed."""
    marker = os.path.join(out_dir, "stage.json")
    if os.path.isfile(marker):
        with open(marker) as f:
            seconds = json.load(f)["seconds"]
        print(f"\n=== {title}: completed earlier ({seconds:.0f} s), skipped", flush=True)
        return seconds
    print(f"\n=== {title}\n$ {' '.join(args)}", flush=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)
    seconds = time.perf_counter() - start
    with atomic_open(marker, "w") as f:
        json.dump({"title": title, "seconds": seconds}, f)
    print(f"=== {title}: done in {seconds:.0f} s", flush=True)
    return seconds


def _final_metrics(output_dir):
    """The last bbox evaluation that Detectron2's trainer wrote to metrics.json."""
    with open(os.path.join(output_dir, "metrics.json")) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    evals = [r for r in rows if "bbox/AP" in r]
    if not evals:
        raise RuntimeError(f"{output_dir}/metrics.json has no bbox evaluation")
    return {k: evals[-1][f"bbox/{k}"] for k in AP_KEYS}


def standin_weights(*, opts=(), cache_dir=None, training=None, config=STANDIN_BASE):
    """Pretrain (or reuse) the stand-in for the demo's trunk; its path and held-out accuracy.
    Its metrics.json (the training curve) and standin.json are kept beside it, in the cache."""
    from detectron2.config import get_cfg
    from detectron2.utils.logger import setup_logger

    from projects.nats import add_nats_config
    from projects.nats.pretrain import ensure_standin_checkpoint

    setup_logger(name="projects")  # console only; Detectron2 caches it, so once per process
    setup_logger()
    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, config))
    cfg.merge_from_list(list(opts))
    path = ensure_standin_checkpoint(cfg, cache_dir=cache_dir, **(training or {}))
    with open(os.path.join(os.path.dirname(path), "standin.json")) as f:
        return path, json.load(f)["val_accuracy"]


def stage_intensities(architecture_file):
    """Per stage, the share of the searched convs' output channels per dilation (I^g pooled)."""
    from projects.nats.architecture import load_architecture

    arch = load_architecture(architecture_file)
    out = {}
    for name, block in arch.blocks.items():
        stage = out.setdefault(name.split(".")[0], {})
        for g in block.genotypes:
            key = f"{g.dilation[0]}x{g.dilation[1]}"
            stage[key] = stage.get(key, 0) + g.channels
    for stage, counts in out.items():
        total = sum(counts.values())
        cands = arch.candidates[stage]
        out[stage] = {f"{dh}x{dw}": counts.get(f"{dh}x{dw}", 0) / total for dh, dw in cands}
    return out


def mean_dilation(intensities):
    """Per stage, the sum over genotypes of I^g x sqrt(dh x dw) (1: every channel at dilation 1)."""
    out = {}
    for stage, shares in intensities.items():
        out[stage] = sum(
            share * math.sqrt(int(k.split("x")[0]) * int(k.split("x")[1]))
            for k, share in shares.items()
        )
    return out


def direction_check(searched, fixed, candidates):
    """Per stage: did the search move the mean dilation from the uniform start (every candidate
    equally likely) towards the fixed architecture's?

    Args:
        searched, fixed (dict): per stage, the mean dilation (:func:`mean_dilation`).
        candidates (dict): per stage, the candidate keys ``"dhxdw"`` (the uniform start).

    Returns:
        dict: per stage ``{"uniform", "searched", "fixed", "toward_fixed"}``; ``toward_fixed``
        is None where the fixed architecture's mean dilation equals the uniform one.
    """
    out = {}
    for stage, value in searched.items():
        uniform = mean_dilation({stage: {k: 1 / len(candidates[stage]) for k in candidates[stage]}})
        uniform, target = uniform[stage], fixed[stage]
        toward = None if target == uniform else (value - uniform) * (target - uniform) > 0
        out[stage] = {
            "uniform": uniform,
            "searched": value,
            "fixed": target,
            "toward_fixed": toward,
        }
    return out


def main_job_choice(calibration):
    """The test bed's variant for the main job and its fixed-architecture row, from the
    calibration (``bench_fixed_architectures.py``'s JSON), on its dev split only.

    A variant shows a planted optimum when its best hand-written panel architecture (``PANEL``:
    a dilation pattern; the random draws are controls, not answers) on dev is resolved against
    ``all_d1``: better than it, or, where ``all_d1`` itself is best, its runner-up resolved worse.
    The main job runs on the variant whose optimum is clearest (that contrast, in standard
    errors). A pattern resolved worse while neither it nor ``all_d1`` is the best is not an
    optimum. Where no variant shows one, it is the variant with the largest resolved difference
    of any panel architecture (the random controls included: there the test bed at least tells
    architectures apart), and ``planted_optimum_shown`` is False. Its fixed row is its best
    hand-written architecture on dev (the best other than ``all_d1`` where ``all_d1`` itself is
    best, so that the row differs from the baseline).

    Args:
        calibration (dict): the calibration's results (``analysis`` per variant).

    Returns:
        dict: ``variant``, ``fixed`` (a panel name), ``t_dev`` (that contrast in standard errors),
        ``contrast`` (the architecture of that contrast) and ``planted_optimum_shown``.

    Raises:
        ValueError: when no variant has a resolved difference on dev (the test bed cannot tell
            architectures apart, and the main job would prove nothing).
    """
    from projects.nats.architecture import PANEL

    def t_of(d):  # one seed: se None, not resolved
        if not d["resolved"]:
            return None
        return abs(d["mean"]) / d["se"] if d["se"] else math.inf

    def best_other(variant):
        table = calibration["analysis"][variant]["table"]
        others = [a for a in table if a in PANEL and a != "all_d1"]
        return max(others, key=lambda a: table[a]["dev"]["AP"]["mean"])

    best, planted = None, True
    for variant, res in calibration["analysis"].items():
        other = best_other(variant)
        d = res["vs_all_d1"].get("dev", {}).get(other)
        t = t_of(d) if d else None
        if t is not None and (t > best[0] if best else True):
            best = (t, variant, other)  # the best pattern better, or all_d1 best and it worse
    if best is None:  # no planted optimum: the clearest contrast of any panel architecture
        planted = False
        for variant, res in calibration["analysis"].items():
            for arch, d in res["vs_all_d1"].get("dev", {}).items():
                t = t_of(d)
                if t is not None and (t > best[0] if best else True):
                    best = (t, variant, arch)
    if best is None:
        raise ValueError(
            "the calibration resolved no difference between a panel architecture and all_d1 on "
            "dev in any variant: the test bed cannot tell architectures apart"
        )
    t, variant, arch = best
    return {
        "variant": variant,
        "fixed": best_other(variant),
        "t_dev": t,
        "contrast": arch,
        "planted_optimum_shown": planted,
    }


def model_cost(config_file):
    """Parameters of the whole detector and fvcore FLOPs of its backbone on one test-size
    input (the only part in which the three networks differ)."""
    import torch
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model
    from fvcore.nn import FlopCountAnalysis

    from projects.nats import add_nats_config

    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(config_file)
    model = build_model(cfg).eval()
    params = sum(p.numel() for p in model.parameters())
    size = (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
    image = torch.zeros(1, len(cfg.MODEL.PIXEL_MEAN), *size)
    flops = FlopCountAnalysis(model.backbone, image)
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(params), int(flops.total())


def run_pipeline(
    out,
    *,
    seed,
    test_datasets=None,
    scratch_baseline=False,
    opts=(),
    search_opts=(),
    standin_training=None,
    standin_cache=None,
    models=MODELS,
    configs=DEMO_CONFIGS,
    fixed_architecture=None,
    retrain_opts=(),
):
    """Run (or finish) every stage into ``out`` and return the summary (also written there).

    Args:
        out (str): the output folder.
        seed (int): ``SEED`` of the search and of every retraining, and the random
            architecture's seed; the datasets do not depend on it.
        test_datasets (tuple[str] or None): ``DATASETS.TEST`` of the retrainings (registered
            names); None: the configs' (``nats_shapes_val``).
        scratch_baseline (bool): also retrain the baseline from random initialisation (BN,
            nothing frozen) with the same budget: the evidence that weight reuse helps at all.
        opts (list[str]): ``KEY VALUE`` overrides of every config (stand-in trunk included).
        search_opts (list[str]): further overrides of the search config only.
        standin_training (dict or None): overrides of the stand-in's ``DEFAULT_TRAINING``.
        standin_cache (str or None): the stand-in's cache folder; None: the default.
        models (tuple[str]): which of ``MODELS`` to retrain (e.g. only "nats" to judge a search
            setting against runs that have the others); the random draw only with "random".
        configs (dict): the "search", "baseline", "nats" and "standin" config files
            (``DEMO_CONFIGS``, ``TESTBED_CONFIGS``).
        fixed_architecture (str or None): an architecture file (the test bed's best panel
            architecture) retrained as a fourth model, ``best_fixed``, with the NATS config; the
            summary's ``direction`` then says per stage whether the search moved towards it.
        retrain_opts (list[str]): further overrides of the retrainings only (e.g. the test bed
            variant's ``DATASETS.TRAIN``).

    Returns:
        dict: ``summary.json``'s content.
    """
    os.makedirs(out, exist_ok=True)
    times = {}
    start = time.perf_counter()
    weights, accuracy = standin_weights(
        opts=opts,
        cache_dir=standin_cache,
        training=standin_training,
        config=configs["standin"],
    )
    times["standin"] = time.perf_counter() - start
    print(f"=== ImageNet stand-in: {weights} (held-out accuracy {accuracy:.3f})", flush=True)
    common = ["MODEL.WEIGHTS", weights, "SEED", str(seed), *opts]
    test = ["DATASETS.TEST", repr(tuple(test_datasets))] if test_datasets else []
    test = list(retrain_opts) + test
    dirs = {k: os.path.join(out, k) for k in ("search", *MODELS, FIXED, "scratch")}
    arch_file = {
        "nats": os.path.join(dirs["search"], "architecture.json"),
        "random": os.path.join(dirs["random"], "architecture.json"),
    }
    times["search"] = run_stage(
        dirs["search"],
        "search",
        ["search_net.py", "--config-file", configs["search"], "--resume"]
        + ["OUTPUT_DIR", dirs["search"]]
        + common
        + list(search_opts),
    )
    if "random" in models:
        times["random_architecture"] = run_stage(
            os.path.join(dirs["random"], "draw"),
            "random architecture",
            ["tools/make_random_architecture.py", "--config-file", configs["search"]]
            + ["--seed", str(seed), "--output", arch_file["random"], *opts, *search_opts],
        )
    else:
        del arch_file["random"]
    nats_config = configs["nats"]
    retrain = {
        "baseline": (configs["baseline"], common),
        "nats": (nats_config, common + ["MODEL.NATS.ARCHITECTURE", arch_file["nats"]]),
        "random": (nats_config, common + ["MODEL.NATS.ARCHITECTURE", arch_file.get("random")]),
    }
    retrain = {k: v for k, v in retrain.items() if k in models}
    if fixed_architecture:
        arch_file[FIXED] = fixed_architecture
        retrain[FIXED] = (nats_config, common + ["MODEL.NATS.ARCHITECTURE", fixed_architecture])
    if scratch_baseline:
        scratch = common + ["MODEL.WEIGHTS", "", "MODEL.RESNETS.NORM", "BN"]
        retrain["scratch"] = (configs["baseline"], scratch + ["MODEL.BACKBONE.FREEZE_AT", "0"])
    for name, (config, opts) in retrain.items():
        times[name] = run_stage(
            dirs[name],
            f"retrain + evaluate: {name}",
            ["train_net.py", "--config-file", config, "--resume", "OUTPUT_DIR", dirs[name]]
            + opts
            + test,
        )
    erf_png = os.path.join(out, "erf.png")
    panels = []
    for name in retrain:
        config, final = (os.path.join(dirs[name], f) for f in ("config.yaml", "model_final.pth"))
        panels += ["--panel", f"{name}:{config}:{final}"]
    times["erf"] = run_stage(
        os.path.join(out, "erf"),
        "effective receptive fields",
        ["visualize_erf.py", "--output", erf_png] + panels,
    )
    with open(os.path.join(out, "erf.json")) as f:
        erf = json.load(f)["radii"]
    with open(os.path.join(dirs["search"], "search_decision.json")) as f:
        decision = json.load(f)
    intensities = {k: stage_intensities(v) for k, v in arch_file.items()}
    search = {
        stage: {**row, "intensities": intensities["nats"][stage]} for stage, row in decision.items()
    }
    models = {}
    for name in retrain:
        config = os.path.join(dirs[name], "config.yaml")
        params, flops = model_cost(config)
        models[name] = {
            **_final_metrics(dirs[name]),
            "params": params,
            "flops": flops,
            "erf": {f: r["radius90"] for f, r in erf[name].items()},
            "config_file": config,
            "weights": os.path.join(dirs[name], "model_final.pth"),
            "seconds": times[name],
        }
    summary = {
        "seed": seed,
        "configs": dict(configs),
        "standin": {"weights": weights, "val_accuracy": accuracy},
        "search": search,
        "random_intensities": intensities.get("random"),
        "fixed_intensities": intensities.get(FIXED),
        "direction": (
            direction_check(
                mean_dilation(intensities["nats"]),
                mean_dilation(intensities[FIXED]),
                {s: list(v) for s, v in intensities["nats"].items()},
            )
            if FIXED in intensities
            else None
        ),
        "models": models,
        "seconds": {**times, "total": sum(times.values())},
    }
    with atomic_open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    text = summary_markdown(summary)
    with atomic_open(os.path.join(out, "summary.md"), "w") as f:
        f.write(text)
    return summary


def summary_markdown(summary):
    """``summary.json`` as Markdown tables (also what the demo prints)."""
    lines = ["## Search (per stage)", ""]
    lines.append("| stage | K | ln K | entropy first | entropy last | stable groups | I^g (NATS) |")
    lines.append("|---|---|---|---|---|---|---|")
    for stage, row in summary["search"].items():
        share = ", ".join(f"{k} {v:.2f}" for k, v in row["intensities"].items() if v > 0)
        first, stable = row["entropy_first"], row["stable_share"]
        first = "-" if first is None else f"{first:.3f}"
        stable = "-" if stable is None else f"{stable:.0%}"
        lines.append(
            f"| {stage} | {row['num_candidates']} | {row['ln_K']:.3f} | {first} | "
            f"{row['entropy_last']:.3f} | {stable} | {share} |"
        )
    if summary.get("direction"):
        lines += ["", "## Direction: the search's mean dilation (sum of I^g x sqrt(dh x dw))", ""]
        lines.append("| stage | uniform start | searched | best fixed | moved towards it |")
        lines.append("|---|---|---|---|---|")
        for stage, d in summary["direction"].items():
            toward = {True: "yes", False: "no", None: "-"}[d["toward_fixed"]]
            lines.append(
                f"| {stage} | {d['uniform']:.2f} | {d['searched']:.2f} | {d['fixed']:.2f} | "
                f"{toward} |"
            )
    lines += ["", "## Retraining (one budget, same stand-in weights and seed)", ""]
    lines.append("| model | " + " | ".join(AP_KEYS) + " | params | backbone GFLOPs | time (s) |")
    lines.append("|---|" + "---|" * (len(AP_KEYS) + 3))
    for name, m in summary["models"].items():
        aps = " | ".join(f"{m[k]:.2f}" if not math.isnan(m[k]) else "nan" for k in AP_KEYS)
        lines.append(
            f"| {name} | {aps} | {m['params']:,} | {m['flops'] / 1e9:.3f} | {m['seconds']:.0f} |"
        )
    features = list(next(iter(summary["models"].values()))["erf"])
    lines += ["", "## ERF 90% radius (px)", "", "| model | " + " | ".join(features) + " |"]
    lines.append("|---|" + "---|" * len(features))
    for name, m in summary["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{m['erf'][f]:.0f}" for f in features) + " |")
    seconds = ", ".join(f"{k} {v:.0f}" for k, v in summary["seconds"].items())
    lines += ["", f"Wall time (s): {seconds}", ""]
    return "\n".join(lines)
