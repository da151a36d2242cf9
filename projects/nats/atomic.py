"""Atomic file writes: a temporary file beside the target, renamed over it when complete.

A crash, a kill or a full disk in the middle of a write leaves the previous file (or none), never
a truncated one that a later resume or plot would read. Non-local paths (``scheme://...``) are
written through iopath's ``PathManager`` as they are.
"""

import contextlib
import os
import tempfile

from detectron2.utils.file_io import PathManager

__all__ = ["atomic_open"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path, mode="w"):
    """Open ``path`` for writing (``"w"`` or ``"wb"``); it appears under its name, with the usual
    file mode, only when the ``with`` block ends without an exception.

    The content goes to a temporary file beside ``path`` (missing folders are created), which is
    flushed, fsynced, given mode 0666 minus the umask and renamed over ``path``; on an exception
    it is removed and ``path`` stays as it was. Non-local paths (``scheme://...``) are opened
    through Detectron2's ``PathManager`` as they are, without a temporary file.

    Args:
        path (str or os.PathLike): the file to write.
        mode (str): ``"w"`` (text) or ``"wb"`` (binary).

    Yields:
        the open file object.

    Raises:
        ValueError: if ``mode`` is neither ``"w"`` nor ``"wb"``.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    if "://" in path:
        with PathManager.open(path, mode) as f:
            yield f
        return
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
