"""Atomic file writes: a temporary file beside the target, renamed over it when complete.

A crash, a kill or a full disk in the middle of a write leaves the previous file (or none), never
a truncated one that a later resume or plot would read. Non-local paths (``scheme://...``) are
written through iopath's ``PathManager`` as they are.
"""

import contextlib
import errno
import logging
import os
import re
import shutil
import tempfile

from detectron2.utils.file_io import PathManager

__all__ = ["atomic_open", "remove_stale_temporaries"]

# The temporary files of atomic_open: ".<name>." + mkstemp's 8 random characters + ".tmp".
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


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
    it is removed and ``path`` stays as it was; a write that failed on a full disk raises
    ``OSError(ENOSPC)`` naming the file, whatever error the writer raised. Non-local paths
    (``scheme://...``) are opened through Detectron2's ``PathManager`` as they are, without a
    temporary file.

    Args:
        path (str or os.PathLike): the file to write.
        mode (str): ``"w"`` (text) or ``"wb"`` (binary).

    Yields:
        the open file object.

    Raises:
        ValueError: if ``mode`` is neither ``"w"`` nor ``"wb"``.
        OSError: with ``errno.ENOSPC`` when the write failed and the disk is full.
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
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(e, Exception) and _disk_full(directory):  # torch.save buries the ENOSPC
            raise OSError(
                errno.ENOSPC, f"No space left on the device of {directory} while writing {path}"
            ) from e
        raise


def _disk_full(directory):
    with contextlib.suppress(OSError):
        return shutil.disk_usage(directory).free < (1 << 20)
    return False


def remove_stale_temporaries(directory):
    """Remove the temporary files that :func:`atomic_open` left in ``directory`` (and its
    subfolders) when a process was killed mid-write; a run calls this at its start, once its
    checks passed, while nothing else writes there.

    Args:
        directory (str): a run's OUTPUT_DIR; missing or non-local: nothing to do.

    Returns:
        list[str]: the paths removed.
    """
    if "://" in directory or not os.path.isdir(directory):
        return []
    removed = []
    for root, _, files in os.walk(directory):
        for name in files:
            if _TEMPORARY.match(name):
                path = os.path.join(root, name)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                    removed.append(path)
    if removed:
        logging.getLogger(__name__).info(
            f"Removed {len(removed)} temporary files of interrupted writes: {removed[:5]}"
        )
    return removed
