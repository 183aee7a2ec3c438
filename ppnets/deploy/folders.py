"""Replacing an export folder as a unit.

An export (and ``tools/quantize.py``, which adds the INT8 files) is written complete into a
*staging* folder beside the target, ``.<name>.export.tmp.<pid>``, then swapped in:

1. :func:`staging_folder` removes what killed writers left (staging and ``.old`` folders of dead
   processes, the ``.export.tmp.<pid>`` folders older ppnets wrote inside the target), and
   restores the previous export if a swap was interrupted between its two renames;
2. :func:`commit_folder` syncs the staged files and exchanges the two folders in one
   ``renameat2(RENAME_EXCHANGE)`` call (Linux), so the target is at every moment either the
   whole old export or the whole new one; where that call is missing it renames the old folder
   to ``.<name>.export.old.<pid>`` and the new one into place. The old contents are then removed:
   nothing of the previous model is left beside the new one.

A target that holds anything but export files (``inference*``, ``inference_cls.yaml``,
``class_id_map.txt``) is refused (:func:`check_replaceable`): replacing the folder would delete them.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import re
import shutil
from typing import List, Optional

from ..errors import ConfigError
from ..utils.logger import get_logger

__all__ = ["staging_folder", "commit_folder", "discard_folder", "check_replaceable", "EXPORT_NAMES"]

#: what an export folder may hold (regular files only): an existing folder with anything else is not replaced
EXPORT_NAMES = re.compile(r"inference[^/]*|class_id_map\.txt|\.export\.tmp\.\d+")
_RENAME_EXCHANGE, _AT_FDCWD = 2, -100


def _pid_of(path: str) -> Optional[int]:
    tail = path.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _stale(path: str) -> bool:
    """A temporary of this process (an earlier, failed attempt) or of a process that no longer runs."""
    pid = _pid_of(path)
    if pid is None or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:   # EPERM: it runs, as another user
        return False
    return False


def _siblings(target: str, kind: str) -> List[str]:
    parent, base = os.path.split(target)
    return sorted(glob.glob(os.path.join(glob.escape(parent), f".{glob.escape(base)}.export.{kind}.*")))


def check_replaceable(target: str, what: str = "Global.save_inference_dir") -> None:
    """``target`` may be replaced by an export: absent, or a folder of export files only (``what``
    names the setting in errors)."""
    if not os.path.lexists(target):
        return
    if not os.path.isdir(target):
        raise ConfigError(f"{what}: {target} is a file, not a folder")
    foreign = [n for n in sorted(os.listdir(target))
               if not EXPORT_NAMES.fullmatch(n) or (os.path.isdir(os.path.join(target, n))
                                                    and not n.startswith(".export.tmp."))]
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise ConfigError(f"{what}: {target} holds {', '.join(foreign[:3])}{more}, which are not export files; an "
                          "export replaces the whole folder, so choose a new or empty folder (or move them)")


def _clean(target: str) -> None:
    """Remove the temporaries of killed writers of ``target``; restore an export a swap left aside."""
    olds = [p for p in _siblings(target, "old") if _stale(p)]
    if olds and not os.path.lexists(target):   # interrupted between the two renames of commit_folder
        os.rename(olds[-1], target)
        get_logger().warning(f"{target}: restored the previous export from {olds[-1]} (an interrupted export)")
        olds = olds[:-1]
    inside = glob.glob(os.path.join(glob.escape(target), ".export.tmp.*")) if os.path.isdir(target) else []
    for path in olds + [p for p in _siblings(target, "tmp") + inside if _stale(p)]:
        shutil.rmtree(path, ignore_errors=True)


def staging_folder(target: str, what: str = "Global.save_inference_dir") -> str:
    """A new, empty staging folder for ``target`` (see the module docstring); stale ones are removed first.
    ``what`` names the setting the target comes from, in errors."""
    target = os.path.realpath(target)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        _clean(target)
        check_replaceable(target, what)
        stage = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.export.tmp.{os.getpid()}")
        shutil.rmtree(stage, ignore_errors=True)
        os.mkdir(stage)
    except OSError as e:
        raise ConfigError(f"{what}: cannot write beside {target}: {e.strerror or e}") from None
    return stage


def _sync(folder: str) -> None:
    for name in os.listdir(folder):
        fd = os.open(os.path.join(folder, name), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exchange(a: str, b: str) -> bool:
    """Atomically exchange the paths ``a`` and ``b`` (Linux ``renameat2``); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):   # EINVAL, ENOSYS, EOPNOTSUPP: the file system or kernel cannot
        return False
    raise OSError(errno, os.strerror(errno), b)


def commit_folder(stage: str, target: str) -> None:
    """Put the complete ``stage`` (from :func:`staging_folder`) in the place of ``target``, atomically,
    and remove the previous contents."""
    target = os.path.realpath(target)
    _sync(stage)
    if not os.path.lexists(target):
        os.rename(stage, target)
    elif _exchange(stage, target):
        shutil.rmtree(stage, ignore_errors=True)   # it now holds the previous export
    else:
        old = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.export.old.{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
        os.rename(stage, target)
        shutil.rmtree(old, ignore_errors=True)
    try:
        fd = os.open(os.path.dirname(target), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def discard_folder(stage: str) -> None:
    """Remove a staging folder that will not be committed."""
    shutil.rmtree(stage, ignore_errors=True)
