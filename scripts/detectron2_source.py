#!/usr/bin/env python3
"""Detectron2 sources for ``scripts/setup_env.py`` (stdlib only): open one, install its Python
package, and the pins it asks for.

A source is a Detectron2 checkout, an unpacked source tree or a tarball of either (``git archive``,
GitHub's tarballs, the registry's ``pb1-detectron2`` sdist): a folder, or one top folder in the
tarball, holding ``detectron2/`` (and, for a checkout, ``setup.py`` and ``configs/``).

Run with a venv's Python, ``python scripts/detectron2_source.py --resolve SRC LOCK OVERLAY``
prints the pins that the source's ``install_requires`` needs beyond ``LOCK``, taken from
``OVERLAY`` (a SetupError naming the requirement where neither has a fitting pin).
"""

import ast
import contextlib
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile

__all__ = ["open_source", "fingerprint", "install_python_sources", "install_requires"]


class SourceError(Exception):
    """A Detectron2 source that cannot be used; printed without a traceback."""


def fingerprint(source):
    """What identifies ``source`` for the set-up stamp: a tarball's sha256, a folder's path and
    the newest modification time of its Python files."""
    if os.path.isfile(source):
        with open(source, "rb") as f:
            return "sha256:" + hashlib.sha256(f.read()).hexdigest()
    newest = 0.0
    for folder, _, files in os.walk(os.path.join(source, "detectron2")):
        for name in files:
            if name.endswith(".py"):
                newest = max(newest, os.path.getmtime(os.path.join(folder, name)))
    return f"dir:{os.path.abspath(source)}:{newest}"


@contextlib.contextmanager
def open_source(source):
    """A folder holding ``detectron2/`` for ``source`` (a tarball is unpacked into a temporary
    folder for the duration)."""
    if os.path.isdir(source):
        root = _package_root(source, source)
        yield root
        return
    if not os.path.isfile(source) or not tarfile.is_tarfile(source):
        raise SourceError(
            f"Detectron2 source {source}: not a folder nor a tarball; give a Detectron2 checkout, "
            "an unpacked source tree or a .tar.gz of one"
        )
    with tempfile.TemporaryDirectory(prefix="nats-d2-src-") as tmp:
        with tarfile.open(source) as tar:
            members = [m for m in tar.getmembers() if _safe(m.name) and not m.issym()]
            tar.extractall(tmp, members=members)
        yield _package_root(tmp, source)


def _safe(name):
    return not (name.startswith("/") or ".." in name.split("/"))


def _package_root(folder, source):
    for root in [folder] + [os.path.join(folder, d) for d in sorted(os.listdir(folder))]:
        if os.path.isfile(os.path.join(root, "detectron2", "__init__.py")):
            return root
    raise SourceError(
        f"Detectron2 source {source}: no detectron2/__init__.py at its top or one folder down"
    )


def _version(root):
    with open(os.path.join(root, "detectron2", "__init__.py")) as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("'\"")
    return "0+unknown"


def install_python_sources(root, purelib, *, summary):
    """Copy ``root``'s ``detectron2/`` package into ``purelib`` without its C++/CUDA sources
    (``csrc``), with the model-zoo configs where a checkout keeps them apart (``configs/``, which
    Detectron2's ``setup.py`` links into ``detectron2/model_zoo/configs``), and a dist-info so
    that pip and ``importlib.metadata`` see it. Returns the number of files."""
    version = _version(root)
    record = []

    def copy(src, rel):
        target = os.path.join(purelib, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(src, target)
        record.append(rel)

    package = os.path.join(root, "detectron2")
    for folder, dirs, files in os.walk(package):
        dirs[:] = [d for d in dirs if d not in ("csrc", "__pycache__")]
        for name in files:
            src = os.path.join(folder, name)
            if not os.path.islink(src):
                copy(src, os.path.relpath(src, root))
    zoo = os.path.join(package, "model_zoo", "configs")
    configs = os.path.join(root, "configs")
    if not os.path.isdir(zoo) and os.path.isdir(configs):
        for folder, _, files in os.walk(configs):
            for name in files:
                src = os.path.join(folder, name)
                rel = os.path.relpath(src, configs)
                copy(src, os.path.join("detectron2", "model_zoo", "configs", rel))
    dist_info = f"detectron2-{version}.dist-info"
    os.makedirs(os.path.join(purelib, dist_info), exist_ok=True)
    files = {
        "METADATA": f"Metadata-Version: 2.1\nName: detectron2\nVersion: {version}\n"
        f"Summary: {summary}\n",
        "INSTALLER": "nats-setup\n",
    }
    for name, text in files.items():
        with open(os.path.join(purelib, dist_info, name), "w") as f:
            f.write(text)
    record += [f"{dist_info}/{n}" for n in (*files, "RECORD")]
    with open(os.path.join(purelib, dist_info, "RECORD"), "w") as f:
        f.write("".join(f"{r},,\n" for r in record))
    return len(record)


def install_requires(root):
    """The ``install_requires`` strings of ``root/setup.py`` (literals only); [] without one."""
    path = os.path.join(root, "setup.py")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            return [ast.literal_eval(e) for e in node.value.elts if isinstance(e, ast.Constant)]
    return []


def _pins(path):
    pins = {}
    with open(path) as f:
        for line in f:
            pin = line.split("#")[0].strip()
            if pin:
                name, version = pin.split("==")
                pins[_canonical(name)] = (pin, version)
    return pins


def _canonical(name):
    return name.lower().replace("_", "-").replace(".", "-")


def resolve(root, lock, overlay):
    """The ``overlay`` pins that ``root``'s requirements need (run with a venv's Python: it uses
    ``packaging``). With any overlay pin needed, every overlay pin is returned (the overlay is
    one consistent set, its own dependencies included)."""
    from packaging.requirements import Requirement

    locked, extra = _pins(lock), _pins(overlay)
    needed = []
    for text in install_requires(root):
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = _canonical(req.name)
        if name in locked and req.specifier.contains(locked[name][1], prereleases=True):
            continue
        if name in extra and req.specifier.contains(extra[name][1], prereleases=True):
            needed.append(name)
            continue
        pins = [v[0] for v in (locked.get(name), extra.get(name)) if v]
        raise SourceError(
            f"Detectron2 at {root} asks for '{text}', which no pin of {lock} or {overlay} "
            f"fits (pinned: {pins or 'nothing'}): add a fitting pin to {overlay}"
        )
    return [pin for pin, _ in extra.values()] if needed else []


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "--resolve":
        sys.exit(f"usage: {sys.argv[0]} --resolve SOURCE LOCK OVERLAY")
    try:
        with open_source(sys.argv[2]) as root:
            print("\n".join(resolve(root, sys.argv[3], sys.argv[4])))
    except SourceError as e:
        print(f"[setup] ERROR: {e}", file=sys.stderr)
        sys.exit(2)
