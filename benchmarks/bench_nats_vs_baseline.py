#!/usr/bin/env python
"""The experiment behind the main job: NATS against the stock baseline and a random architecture
over several seeds, with paired differences and their t-based 95% confidence intervals.

For every seed, the main job's pipeline (``scripts/pipeline.py``: ImageNet stand-in, search,
random architecture, three retrainings with one budget) plus a fourth row, the baseline trained
from random initialisation with the same budget. A seed changes the search's and the
retrainings' seeds and the random architecture, never the datasets or the stand-in. Primary
endpoint: AP; the other columns are secondary. Decisions: the mean pairwise total-variation
distance between seeds of the per-stage intensities I^g, for the searched and for the random
architectures (a search that decides reproducibly agrees with itself more than chance does).

    python benchmarks/bench_nats_vs_baseline.py --seeds 0 1 2 3 4 [--test-datasets NAME ...]
"""

import argparse
import itertools
import json
import math
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "scripts")]

from pipeline import AP_KEYS, run_pipeline  # noqa: E402

from projects.nats.atomic import atomic_open  # noqa: E402

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip


def paired(a, b):
    """Mean of a - b and its t-based 95% interval (None with fewer than two pairs; a nan mean
    and None where a value is nan, e.g. APm of a split without medium objects)."""
    d = [x - y for x, y in zip(a, b)]
    if any(math.isnan(x) for x in d):
        return float("nan"), None
    mean = statistics.fmean(d)
    if len(d) < 2:
        return mean, None
    half = T975[min(len(d) - 1, len(T975)) - 1] * statistics.stdev(d) / math.sqrt(len(d))
    return mean, (mean - half, mean + half)


def mean_pairwise_tv(intensity_sets):
    """Mean over pairs of runs and over stages of the total-variation distance of I^g."""
    values = []
    for a, b in itertools.combinations(intensity_sets, 2):
        for stage in a:
            values.append(0.5 * sum(abs(a[stage][k] - b[stage][k]) for k in a[stage]))
    return statistics.fmean(values) if values else float("nan")


def report(runs):
    """The experiment's Markdown table from the per-seed summaries."""
    models = list(runs[0]["models"])
    lines = [f"{len(runs)} seeds: {[r['seed'] for r in runs]}", ""]
    lines.append("| model | " + " | ".join(AP_KEYS) + " |")
    lines.append("|---|" + "---|" * len(AP_KEYS))
    for m in models:
        cells = []
        for k in AP_KEYS:
            v = [r["models"][m][k] for r in runs]
            sd = statistics.stdev(v) if len(v) > 1 else float("nan")
            cells.append(f"{statistics.fmean(v):.2f} ± {sd:.2f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "| paired difference | " + " | ".join(AP_KEYS) + " |"]
    lines.append("|---|" + "---|" * len(AP_KEYS))
    for a, b in (("nats", "baseline"), ("nats", "random"), ("baseline", "scratch")):
        if b not in models:
            continue
        cells = []
        for k in AP_KEYS:
            mean, ci = paired([r["models"][a][k] for r in runs], [r["models"][b][k] for r in runs])
            cells.append(f"{mean:+.2f}" + ("" if ci is None else f" [{ci[0]:+.2f}, {ci[1]:+.2f}]"))
        lines.append(f"| {a} - {b} | " + " | ".join(cells) + " |")
    tv_nats = mean_pairwise_tv(
        [{s: r["intensities"] for s, r in x["search"].items()} for x in runs]
    )
    tv_random = mean_pairwise_tv([x["random_intensities"] for x in runs])
    lines += [
        "",
        f"Mean pairwise TV distance of per-stage I^g between seeds: searched {tv_nats:.3f}, "
        f"random {tv_random:.3f} (lower: the decisions agree more).",
    ]
    for stage in runs[0]["search"]:
        rows = [r["search"][stage] for r in runs]
        lines.append(
            f"{stage}: entropy last / ln K {statistics.fmean(x['entropy_last'] for x in rows):.3f}"
            f" / {rows[0]['ln_K']:.3f}, stable groups "
            f"{statistics.fmean(x['stable_share'] or 0 for x in rows):.0%}"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--output", default="output/experiment")
    parser.add_argument("--test-datasets", nargs="+", default=None, help="DATASETS.TEST")
    args = parser.parse_args()
    runs = []
    for seed in args.seeds:
        out = os.path.join(args.output, f"seed{seed}")
        runs.append(
            run_pipeline(out, seed=seed, test_datasets=args.test_datasets, scratch_baseline=True)
        )
    text = report(runs)
    with atomic_open(os.path.join(args.output, "experiment.md"), "w") as f:
        f.write(text)
    with atomic_open(os.path.join(args.output, "experiment.json"), "w") as f:
        json.dump(runs, f, indent=1)
    print(text)


if __name__ == "__main__":
    main()
