"""A run's VisualDL record file: one per run, continued by a resumed run.

VisualDL shows one record file per folder — the newest by name (``vdlrecords.<time>.log``). So a
run writes one file, and a resumed run appends to the file the folder shows instead of starting
another (which would hide the epochs before the resume). A process killed after its last checkpoint
may have logged steps past it; the resumed run logs them again, so they are cut from the file first
(:func:`trim_records`). A record is VisualDL's frame: an 8-byte little-endian length, then a
``record_pb2.Record``.
"""
from __future__ import annotations

import glob
import os
import struct
from typing import Optional

from ..utils.files import atomic_write

__all__ = ["shown_record_file", "trim_records"]

_HEADER = struct.Struct("<Q")


def shown_record_file(vdl_dir: str) -> Optional[str]:
    """The record file VisualDL shows for ``vdl_dir`` (the last ``vdlrecords*`` name), or None."""
    files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(glob.escape(vdl_dir), "*vdlrecords*")))
    return os.path.join(vdl_dir, files[-1]) if files else None


def trim_records(path: str, last_step: int, last_epoch: int) -> int:
    """Drop the scalars logged after a checkpoint from ``path``: ``train/…`` records past the global
    step ``last_step``, ``eval…/…`` records past the epoch ``last_epoch``, and a record cut short by
    a killed process. Returns how many records were dropped (the file is rewritten only then)."""
    from visualdl.proto.record_pb2 import Record

    with open(path, "rb") as f:
        data = f.read()
    kept, pos, dropped = [], 0, 0
    while pos < len(data):
        end = pos + _HEADER.size + (_HEADER.unpack_from(data, pos)[0] if pos + _HEADER.size <= len(data) else 0)
        if pos + _HEADER.size > len(data) or end > len(data):
            dropped += 1  # the tail of a record being written when the process died
            break
        record = Record()
        try:
            record.ParseFromString(data[pos + _HEADER.size:end])
        except Exception:  # not a record: what follows cannot be framed either
            dropped += 1
            break
        value = record.values[0] if record.values else None
        if value is not None and value.WhichOneof("one_value") == "value":
            limit = last_epoch if value.tag.startswith("eval") else last_step
            if value.id > limit:
                dropped += 1
                pos = end
                continue
        kept.append(data[pos:end])
        pos = end
    if dropped:
        atomic_write(path, b"".join(kept))
    return dropped
