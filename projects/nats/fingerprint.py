"""What a checkpoint was trained for, and the check that it fits the network it is loaded into.

:class:`~projects.nats.checkpoint.NATSCheckpointer` writes :func:`describe_model` under the
checkpoint's top-level key ``"nats"`` (:data:`CHECKPOINT_KEY`), and ``tools/carry_over.py``
writes :func:`describe_architecture` of the decoded network it made. A description holds plain
types only::

    {"version": 1, "kind": "supernet",
     "search_space": {"res3.0": {"candidates": [[1, 1], [2, 2]], "num_groups": 4}, ...}}
    (a block of a shared-weights supernet adds "shared_weights": true)
    {"version": 1, "kind": "decoded", "fingerprint": "<sha256 hex>",
     "architecture_file": "output/.../architecture.json", "blocks": {"res3.0": "1x1:8,2x2:8", ...}}
    {"version": 1, "kind": "stock"}

A decoded network's fingerprint is the SHA-256 of its architecture's canonical content (groups,
candidates, and per block the genotypes, their channels and channel groups; not ``meta``), so a
copy of the file elsewhere fits. :func:`check_checkpoint_fits` refuses a supernet or decoded
checkpoint that does not describe the model exactly; stock checkpoints and files without the key
(ImageNet ``.pkl``, torchvision, Detectron2's model zoo) load as Detectron2 loads them, except a
supernet state dict (found by its ``.conv2.alpha`` / ``.conv2.replicas.`` keys) going into a
network that is not a supernet with the same logits' shapes and replicas.
"""

import hashlib
import json
from collections import defaultdict

from .search_space import replica_key, split_block_path

__all__ = [
    "CHECKPOINT_KEY",
    "CheckpointMismatchError",
    "architecture_fingerprint",
    "describe_architecture",
    "describe_model",
    "check_checkpoint_fits",
]

CHECKPOINT_KEY = "nats"
VERSION = 1
KINDS = ("supernet", "decoded", "stock")
CARRY_OVER = (
    "tools/carry_over.py --supernet {path} --architecture <the architecture.json decoded from it> "
    "--output decoded_init.pth, then MODEL.WEIGHTS decoded_init.pth"
)


class CheckpointMismatchError(ValueError):
    """A checkpoint that was trained for another network than the one it is loaded into."""


def _dil(d):
    return replica_key(d)


def architecture_fingerprint(arch):
    """SHA-256 (hex) of ``arch``'s canonical content: all of the file but ``meta``.

    Args:
        arch (Architecture): a decoded architecture.

    Returns:
        str: 64 hex digits; equal for architectures that build the same decoded network from the
        same search (channel groups listed in any order, blocks in any order).
    """
    content = arch.to_dict()
    content.pop("meta", None)
    for block in content["blocks"].values():
        for genotype in block["genotypes"]:
            genotype["groups"] = sorted(genotype["groups"])
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def describe_architecture(arch, *, source=None):
    """The description of the decoded network of ``arch`` (see the module docstring).

    Args:
        arch (Architecture): a decoded architecture.
        source (str or None): the architecture file it was read from, named in error messages.

    Returns:
        dict: ``{"version", "kind": "decoded", "fingerprint", "architecture_file", "blocks"}``,
        ``blocks`` mapping each block name to its genotypes, e.g. ``"1x1:96,2x2:160"``.
    """
    blocks = {
        name: ",".join(f"{_dil(g.dilation)}:{g.channels}" for g in b.genotypes)
        for name, b in sorted(arch.blocks.items())
    }
    return {
        "version": VERSION,
        "kind": "decoded",
        "fingerprint": architecture_fingerprint(arch),
        "architecture_file": source,
        "blocks": blocks,
    }


def describe_model(model):
    """What ``model`` is: a supernet (its search space), a decoded network, or a stock one.

    A decoded network is found by the ``nats_architecture`` attribute that
    :func:`~projects.nats.modeling.apply_architecture` sets on its ResNet.

    Args:
        model (nn.Module): a detector, a backbone, or a module wrapping one (DDP).

    Returns:
        dict: its description (see the module docstring).
    """
    from .modeling.mixed_op import mixed_ops  # the modeling package imports this one's users

    ops = mixed_ops(model)
    if ops:
        space = {
            name: {
                "candidates": [list(d) for d in op.candidates],
                "num_groups": op.num_groups,
                **({"shared_weights": True} if op.shared_weights else {}),
            }
            for name, op in sorted(ops)
        }
        return {"version": VERSION, "kind": "supernet", "search_space": space}
    for module in model.modules():
        arch = getattr(module, "nats_architecture", None)
        if arch is not None:
            source = getattr(module, "nats_architecture_file", None)
            return describe_architecture(arch, source=source)
    return {"version": VERSION, "kind": "stock"}


def _legacy_supernet(state_dict):
    """Per searched block of a supernet state dict: logits' groups, candidates and replicas."""
    blocks = defaultdict(lambda: {"num_groups": None, "num_candidates": None, "replicas": []})
    for key, value in state_dict.items():
        if not isinstance(key, str) or ".conv2." not in key:
            continue
        head, _, tail = key.partition(".conv2.")
        found = split_block_path(head + ".conv2")
        if found is None:
            continue
        if tail == "alpha" and len(getattr(value, "shape", ())) == 2:
            blocks[found[1]]["num_groups"], blocks[found[1]]["num_candidates"] = value.shape
        elif tail.startswith("replicas."):
            blocks[found[1]]["replicas"].append(tail[len("replicas.") :])
    return {n: dict(b, replicas=sorted(b["replicas"])) for n, b in sorted(blocks.items())}


