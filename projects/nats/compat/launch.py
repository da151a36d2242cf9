"""``launch`` for ``--num-gpus N`` on machines with or without CUDA: N processes over NCCL on GPUs
(Detectron2's own ``launch``), over gloo on CPU, one process per "GPU".

Where Detectron2 v0.6 and main differ, and what the CPU path has to add to both:

* v0.6's ``_distributed_worker`` asserts CUDA and always uses NCCL; main's falls back to gloo and
  sets up the local process group with the public ``comm.create_local_process_group``. On v0.6
  the CPU processes are spawned here, set up as its worker sets them up (gloo instead of NCCL,
  no ``torch.cuda.set_device``); the local group is ``comm._LOCAL_PROCESS_GROUP``, private, but
  it is the only way v0.6 offers (its worker assigns it the same way).
* On both, ``DefaultTrainer`` wraps the model with ``create_ddp_model(model,
  broadcast_buffers=False)``, which passes ``device_ids=[local_rank]``; PyTorch refuses
  ``device_ids`` for a CPU module. In the CPU processes started here (and only there),
  ``detectron2.engine.defaults.create_ddp_model`` gets ``device_ids=None`` for a CPU model: the
  module attribute DefaultTrainer calls, patched because it offers no other hook.
* PyTorch's ``SyncBatchNorm`` (``NORM: "SyncBN"``) refuses CPU tensors once several processes
  run, so such a config is refused before any process starts, naming the key and the norms that
  run on CPU; ``MODEL.DEVICE`` must be ``cpu`` there.
"""

import functools
import importlib
import logging
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.utils import comm

# the module (``detectron2.engine.launch`` as an attribute is the function it exports)
d2_launch_module = importlib.import_module("detectron2.engine.launch")

