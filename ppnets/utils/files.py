"""Files written as a unit (a reader sees the old file or the new one, never a partial write), file
digests, and file names shown in messages."""
from __future__ import annotations

import contextlib
import hashlib
import os
from typing import IO, Iterator, Union


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "w", **kwargs) -> Iterator[IO]:
    """``open(path, mode)`` on a temporary file beside ``path``, flushed to disk and renamed over
    ``path`` when the block ends normally; removed if it raises."""
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write(path: str, data: Union[str, bytes]) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` through :func:`atomic_open`."""
    if isinstance(data, bytes):
        with atomic_open(path, "wb") as f:
            f.write(data)
    else:
        with atomic_open(path, "w", encoding="utf-8") as f:
            f.write(data)


def shown_path(path: str) -> str:
    """``path`` for a message or a log: bytes that are not UTF-8 (a Latin-1 file name, read with
    Python's surrogate escapes) appear as ``\\xe9`` escapes instead of breaking the output."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def sha256_file(path: str) -> str:
    """The SHA-256 of the file ``path`` (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
