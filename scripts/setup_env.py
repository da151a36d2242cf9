#!/usr/bin/env python3
"""Turn a fresh machine into a working NATS-D2 environment in ``.venv/`` (stdlib only).

The one set-up path that both README commands use. Runs in seconds when ``.venv`` is already
up to date with ``requirements/lock.txt``. Modes:

* online (default): every package from the registry at the exact versions of the lock file;
* offline (``--offline DIR`` or ``NATS_OFFLINE_DIR=DIR``): for machines without a registry (a
  lent GPU machine): uses the torch/torchvision already installed there and installs everything
  else from ``DIR``, a folder that ``--prepare-offline DIR`` fills on a machine with the registry.

detectron2:

* ``--detectron2 SOURCE`` (or ``NATS_DETECTRON2=SOURCE``): a Detectron2 checkout, unpacked tree
  or tarball (e.g. its GitHub main) is installed into the venv, with the pins its ``setup.py``
  asks for beyond the lock (``requirements/overlay-detectron2-main.txt``). pip builds its C++
  (and, with nvcc, CUDA) ops; ``--python-only`` (``NATS_DETECTRON2_PYTHON_ONLY=1``) copies its
  Python package alone, as CI does for its second leg.
* otherwise an importable detectron2 is used untouched, or detectron2 v0.6's Python sources come
  from the registry's ``pb1-detectron2==0.6`` sdist, whose C++ sources are missing.

Where Detectron2 imports its C++ extension without a fallback (v0.6),
``projects/nats/compat/extension_standin.py`` stands in for ``detectron2._C``, hooked in at
interpreter start by a ``.pth`` (``--venv DIR`` or ``NATS_VENV=DIR`` names another venv).
"""

import argparse
import hashlib
import html.parser
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

import detectron2_source  # noqa: E402  (scripts/, beside this file)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
LOCK = os.path.join(ROOT, "requirements", "lock.txt")
OVERLAY = os.path.join(ROOT, "requirements", "overlay-detectron2-main.txt")
STAMP_NAME = ".nats-setup-stamp"
STAMP = os.path.join(VENV, STAMP_NAME)
SUPPORTED = ((3, 10), (3, 12))
D2_SDIST_NAME = "pb1-detectron2-0.6.tar.gz"


class SetupError(Exception):
    """A problem the user can act on; printed without a traceback."""


def log(msg):
    print(f"[setup] {msg}", flush=True)


def check_python(version=sys.version_info[:2]):
    lo, hi = SUPPORTED
    if not lo <= tuple(version) <= hi:
        raise SetupError(
            f"Python {version[0]}.{version[1]} is not supported: detectron2 v0.6 and the pinned "
            f"stack need Python {lo[0]}.{lo[1]} to {hi[0]}.{hi[1]}. Run this script with such an "
            "interpreter, e.g. NATS_PYTHON=python3.11 bash scripts/test.sh"
        )


def read_lock():
    """Return (pins, torch_pins, d2 sdist (spec, sha256)) from requirements/lock.txt."""
    pins, torch_pins, sdist = [], [], None
    with open(LOCK) as f:
        for line in f:
            text = line.strip()
            if text.startswith("# detectron2-sdist:"):
                spec, sha = text.split(":", 1)[1].split()
                sdist = (spec, sha.split("=", 1)[1])
            if not text or text.startswith("#"):
                continue
            pin = text.split("#")[0].strip()
            (torch_pins if "[torch]" in text else pins).append(pin)
    if sdist is None:
        raise SetupError(f"{LOCK} has no '# detectron2-sdist:' line")
    return pins, torch_pins, sdist


def fingerprint(mode):
    h = hashlib.sha256()
    for path in (LOCK, OVERLAY):
        with open(path, "rb") as f:
            h.update(f.read())
    h.update(f"{mode}|{sys.version_info[:2]}|{ROOT}".encode())
    return h.hexdigest()


def venv_python(venv=VENV):
    return os.path.join(venv, "bin", "python")


def run(cmd, what):
    log(what)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.strip().splitlines()[-25:])
        raise SetupError(f"{what} failed (exit {proc.returncode}). Last output:\n{tail}")
    return proc.stdout


