"""Real training processes for the tests: the command line of a short run, its log's losses, waiting
for a line, and the processes it left."""
from __future__ import annotations

import os
import re
import sys
import time

from .runs import small_overrides


def train_cmd(digits_slice, out, **extra):
    over = [x for o in small_overrides(digits_slice, out, **{"Global.print_batch_step": 1, **extra})
            for x in ("-o", o)]
    return [sys.executable, "tools/train.py", "-c", "configs/mobilenetv2.yaml", *over]


def iter_losses(log_path):
    return [float(m) for m in re.findall(r"\[Iter \d+/\d+\] lr: [\d.]+, loss: ([\d.]+)", open(log_path).read())]


def epoch_losses(log_path):
    return [float(m) for m in re.findall(r"\[Train\]\[Epoch (?:\d+)/\d+\]\[Avg\] loss: ([\d.]+)", open(log_path).read())]


def wait_for(path, pattern, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and re.search(pattern, open(path).read()):
            return
        if proc.poll() is not None:
            raise AssertionError(f"process ended early: {proc.returncode}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {pattern}")


def alive(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def children(pid: int) -> list:
    """Pids of the direct children of ``pid``: /proc/<n>/stat's parent field (no procps, and unlike
    /proc/<pid>/task/*/children it needs no CONFIG_PROC_CHILDREN)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
            except OSError:  # the process ended meanwhile
                continue
            if int(fields[1]) == pid:
                kids.append(entry)
    return sorted(kids, key=int)