__all__ = ["launch", "check_cpu_processes", "CPU_NORMS"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = timedelta(minutes=30)
# Detectron2's get_norm names that run on CPU in several processes (naiveSyncBN all-reduces its
# statistics with torch.distributed, which gloo does on CPU); "" is no norm.
CPU_NORMS = ("BN", "FrozenBN", "GN", "naiveSyncBN", "")
# main's launch falls back to gloo without CUDA; it came with create_local_process_group
_D2_LAUNCH_RUNS_ON_CPU = hasattr(comm, "create_local_process_group")


def launch(
    main_func,
    num_gpus_per_machine,
    num_machines=1,
    machine_rank=0,
    dist_url=None,
    args=(),
    timeout=DEFAULT_TIMEOUT,
):
    """Detectron2's ``launch``, which also runs several processes on a machine without CUDA.

    Args:
        main_func: called as ``main_func(*args)`` in every process.
        num_gpus_per_machine (int): processes per machine (``--num-gpus``): GPUs where CUDA is
            available, else CPU processes over gloo.
        num_machines (int): the total number of machines.
        machine_rank (int): the rank of this machine.
        dist_url (str): the processes' rendezvous, e.g. ``"tcp://127.0.0.1:8686"``; ``"auto"``
            picks a free local port (one machine only).
        args (tuple): ``main_func``'s arguments. Where the first is Detectron2's
            ``default_argument_parser()`` namespace, a CPU run of several processes checks its
            config first (:func:`check_cpu_processes`).
        timeout (timedelta): timeout of the process group.
    """
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1 or torch.cuda.is_available():
        return d2_launch_module.launch(
            main_func, num_gpus_per_machine, num_machines, machine_rank, dist_url, args, timeout
        )
    cfg = _cfg_from_args(args)
    if cfg is not None:
        check_cpu_processes(cfg, num_processes=num_gpus_per_machine)
    logger.info(f"No CUDA: {num_gpus_per_machine} CPU processes per machine over gloo")
    run = functools.partial(_run_with_cpu_ddp, main_func)
    if _D2_LAUNCH_RUNS_ON_CPU:
        return d2_launch_module.launch(
            run, num_gpus_per_machine, num_machines, machine_rank, dist_url, args, timeout
        )
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError("--dist-url auto works on one machine; give tcp://HOST:PORT")
        # private in both versions, the same helper their launch uses for "auto"
        dist_url = f"tcp://127.0.0.1:{d2_launch_module._find_free_port()}"
    worker_args = (run, world_size, num_gpus_per_machine, machine_rank, dist_url, args, timeout)
    mp.start_processes(_cpu_worker, nprocs=num_gpus_per_machine, args=worker_args, daemon=False)


def check_cpu_processes(cfg, *, num_processes):
    """Refuse a config that cannot run in ``num_processes`` CPU processes (no CUDA).

    Args:
        cfg (CfgNode): the run's config.
        num_processes (int): processes per machine (``--num-gpus``).

    Raises:
        ValueError: naming ``MODEL.DEVICE`` unless it is ``cpu``, or every ``*.NORM`` key set to
            a norm that does not run on CPU in several processes (``SyncBN``), with the
            accepted values.
    """
    if num_processes <= 1:
        return
    if cfg.MODEL.DEVICE != "cpu":
        raise ValueError(
            f"--num-gpus {num_processes} without CUDA runs CPU processes: MODEL.DEVICE "
            f"{cfg.MODEL.DEVICE!r} must be 'cpu'"
        )
    bad = [k for k, v in _norm_keys(cfg, "") if v not in CPU_NORMS]
    if bad:
        raise ValueError(
            f"--num-gpus {num_processes} without CUDA: {', '.join(bad)} = SyncBN needs CUDA "
            f"(torch's SyncBatchNorm refuses CPU tensors in several processes); on CPU use one "
            f"of {list(CPU_NORMS)} (e.g. {bad[0]} naiveSyncBN, which synchronizes over gloo)"
        )


def _norm_keys(node, prefix):
    for key, value in node.items():
        name = f"{prefix}{key}"
        if hasattr(value, "items"):
            yield from _norm_keys(value, f"{name}.")
        elif key == "NORM" and value == "SyncBN":
            yield name, value


def _cfg_from_args(args):
    """The config the scripts' ``setup`` builds, where ``args[0]`` is their namespace."""
    if not args or not hasattr(args[0], "config_file") or not hasattr(args[0], "opts"):
        return None
    from detectron2.config import get_cfg

    from projects.nats.config import add_nats_config  # here: projects.nats imports compat

    cfg = get_cfg()
    add_nats_config(cfg)
    if args[0].config_file:
        cfg.merge_from_file(args[0].config_file)
    cfg.merge_from_list(args[0].opts)
    return cfg


def _cpu_worker(
    local_rank, main_func, world_size, num_per_machine, machine_rank, dist_url, args, timeout
):
    """v0.6's ``_distributed_worker`` with gloo and without CUDA."""
    rank = machine_rank * num_per_machine + local_rank
    try:
        dist.init_process_group(
            backend="gloo", init_method=dist_url, world_size=world_size, rank=rank, timeout=timeout
        )
    except Exception:
        logger.error(f"Process group URL: {dist_url}")
        raise
    assert comm._LOCAL_PROCESS_GROUP is None
    for i in range(world_size // num_per_machine):
        group = dist.new_group(list(range(i * num_per_machine, (i + 1) * num_per_machine)))
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group  # v0.6 has no setter (main: create_local_...)
    comm.synchronize()
    main_func(*args)


def _run_with_cpu_ddp(main_func, *args):
    """``main_func(*args)`` with DefaultTrainer's DDP wrapping accepting a CPU model."""
    from detectron2.engine import defaults

    stock = defaults.create_ddp_model

    @functools.wraps(stock)
    def create_ddp_model(model, **kwargs):
        if next(model.parameters()).device.type == "cpu":
            kwargs.setdefault("device_ids", None)
        return stock(model, **kwargs)

    defaults.create_ddp_model = create_ddp_model
    return main_func(*args)