def index_url():
    """The registry pip would use: PIP_INDEX_URL, then pip's config, then PyPI."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
        ).stdout
        for line in out.splitlines():
            if line.split("=", 1)[0].endswith("index-url") and "extra" not in line:
                url = line.split("=", 1)[1].strip().strip("'\"")
    return (url or "https://pypi.org/simple").rstrip("/") + "/"


def check_registry():
    url = index_url() + "pip/"
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            resp.read(1)
    except Exception as e:  # noqa: BLE001 - any failure means the same to the user
        raise SetupError(
            f"No package registry reachable ({url}: {e}) and no offline folder given. On a "
            "machine without a registry, prepare a folder on one that has it with "
            "`python3 scripts/setup_env.py --prepare-offline DIR`, copy it over, and run with "
            "NATS_OFFLINE_DIR=DIR (see README, 'Offline set-up')."
        ) from None


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append(dict(attrs).get("href", ""))


def fetch_d2_sdist(dest_dir, sha256):
    """Download the pinned detectron2 sdist through the registry's simple API; verify it."""
    page_url = index_url() + "pb1-detectron2/"
    with urllib.request.urlopen(page_url, timeout=60) as resp:
        parser = _Links()
        parser.feed(resp.read().decode())
    hrefs = [h for h in parser.links if h.split("#")[0].endswith(D2_SDIST_NAME)]
    if not hrefs:
        raise SetupError(f"{D2_SDIST_NAME} is not listed at {page_url}")
    url = urllib.parse.urljoin(page_url, hrefs[0].split("#")[0])
    log(f"downloading {url}")
    with urllib.request.urlopen(url, timeout=300) as resp:
        data = resp.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise SetupError(f"{D2_SDIST_NAME} from {url} does not match the sha256 in {LOCK}")
    path = os.path.join(dest_dir, D2_SDIST_NAME)
    with open(path + ".part", "wb") as f:
        f.write(data)
    os.replace(path + ".part", path)
    return path


def site_packages(python):
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return subprocess.run([python, "-c", code], capture_output=True, text=True).stdout.strip()


def has_module(python, name):
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({name!r}) is None)"
    return subprocess.run([python, "-c", code]).returncode == 0


def install_d2_sources(sdist_path, sha256, purelib):
    """Install the v0.6 sdist's ``detectron2/`` package (no C++ sources) into site-packages."""
    with open(sdist_path, "rb") as f:
        if hashlib.sha256(f.read()).hexdigest() != sha256:
            raise SetupError(f"{sdist_path} does not match the sha256 pinned in {LOCK}")
    summary = "detectron2 v0.6 Python sources from pb1-detectron2==0.6, no C++ extension"
    with detectron2_source.open_source(sdist_path) as root:
        count = detectron2_source.install_python_sources(root, purelib, summary=summary)
    log(f"installed detectron2 v0.6 sources ({count} files) into {purelib}")


def install_d2_source(source, py, pip, purelib, *, python_only):
    """Install the Detectron2 at ``source`` (``--detectron2``) and the overlay pins it needs."""
    resolve = [py, os.path.join(ROOT, "scripts", "detectron2_source.py"), "--resolve"]
    overlay = run(resolve + [source, LOCK, OVERLAY], f"reading the pins {source} asks for")
    overlay = [line for line in overlay.splitlines() if "==" in line and " " not in line]
    if overlay:
        run(pip + overlay, f"installing its pins beyond the lock: {' '.join(overlay)}")
    with detectron2_source.open_source(source) as root:
        if python_only:
            summary = f"Detectron2 Python sources from {source}, no C++ extension"
            count = detectron2_source.install_python_sources(root, purelib, summary=summary)
            log(f"installed the Python sources of {source} ({count} files) into {purelib}")
        else:
            build = pip + ["--no-build-isolation", root]
            run(build, f"building and installing Detectron2 from {source} (C++/CUDA ops)")


def write_pth(purelib):
    """Put the repository on sys.path and hook the detectron2._C stand-in in at start-up."""
    compat = os.path.join(ROOT, "projects", "nats", "compat", "extension_standin.py")
    hook = (
        "import os, sys, importlib.util as u; p = {!r}; "
        "s = os.path.exists(p) and u.spec_from_file_location('_nats_d2_compat', p); "
        "m = s and u.module_from_spec(s); "
        "s and (sys.modules.setdefault('_nats_d2_compat', m), s.loader.exec_module(m), m.install())"
    ).format(compat)
    with open(os.path.join(purelib, "nats_d2.pth"), "w") as f:
        f.write(ROOT + "\n" + hook + "\n")


def write_requirements(pins, tmp):
    path = os.path.join(tmp, "requirements.txt")
    with open(path, "w") as f:
        f.write("\n".join(pins) + "\n")
    return path


