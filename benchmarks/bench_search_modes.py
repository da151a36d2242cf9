#!/usr/bin/env python
"""The quality of the cheaper search modes: the architectures that a sampled search (and a
sampled search with shared weights) finds, retrained, against the exact search's.

Protocol (fixed before any number): the main job's pipeline with the same seeds, the same
stand-in checkpoint and the same retraining budget as ``bench_nats_vs_baseline.py``, whose run
(``--exact``) supplies the exact mode's searches and retrainings; per mode and seed only the
search (with ``MODEL.NATS.SEARCH.MODE`` / ``SHARED_WEIGHTS``) and the NATS retraining run here.
The same script judges the aligned decoding (``--modes aligned``): the exact search, which
repeats the ``--exact`` run's search bit for bit, decoded with ``MODEL.NATS.DECODE``.
Primary endpoint: AP on ``nats_shapes_val``; the paired difference to the exact mode with its
t-based 95% interval; equivalence is claimed only if that interval lies within +-1 AP.

    python benchmarks/bench_search_modes.py --exact output/experiment --seeds 0 1 2 3 4
    python benchmarks/bench_search_modes.py --modes exact aligned+cap1   # the reference rerun
"""

import argparse
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts"), os.path.dirname(os.path.abspath(__file__))]

from bench_nats_vs_baseline import paired  # noqa: E402
from pipeline import run_pipeline  # noqa: E402

from projects.nats.atomic import atomic_open  # noqa: E402

# the exact search, decoded with aligned channel counts (MODEL.NATS.DECODE): 8 on the demo's
# quarter-width R50 gives each block as many alignment units as 16 at full width (res3: 8)
ALIGNED = ["MODEL.NATS.DECODE.ALIGN_CHANNELS", "8"]
MODES = {
    "sampled": ["MODEL.NATS.SEARCH.MODE", "sample"],
    "sampled+shared": [
        "MODEL.NATS.SEARCH.MODE",
        "sample",
        "MODEL.NATS.SEARCH.SHARED_WEIGHTS",
        "True",
    ],
    "shared": ["MODEL.NATS.SEARCH.SHARED_WEIGHTS", "True"],
    "aligned": ALIGNED,
    # the same with at most 3 or 2 genotypes per block
    "aligned+cap3": ALIGNED + ["MODEL.NATS.DECODE.MAX_GENOTYPES", "3"],
    "aligned+cap2": ALIGNED + ["MODEL.NATS.DECODE.MAX_GENOTYPES", "2"],
    "aligned+cap1": ALIGNED + ["MODEL.NATS.DECODE.MAX_GENOTYPES", "1"],
    # the exact search and its NATS retraining again, as the reference where no --exact run is
    "exact": [],
}
EQUIVALENCE_MARGIN = 1.0  # AP points


def report(exact, runs):
    """Markdown: per mode, AP mean ± sd, the paired difference to the exact mode, search time."""
    lines = [
        f"{len(exact)} seeds: {[r['seed'] for r in exact]}",
        "",
        "| search mode | AP | AP50 | APs | APl | AP - exact AP (95% CI) | equivalent (+-1 AP) "
        "| search s | res3/res4/res5 entropy last / ln K |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for mode, per_seed in {"exact": exact, **runs}.items():
        cells = []
        for k in ("AP", "AP50", "APs", "APl"):
            v = [r["models"]["nats"][k] for r in per_seed]
            cells.append(f"{statistics.fmean(v):.2f} ± {statistics.stdev(v):.2f}")
        if mode == "exact":
            diff, verdict = "-", "-"
        else:
            mean, ci = paired(
                [r["models"]["nats"]["AP"] for r in per_seed],
                [r["models"]["nats"]["AP"] for r in exact],
            )
            diff = f"{mean:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"
            verdict = "yes" if -EQUIVALENCE_MARGIN < ci[0] and ci[1] < EQUIVALENCE_MARGIN else "no"
        seconds = statistics.fmean(r["seconds"]["search"] for r in per_seed)
        ratios = {
            s: statistics.fmean(
                r["search"][s]["entropy_last"] / r["search"][s]["ln_K"] for r in per_seed
            )
            for s in ("res3", "res4", "res5")
        }
        entropy = "/".join(f"{v:.2f}" for v in ratios.values())
        lines.append(
            f"| {mode} | "
            + " | ".join(cells)
            + f" | {diff} | {verdict} | {seconds:.0f} | {entropy} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--exact",
        help="bench_nats_vs_baseline.py's --output (required unless --modes has exact, whose "
        "runs are then the reference)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--modes", nargs="+", default=["sampled", "sampled+shared"], choices=list(MODES)
    )
    parser.add_argument("--output", default="output/search_modes")
    args = parser.parse_args()
    if (args.exact is None) == ("exact" not in args.modes):
        parser.error("give either --exact or the mode exact (the reference), not both or neither")
    exact = []
    for seed in args.seeds if args.exact else ():
        path = os.path.join(args.exact, f"seed{seed}", "summary.json")
        if not os.path.isfile(path):
            sys.exit(
                f"--exact {args.exact}: {path} is missing: run bench_nats_vs_baseline.py first"
            )
        with open(path) as f:
            exact.append(json.load(f))
    runs = {}
    for mode in args.modes:
        runs[mode] = [
            run_pipeline(
                os.path.join(args.output, mode.replace("+", "_"), f"seed{seed}"),
                seed=seed,
                search_opts=MODES[mode],
                models=("nats",),
            )
            for seed in args.seeds
        ]
    if not args.exact:
        exact = runs.pop("exact")
    text = report(exact, runs)
    with atomic_open(os.path.join(args.output, "search_modes.md"), "w") as f:
        f.write(text)
    with atomic_open(os.path.join(args.output, "search_modes.json"), "w") as f:
        json.dump({"exact": exact, **runs}, f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