def _legacy_of(space):
    """``_legacy_supernet``'s view of a described search space (the anchor has no replica)."""
    out = {}
    for name, entry in space.items():
        cands = [tuple(d) for d in entry["candidates"]]
        anchor = (1, 1) if (1, 1) in cands else cands[0]
        shared = entry.get("shared_weights", False)  # one weight: no replicas
        replicas = [] if shared else sorted(_dil(d) for d in cands if d != anchor)
        out[name] = {
            "num_groups": entry["num_groups"],
            "num_candidates": len(cands),
            "replicas": replicas,
        }
    return out


def _space_entry(entry):
    if "candidates" in entry:
        cands = ", ".join(_dil(d) for d in entry["candidates"])
        shared = ", one shared weight" if entry.get("shared_weights") else ""
        return f"[{cands}] x {entry['num_groups']} groups{shared}"
    return (
        f"{entry['num_candidates']} candidates (replicas {entry['replicas']}) x "
        f"{entry['num_groups']} groups"
    )


def _summary(desc):
    """One line naming what ``desc`` describes."""
    if desc["kind"] == "stock":
        return "a stock network (no searched or decoded convs)"
    if desc["kind"] == "decoded":
        where = desc.get("architecture_file") or "an architecture file"
        return f"the decoded network of architecture sha256:{desc['fingerprint'][:12]} ({where})"
    stages = defaultdict(set)
    for name, entry in desc["search_space"].items():
        stages[name.split(".")[0]].add(_space_entry(entry))
    legacy = " (found by its keys: no 'nats' description)" if desc.get("legacy") else ""
    per_stage = "; ".join(f"{s}: {' / '.join(sorted(e))}" for s, e in sorted(stages.items()))
    return f"a supernet{legacy} searching {per_stage}"


def _differences(mine, theirs, show):
    """The blocks whose entries differ, those that differ alike named together."""
    alike = defaultdict(list)
    for name in sorted(set(mine) | set(theirs)):
        if mine.get(name) != theirs.get(name):
            a = show(mine[name]) if name in mine else "-"
            b = show(theirs[name]) if name in theirs else "-"
            alike[(a, b)].append(name)
    parts = [f"{', '.join(n)}: checkpoint {a}, model {b}" for (a, b), n in alike.items()]
    more = f"; and {len(parts) - 4} more" if len(parts) > 4 else ""
    return "; ".join(parts[:4]) + more


def check_checkpoint_fits(checkpoint, model, *, path):
    """Refuse a checkpoint that was trained for another network than ``model``.

    Args:
        checkpoint (dict): the loaded file, ``{"model": state_dict, ...}``, as the checkpointer's
            ``_load_file`` returns it.
        model (nn.Module): the network it is about to be loaded into.
        path (str): the checkpoint's file, named in the message.

    Raises:
        CheckpointMismatchError: naming ``path``, what the checkpoint was trained for, what
            ``model`` is and the remedy, when a supernet or decoded checkpoint does not fit.
        ValueError: for a ``"nats"`` entry of an unknown version or kind.
    """
    got = checkpoint.get(CHECKPOINT_KEY)
    if got is None:
        state_dict = checkpoint.get("model")
        legacy = _legacy_supernet(state_dict) if isinstance(state_dict, dict) else {}
        if not legacy:
            return  # ImageNet, torchvision, stock or older decoded checkpoints: Detectron2's way
        got = {"version": VERSION, "kind": "supernet", "search_space": legacy, "legacy": True}
    elif not isinstance(got, dict) or got.get("version") != VERSION or got.get("kind") not in KINDS:
        raise ValueError(
            f"checkpoint {path}: its '{CHECKPOINT_KEY}' entry {got!r} is not a version {VERSION} "
            f"description with kind in {list(KINDS)} (written by a newer NATS-D2?)"
        )
    if got["kind"] == "stock":
        return
    want = describe_model(model)
    head = f"checkpoint {path} was trained for {_summary(got)}, but this model is {_summary(want)}"
    if got["kind"] == "supernet" and want["kind"] == "supernet":
        space = _legacy_of(want["search_space"]) if got.get("legacy") else want["search_space"]
        if got["search_space"] == space:
            return
        diff = _differences(got["search_space"], space, _space_entry)
        raise CheckpointMismatchError(
            f"{head}. The search spaces differ (MODEL.NATS.STAGES/CANDIDATES/GROUPS): {diff}. "
            "The logits' columns follow the candidates' order, so they would mean other "
            "dilations: resume with the search space of that run's config.yaml, or search "
            "afresh in another OUTPUT_DIR"
        )
    if got["kind"] == "decoded" and want["kind"] == "decoded":
        if got["fingerprint"] == want["fingerprint"]:
            return
        diff = _differences(got["blocks"], want["blocks"], str) or (
            "the blocks' genotypes and channels agree; the files differ in candidates, channel "
            "groups or the group division"
        )
        raise CheckpointMismatchError(
            f"{head}. Blocks that differ: {diff}. Set MODEL.NATS.ARCHITECTURE to the architecture "
            f"file it was trained with ({got.get('architecture_file') or 'unknown'})"
        )
    if got["kind"] == "supernet":
        remedy = "a supernet's weights reach a decoded network through " + CARRY_OVER.format(
            path=path
        )
    else:
        remedy = (
            f"load it into the decoded network of its architecture (MODEL.NATS.ARCHITECTURE "
            f"{got.get('architecture_file') or '<its architecture file>'})"
        )
    raise CheckpointMismatchError(f"{head}: {remedy}")