def setup(offline_dir, *, venv=VENV, detectron2=None, python_only=False):
    """Build ``venv`` (or find it up to date): the lock's pins, then Detectron2."""
    check_python()
    pins, torch_pins, (d2_spec, d2_sha) = read_lock()
    mode = f"offline:{offline_dir}" if offline_dir else "online"
    if detectron2:
        if not os.path.exists(detectron2):
            raise SetupError(f"NATS_DETECTRON2={detectron2} (--detectron2) does not exist")
        source = detectron2_source.fingerprint(detectron2)
        mode += f"|detectron2:{source}|python-only:{bool(python_only)}"
    stamp, stamp_path, name = fingerprint(mode), os.path.join(venv, STAMP_NAME), rel(venv)
    py = venv_python(venv)
    if os.path.exists(stamp_path) and os.path.exists(py):
        with open(stamp_path) as f:
            if f.read().strip() == stamp:
                write_pth(site_packages(py))  # cheap; follows changes of the hook
                log(f"{name} is up to date ({mode})")
                return
    if offline_dir:
        if not os.path.isdir(offline_dir):
            raise SetupError(f"NATS_OFFLINE_DIR={offline_dir} is not a folder")
        probe = subprocess.run([sys.executable, "-c", "import torch, torchvision"])
        if probe.returncode != 0:
            raise SetupError(
                f"offline mode uses the torch and torchvision of {sys.executable}, "
                "which cannot import them; install them there first"
            )
    else:
        check_registry()
    if os.path.exists(venv):
        log(f"rebuilding {name} (it is out of date with requirements/ or the mode)")
        shutil.rmtree(venv)
    venv_cmd = [sys.executable, "-m", "venv", venv]
    run(venv_cmd + (["--system-site-packages"] if offline_dir else []), f"creating {name}")
    pip = [py, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        if offline_dir:
            pip += ["--no-index", "--find-links", offline_dir]
            setuptools = [p for p in pins if p.lower().startswith("setuptools==")]
            run(pip + setuptools, "installing setuptools (to build sdists without a registry)")
            req = write_requirements(pins, tmp)
            run(pip + ["--no-build-isolation", "-r", req], "installing the pins from the folder")
        else:
            req = write_requirements(pins + torch_pins, tmp)
            run(pip + ["-r", req], "installing the pinned stack (torch's CUDA build runs on CPU)")
        purelib = site_packages(py)
        if detectron2:
            install_d2_source(detectron2, py, pip, purelib, python_only=python_only)
        elif has_module(py, "detectron2"):
            log("an importable detectron2 is already present: using it untouched")
        else:
            sdist = os.path.join(offline_dir, D2_SDIST_NAME) if offline_dir else None
            if sdist and not os.path.exists(sdist):
                raise SetupError(f"{sdist} is missing: prepare the folder with --prepare-offline")
            install_d2_sources(sdist or fetch_d2_sdist(tmp, d2_sha), d2_sha, purelib)
    write_pth(purelib)
    run([py, "-c", "import detectron2.modeling, projects.nats"], "checking the imports")
    with open(stamp_path + ".part", "w") as f:
        f.write(stamp + "\n")
    os.replace(stamp_path + ".part", stamp_path)
    log(f"done: {py}")


def rel(path):
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def prepare_offline(dest, python_version):
    """Download every non-torch pin and the detectron2 sdist into ``dest``.

    Wheels where they exist (for ``python_version`` if given); pure-Python packages published only
    as sdists (fvcore) are downloaded as sdists and built at install time without a registry.
    """
    pins, _, (_, d2_sha) = read_lock()
    with open(OVERLAY) as f:  # for --detectron2 on the offline machine
        pins += [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]
    check_registry()
    os.makedirs(dest, exist_ok=True)
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", dest]
    wheel = base + ["--only-binary=:all:"]
    if python_version:
        plats = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
        wheel += ["--python-version", python_version, "--implementation", "cp"]
        wheel += [arg for p in plats for arg in ("--platform", p)]
    log(f"downloading {len(pins)} packages into {dest}")
    for pin in pins:
        if subprocess.run(wheel + [pin], capture_output=True).returncode != 0:
            run(base + ["--no-binary", ":all:", pin], f"no wheel of {pin}: downloading its sdist")
    fetch_d2_sdist(dest, d2_sha)
    log(f"offline folder ready: {dest}; use it with NATS_OFFLINE_DIR={dest}")


def main():
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--offline", default=env("NATS_OFFLINE_DIR"), metavar="DIR")
    parser.add_argument("--prepare-offline", metavar="DIR", help="fill DIR for offline set-up")
    parser.add_argument("--python-version", help="with --prepare-offline: target, e.g. 3.12")
    parser.add_argument("--venv", default=env("NATS_VENV", VENV), help="default: .venv")
    parser.add_argument(
        "--detectron2",
        default=env("NATS_DETECTRON2"),
        metavar="SOURCE",
        help="install this Detectron2 (checkout, unpacked tree or tarball) instead of v0.6",
    )
    parser.add_argument(
        "--python-only",
        action="store_true",
        default=env("NATS_DETECTRON2_PYTHON_ONLY", "") not in ("", "0"),
        help="with --detectron2: its Python package only, no C++/CUDA build",
    )
    args = parser.parse_args()
    try:
        if args.prepare_offline:
            prepare_offline(os.path.abspath(args.prepare_offline), args.python_version)
        else:
            setup(
                os.path.abspath(args.offline) if args.offline else None,
                venv=os.path.abspath(args.venv),
                detectron2=os.path.abspath(args.detectron2) if args.detectron2 else None,
                python_only=args.python_only,
            )
    except (SetupError, detectron2_source.SourceError) as e:
        print(f"[setup] ERROR: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
