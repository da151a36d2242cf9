#!/usr/bin/env python
"""Weight-step time and peak memory of the NATS supernet vs. the stock detector, in one run.

Faster R-CNN R50-FPN (configs/NATS-Search/faster_rcnn_R_50_FPN_nats_search_G16.yaml: setting C,
G=16; random weights, BN), one 512x672 image with 5 boxes, one SGD weight step as the product runs
it: Detectron2's ``SimpleTrainer.run_step`` for the stock model, the search's
``SearchStepTrainer.run_step`` (architecture steps off) for the supernet. Each variant runs in its
own subprocess (so its peak RSS is its own); variants alternate for --rounds rounds and the
fastest round counts. The arithmetic floor is the ratio of fvcore FLOP counts (inference forward
of the whole detector).

The exact search ("supernet", the paper's mixing) sits beside the cheaper modes: "sampled"
(``MODEL.NATS.SEARCH.MODE sample``), "shared" (``SHARED_WEIGHTS True``) and both.

    python benchmarks/bench_supernet.py                   # CPU, 2 threads, ~12 minutes
    python benchmarks/bench_supernet.py --device cuda --steps 20
"""

import argparse
import ctypes
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

__all__ = ["worker", "flop_counts", "main"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

VARIANTS = {
    "stock": "build_resnet_fpn_backbone",
    "supernet": "build_nats_supernet_resnet_fpn_backbone",  # logits frozen, as in a weight step
    "supernet+logit grads": "build_nats_supernet_resnet_fpn_backbone",
    # the textbook mixed op (every candidate's output kept, scaled, summed) in a stock step
    "straightforward": "build_nats_supernet_resnet_fpn_backbone",
    # the cheaper search modes (MODEL.NATS.SEARCH.MODE / SHARED_WEIGHTS), in the search's step
    "sampled": "build_nats_supernet_resnet_fpn_backbone",
    "shared": "build_nats_supernet_resnet_fpn_backbone",
    "sampled+shared": "build_nats_supernet_resnet_fpn_backbone",
}
SEARCH_STEP_VARIANTS = ("supernet", "sampled", "shared", "sampled+shared")


def _straightforward_forward(self, x):
    """sum_g softmax(alpha)_g * conv_g(x), every candidate's output materialised."""
    mix = self.mixing_weights().to(dtype=x.dtype)
    outs = [
        F.conv2d(x, w, None, self.stride, d, d, self.groups)
        for d, w in zip(self.candidates, self.candidate_weights())
    ]
    out = sum(y * mix[None, :, i, None, None] for i, y in enumerate(outs))
    return self.norm(out) if self.norm is not None else out


def _rss_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak():
    """Return memory to the OS and restart the peak-RSS counter; the current RSS in kB."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass
    return _rss_kb("VmRSS")


def _build(args, variant):
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from projects.nats import add_nats_config
    from projects.nats.search.optim import arch_parameters, build_weight_optimizer

    cfg = get_cfg()
    add_nats_config(cfg)
    cfg.merge_from_file(os.path.join(ROOT, args.config))
    cfg.MODEL.DEVICE, cfg.MODEL.WEIGHTS = args.device, ""
    cfg.SOLVER.BASE_LR = args.base_lr
    cfg.MODEL.RESNETS.NORM = "BN"  # random init: FrozenBN (identity) lets activations blow up
    cfg.MODEL.BACKBONE.NAME = VARIANTS[variant]
    cfg.MODEL.NATS.SEARCH.MODE = "sample" if "sampled" in variant else "mix"
    cfg.MODEL.NATS.SEARCH.SHARED_WEIGHTS = "shared" in variant
    if args.roi_sampling_ratio is not None:
        cfg.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = args.roi_sampling_ratio
    if variant == "straightforward":
        from projects.nats.modeling.mixed_op import MixedDilationConv

        MixedDilationConv.forward = _straightforward_forward
    model = build_model(cfg)
    for _, alpha in arch_parameters(model):
        alpha.requires_grad_(variant == "supernet+logit grads")
    return cfg, model, build_weight_optimizer(cfg, model)


def _inputs(args):
    from detectron2.structures import Boxes, Instances

    h, w = args.size
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(5, 2, generator=gen) * torch.tensor([w * 0.6, h * 0.6])
    wh = torch.rand(5, 2, generator=gen) * 150 + 30
    inst = Instances((h, w))
    inst.gt_boxes = Boxes(torch.cat([xy, xy + wh], dim=1))
    inst.gt_classes = torch.randint(0, 80, (5,), generator=gen)
    image = (torch.rand(3, h, w, generator=gen) * 255).to(args.device)
    return [{"image": image, "instances": inst.to(args.device), "height": h, "width": w}]


class _RepeatLoader:
    """The same batch forever, with the interface ``SearchStepTrainer`` restarts loaders by."""

    def __init__(self, batch):
        self.batch, self.stream = batch, type("Stream", (), {"seed": 0})()

    def set_start_iter(self, start_iter):
        pass

    def __iter__(self):
        return itertools.repeat(self.batch)


def _step_trainer(variant, cfg, model, optimizer, batch):
    """The step the product runs: Detectron2's ``SimpleTrainer`` for the stock model; for the
    supernet, the search's ``SearchStepTrainer`` with weight steps only (logits frozen), its
    mixed ops' weights updated inside the backward as ``SearchTrainer`` sets it up."""
    from detectron2.engine import SimpleTrainer

    from projects.nats.search.fused_weight_update import fused_weight_update_params
    from projects.nats.search.optim import arch_parameters
    from projects.nats.search.sampling import SamplingSchedule
    from projects.nats.search.step import SearchStepTrainer

    if variant not in SEARCH_STEP_VARIANTS:  # Detectron2's step as it is
        return SimpleTrainer(model, _RepeatLoader(batch), optimizer)
    return SearchStepTrainer(
        model=model,
        data_loader=_RepeatLoader(batch),
        optimizer=optimizer,
        arch_data_loader=_RepeatLoader(batch),
        arch_optimizer=torch.optim.Adam([a for _, a in arch_parameters(model)]),
        arch_params=arch_parameters(model),
        arch_start_iter=10**9,  # weight steps only
        seed=0,
        fused_weight_update_params=fused_weight_update_params(cfg, model, optimizer),
        sampling=SamplingSchedule.from_config(cfg, 100),  # "sample": the draws change every step
    )


def worker(args, variant):
    """Build one variant, run warm-up + timed weight steps; print a JSON line."""
    from detectron2.utils.events import EventStorage

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cuda = args.device == "cuda"
    base_rss = _rss_kb("VmRSS")
    cfg, model, optimizer = _build(args, variant)
    model.train()
    trainer = _step_trainer(variant, cfg, model, optimizer, _inputs(args))
    times = []
    with EventStorage(0) as storage:  # the RPN/ROI heads and the trainer write metrics into it
        for i in range(args.warmup + args.steps):
            trainer.iter = storage.iter = i
            if cuda:
                torch.cuda.synchronize()
            t = time.perf_counter()
            trainer.run_step()
            if cuda:
                torch.cuda.synchronize()
            if i >= args.warmup:
                times.append(time.perf_counter() - t)
            if i + 1 == args.warmup:  # weights and optimizer state exist: what a step adds is next
                state_rss = _reset_peak()
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**20
        state = torch.cuda.memory_allocated() / 2**20
        process = torch.cuda.max_memory_reserved() / 2**20
    else:
        peak, state = (_rss_kb("VmHWM") - base_rss) / 1024, (state_rss - base_rss) / 1024
        process = _rss_kb("VmHWM") / 1024
    result = {"variant": variant, "times": times, "peak_mib": peak, "state_mib": state}
    result["process_mib"] = process
    print(json.dumps(result), flush=True)


def flop_counts(args):
    """fvcore FLOPs of the whole detector's inference forward, per variant."""
    from fvcore.nn import FlopCountAnalysis

    from projects.nats.compat import tracing_adapter_class

    torch.set_num_threads(args.threads)
    out = {}
    for variant in ("stock", "supernet"):
        _, model, _ = _build(args, variant)
        model.eval()
        inputs = [{"image": _inputs(args)[0]["image"]}]
        adapter = tracing_adapter_class()(model, inputs)
        flops = FlopCountAnalysis(adapter, adapter.flattened_inputs)
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_module = flops.by_module()
        out[variant] = (flops.total(), by_module.get("model.backbone.bottom_up", 0))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default="configs/NATS-Search/faster_rcnn_R_50_FPN_nats_search_G16.yaml"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(512, 672))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument(
        "--warmup",
        type=int,
        default=4,
        help="untimed steps first: the first 3-4 steps of a process are slower (page faults "
        "while the allocator settles)",
    )
    parser.add_argument(
        "--base-lr",
        type=float,
        default=0.0002,
        help="SOLVER.BASE_LR for every variant; random weights diverge within 5 steps at the "
        "config's 0.01",
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["stock", "supernet", "sampled", "shared", "sampled+shared"],
        choices=list(VARIANTS),
    )
    parser.add_argument(
        "--roi-sampling-ratio",
        type=int,
        default=None,
        help="MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO for every variant (default: the config's, "
        "0 = adaptive, whose RoIAlign cost grows with the proposals' sizes, and those differ "
        "between randomly initialised variants; e.g. 2: the same cost per proposal)",
    )
    parser.add_argument("--worker", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.roi_sampling_ratio is not None and args.roi_sampling_ratio < 0:
        parser.error(
            f"--roi-sampling-ratio must be >= 0 (0: adaptive), got {args.roi_sampling_ratio}"
        )
    if args.worker:
        return worker(args, args.worker)

    flops = flop_counts(args)
    keys = ("times", "peak_mib", "state_mib", "process_mib")
    results = {v: {k: [] for k in keys} for v in args.variants}
    for r in range(args.rounds):
        for variant in args.variants:
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", variant]
            cmd += [
                "--device",
                args.device,
                "--threads",
                str(args.threads),
                "--config",
                args.config,
            ]
            cmd += ["--size", *map(str, args.size), "--steps", str(args.steps)]
            cmd += ["--warmup", str(args.warmup), "--base-lr", str(args.base_lr)]
            if args.roi_sampling_ratio is not None:
                cmd += ["--roi-sampling-ratio", str(args.roi_sampling_ratio)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                sys.exit(f"worker {variant} failed:\n{proc.stderr[-3000:]}")
            res = json.loads(lines[-1])
            results[variant]["times"].append(statistics.median(res["times"]))
            results[variant]["peak_mib"].append(res["peak_mib"])
            results[variant]["state_mib"].append(res["state_mib"])
            results[variant]["process_mib"].append(res["process_mib"])
            print(f"round {r}: {variant}: {results[variant]['times'][-1]:.3f} s/step", flush=True)

    (f_stock, b_stock), (f_super, b_super) = flops["stock"], flops["supernet"]
    floor = f_super / f_stock
    ratio = args.roi_sampling_ratio
    print(
        f"\nFaster R-CNN R50-FPN, {args.size[0]}x{args.size[1]}, 1 image, device={args.device}, "
        f"{args.threads} threads; best of {args.rounds} rounds x median of {args.steps} steps "
        f"after {args.warmup}; base LR {args.base_lr}; "
        f"RoI sampling ratio {'of the config' if ratio is None else ratio}"
    )
    print(
        f"fvcore GFLOPs (inference): stock {f_stock / 1e9:.1f} (bottom-up {b_stock / 1e9:.1f}), "
        f"supernet {f_super / 1e9:.1f} (bottom-up {b_super / 1e9:.1f}) -> floor {floor:.3f}x"
    )
    base = {k: min(v) if k == "times" else max(v) for k, v in results["stock"].items()}
    header = (
        f"{'variant':<22}{'s/step':>8}{'time x':>8}{'/ floor':>8}{'peak MiB':>10}{'mem x':>7}"
        f"{'process MiB':>13}{'proc x':>8}{'state MiB':>11}{'step MiB':>10}{'step x':>8}"
    )
    print(header + "\n" + "-" * len(header))
    for variant in args.variants:
        res = results[variant]
        t, m, st = min(res["times"]), max(res["peak_mib"]), max(res["state_mib"])
        proc = max(res["process_mib"])
        # a sampled step convolves each channel once, as the stock step does: floor 1
        vs_floor = (t / base["times"]) / (
            1.0 if variant == "stock" or "sampled" in variant else floor
        )
        step, base_step = m - st, base["peak_mib"] - base["state_mib"]
        print(
            f"{variant:<22}{t:>8.2f}{t / base['times']:>8.3f}{vs_floor:>8.3f}{m:>10.0f}"
            f"{m / base['peak_mib']:>7.3f}{proc:>13.0f}{proc / base['process_mib']:>8.3f}"
            f"{st:>11.0f}{step:>10.0f}{step / base_step:>8.3f}"
        )
    print(
        "peak: the model's own memory, weights + optimizer state + the step's transient memory "
        "(RSS above the interpreter with torch imported, before the build; CUDA: max allocated); "
        "process: the whole process's peak RSS, as /usr/bin/time reports it (CUDA: max reserved); "
        "state: after the warm-up step (the stock SimpleTrainer keeps the gradients, the search "
        "step frees them); step = peak - state"
    )


if __name__ == "__main__":
    main()
