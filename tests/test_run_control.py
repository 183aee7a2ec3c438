"""Controlling a training run from outside: one run per output folder (a real second process,
a real kill -9), SIGHUP from a real closed terminal, a checkpoint with nothing left to train, and
the NaN guard, kill -9 and stop signals with the exact resume they allow (docs/reliability.md,
"The training run")."""
from __future__ import annotations

import fcntl
import glob
import os
import pickle
import pty
import re
import signal
import subprocess
import sys
import termios
import time

import paddle
import pytest

from ppnets.cli import run
from ppnets.engine import Trainer
from ppnets.errors import TrainingError

from helpers.cli import tool_main, train_args, user_error
from helpers.processes import alive, children, epoch_losses, train_cmd, wait_for
from helpers.runs import REPO, load_small_config, make_digits_slice, visualdl_history


@pytest.fixture
def data(tmp_path):
    return make_digits_slice(str(tmp_path / "data"), n_train=8, n_val=4)


def _slow_run(data, out, **extra):
    """A long, stable run (3 iterations per epoch) that checkpoints after every iteration."""
    return train_cmd(data, out, **{"Global.epochs": 200, "Global.save_steps": 1, "Optimizer.lr.learning_rate": 0.001,
                                    "Optimizer.lr.warmup_epoch": 0,
                                    "DataLoader.Train.sampler.batch_size": 8, **extra})


def test_a_second_run_on_the_same_output_dir_is_refused_and_a_killed_runs_lock_recovered(data, tmp_path):
    out = str(tmp_path / "o")
    run_dir = os.path.join(out, "MobileNetV2_x0_25")
    log = os.path.join(run_dir, "train.log")
    first = subprocess.Popen(_slow_run(data, out), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        wait_for(log, r"\[Iter 2/3\]", first)
        second = subprocess.run(train_cmd(data, out, **{"Global.epochs": 1}), cwd=REPO, capture_output=True,
                                text=True, timeout=300)
        assert second.returncode == 2, second.stdout[-2000:]
        assert second.stderr.strip() == (f"ppnets: error: Global.output_dir: {os.path.realpath(run_dir)} is in use by "
                                         f"another training run (pid {first.pid}); wait for it to finish, stop it, "
                                         "or choose another Global.output_dir")
        assert first.poll() is None  # the first run was not disturbed
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    assert open(os.path.join(run_dir, ".lock")).read().strip() == str(first.pid)  # the stale lock stays behind
    # the killed run left checkpoints: a new run replaces them only when told to
    third = subprocess.run(train_cmd(data, out, **{"Global.epochs": 1, "Global.overwrite": True}), cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert "[Train][Epoch 1/1][Avg]" in open(log).read()


def test_sighup_from_a_closed_terminal_saves_and_exits(data, tmp_path):
    """The run's controlling terminal is a real pty; closing its master side makes the kernel
    send SIGHUP, as when a terminal window is closed. Output to the dead terminal fails."""
    out = str(tmp_path / "o")
    log = os.path.join(out, "MobileNetV2_x0_25", "train.log")
    master, slave = pty.openpty()

    def own_terminal():
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(_slow_run(data, out), cwd=REPO, stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=own_terminal)
    os.close(slave)
    try:
        wait_for(log, r"\[Epoch 1/200\]\[Iter 2/3\]", proc, timeout=300)
        os.close(master)  # the terminal goes away: SIGHUP to its session
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    text = open(log).read()
    assert "SIGHUP received: stopping after this iteration and saving 'latest'" in text
    states = paddle.load(os.path.join(out, "MobileNetV2_x0_25", "latest.pdstates"))
    partial = states["partial"] or {}
    assert (states["epoch"], partial.get("epoch")) in ((0, 1), (1, 2)) and partial.get("iters", 0) >= 1, states


def test_a_finished_checkpoint_has_nothing_left_to_do(trained, tmp_path, capsys):  # noqa: F811
    run(tool_main("train"), train_args(trained["data"], str(tmp_path / "o"), **{  # returns: exit code 0
        "Global.epochs": 1, "Global.checkpoints": trained["prefix"]}))
    out = capsys.readouterr().out
    assert (f"nothing to do: the checkpoint {trained['prefix']} has finished epoch 1 and Global.epochs is 1; to train "
            "longer, raise Global.epochs (e.g. -o Global.epochs=11)") in out
    assert "[Train]" not in out


def test_a_checkpoint_past_global_epochs_is_refused(trained, tmp_path, capsys):  # noqa: F811
    prefix = str(tmp_path / "ck")
    states = paddle.load(trained["prefix"] + ".pdstates")
    for suffix in states["digests"]:
        open(f"{prefix}.{suffix}", "wb").write(open(f"{trained['prefix']}.{suffix}", "rb").read())
    states["epoch"] = 7
    open(f"{prefix}.pdstates", "wb").write(pickle.dumps(states, protocol=4))
    msg = user_error("train", train_args(trained["data"], str(tmp_path / "o"), **{
        "Global.epochs": 3, "Global.checkpoints": prefix}), capsys)
    assert msg == (f"Global.epochs=3, but checkpoint {prefix} has already finished 7 epochs: nothing left to do "
                   "(its LR schedule spanned more epochs; set Global.epochs above 7 to train further)")


def test_nan_loss_before_any_save_names_no_checkpoint(data, tmp_path):
    """The real script: stderr is the one line (numpy's overflow warnings stay off it)."""
    out = str(tmp_path / "o")
    r = subprocess.run(train_cmd(data, out, **{
        "DataLoader.Train.dataset.transform_ops.2": "{NormalizeImage: {scale: 1.0e+38}}"}), cwd=REPO,
        capture_output=True, text=True, timeout=300)
    lines = [line for line in r.stderr.splitlines() if "ccache" not in line and "warnings.warn(" not in line]
    assert r.returncode == 2 and lines == [
        "ppnets: error: loss is nan at epoch 1, iteration 1; stopped. No checkpoint was saved yet (lower the "
        "learning rate or check the data)"], r.stderr
    assert not os.path.exists(os.path.join(out, "MobileNetV2_x0_25", "latest.pdstates"))


def test_nan_loss_after_a_resume_names_the_resumed_checkpoint(trained, tmp_path, capsys):  # noqa: F811
    msg = user_error("train", train_args(trained["data"], str(tmp_path / "o"), **{
        "Global.epochs": 2, "Global.checkpoints": trained["prefix"],
        "DataLoader.Train.dataset.transform_ops.2": "{NormalizeImage: {scale: 1.0e+38}}"}), capsys)
    assert msg.endswith(f"No checkpoint of this run was saved yet; it resumed from {trained['prefix']} (lower the "
                        "learning rate or check the data)")


# ----------------------------------------------------------------------------- one run per folder, one VisualDL history


def test_a_new_run_never_takes_over_another_runs_folder(data, tmp_path, capsys):
    from ppnets.engine.setup import output_dir_of
    from helpers.runs import load_small_config

    out = str(tmp_path / "o")
    run_dir = os.path.join(out, "MobileNetV2_x0_25")
    # the folder follows the model the config builds, Arch options included (README's "-o Arch.scale=0.75")
    assert output_dir_of(load_small_config(data, out, **{"Arch.scale": 0.75})) == os.path.join(out, "MobileNetV2_x0_75")
    assert output_dir_of(load_small_config(data, out, **{"Arch.scale": 0.6})) == run_dir + "-scale0.6"
    assert output_dir_of(load_small_config(data, out, **{"Arch.freeze_stages": 2})) == run_dir
    run(tool_main("train"), train_args(data, out, **{"Global.epochs": 1}))
    best = {p: open(p, "rb").read() for p in glob.glob(os.path.join(run_dir, "best_model.*"))}
    latest = os.path.join(run_dir, "latest")
    for extra, held in (({}, "a finished run (MobileNetV2_x0_25, 3 classes, epoch 1 of 1 done); continue it with "
                             f"-o Global.checkpoints={latest} and a higher Global.epochs"),
                        ({"Arch.class_num": 4}, "a run of another model (MobileNetV2_x0_25, 3 classes, epoch 1 of 1 "
                                                f"done); continue it with -o Global.checkpoints={latest} and a "
                                                "higher Global.epochs")):
        msg = user_error("train", train_args(data, out, **{"Global.epochs": 2, **extra}), capsys)
        assert msg == (f"Global.output_dir: {run_dir} already holds {held}, write this run elsewhere with "
                       f"-o Global.output_dir={out}_2, or replace it with -o Global.overwrite=true")
    assert {p: open(p, "rb").read() for p in glob.glob(os.path.join(run_dir, "best_model.*"))} == best
    # replacing it: the previous run's checkpoints, records and log go, the new run is the folder's only one;
    # MobileNetV2_x0_5 at scale 0.25 is MobileNetV2_x0_25: the same folder, and the name its checkpoints record
    run(tool_main("train"), train_args(data, out, **{"Global.epochs": 2, "Global.save_interval": 1,
                                                 "Global.overwrite": True, "Arch.name": "MobileNetV2_x0_5",
                                                 "Arch.scale": 0.25}))
    log = open(os.path.join(run_dir, "train.log")).read()
    assert f"Global.overwrite: removed the previous run from {run_dir} (best_model, latest, VisualDL records, " \
           "train.log)" in log and "[Train][Epoch 1/1]" not in log and "[Train][Epoch 2/2][Avg]" in log
    assert "model: MobileNetV2_x0_25 (" in log and len(glob.glob(os.path.join(run_dir, "vdl", "*"))) == 1
    assert (paddle.load(latest + ".pdstates")["epoch"], paddle.load(latest + ".pdstates")["arch"]) == (2, "MobileNetV2_x0_25")


class _Crash:
    """A callback that stops the run as a crash would, after the step ``at`` was logged (and after
    the checkpoint of the step before it was saved)."""

    def __init__(self, at):
        self.at = at

    def __getattr__(self, hook):
        return lambda *args: None

    def on_step_end(self, trainer, step):
        if trainer.state.global_step == self.at:
            raise RuntimeError("crash")


def test_visualdl_shows_every_epoch_of_an_interrupted_and_resumed_run(data, tmp_path):
    from ppnets.engine import Trainer
    from helpers.runs import load_small_config

    out = str(tmp_path / "o")
    run_dir = os.path.join(out, "MobileNetV2_x0_25")
    over = {"Global.epochs": 3, "Global.save_steps": 2, "DataLoader.Train.sampler.batch_size": 4}  # 6 steps an epoch
    with pytest.raises(RuntimeError, match="crash"):
        Trainer(load_small_config(data, out, **over), callbacks=[_Crash(9)]).train()
    states = paddle.load(os.path.join(run_dir, "latest.pdstates"))
    assert (states["global_step"], states["partial"]["epoch"]) == (8, 2)  # step 9 was logged after the checkpoint
    assert [s for s, _ in visualdl_history(run_dir)["train/loss"]] == list(range(1, 10))
    resume = {**over, "Global.checkpoints": os.path.join(run_dir, "latest")}
    Trainer(load_small_config(data, out, **resume)).train()
    history = visualdl_history(run_dir)
    assert [s for s, _ in history["train/loss"]] == list(range(1, 19))  # every step once: step 9 logged again
    assert [s for s, _ in history["eval/top1"]] == [1, 2, 3]
    assert set(history) == {"train/loss", "train/lr", "train/top1", "train/top5", "eval/loss", "eval/top1", "eval/top5"}
    files = {p: open(p, "rb").read() for p in glob.glob(os.path.join(run_dir, "vdl", "*"))}
    assert len(files) == 1
    # resuming the finished run: nothing to do, nothing written
    Trainer(load_small_config(data, out, **resume)).train()
    assert {p: open(p, "rb").read() for p in glob.glob(os.path.join(run_dir, "vdl", "*"))} == files


# ----------------------------------------------------------------------------- NaN, kill -9 and signals

def test_nan_loss_stops_naming_epoch_and_iteration_and_keeps_last_checkpoint(digits_slice, tmp_path):
    good = load_small_config(digits_slice, str(tmp_path), **{"Global.epochs": 1})
    Trainer(good).train()
    out = os.path.join(str(tmp_path), "MobileNetV2_x0_25")
    before = open(os.path.join(out, "latest.pdparams"), "rb").read()
    bad = load_small_config(digits_slice, str(tmp_path), **{
        "Global.epochs": 2, "Global.checkpoints": os.path.join(out, "latest"),
        "DataLoader.Train.dataset.transform_ops.2": "{NormalizeImage: {scale: 1.0e+38}}"})
    with pytest.raises(TrainingError, match=r"loss is nan at epoch 2, iteration 1; stopped\. The last good "
                                            r"checkpoint is .*latest"):
        Trainer(bad).train()
    assert open(os.path.join(out, "latest.pdparams"), "rb").read() == before


RESUME = {"Global.epochs": 3, "Global.save_steps": 2, "DataLoader.Train.loader.num_workers": 2, "Arch.dropout": 0.2,
          "DataLoader.Train.dataset.transform_ops.1": "{RandCropImage: {size: 32, scale: [0.5, 1.0]}}"}


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_reproduces_the_uninterrupted_run(digits_slice, tmp_path):
    ref = subprocess.run(train_cmd(digits_slice, str(tmp_path / "ref"), **RESUME), cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr
    ref_losses = epoch_losses(str(tmp_path / "ref" / "MobileNetV2_x0_25" / "train.log"))
    assert len(ref_losses) == 3

    out = str(tmp_path / "run")
    log = os.path.join(out, "MobileNetV2_x0_25", "train.log")
    proc = subprocess.Popen(train_cmd(digits_slice, out, **RESUME), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(log, r"\[Train\]\[Epoch 2/3\]\[Iter 5/7\]", proc)
    workers = children(proc.pid)
    proc.kill()  # SIGKILL: no handler runs
    proc.wait()
    deadline = time.time() + 20  # its data-loader workers die with it, none is orphaned
    while any(alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert workers and not [pid for pid in workers if alive(pid)]
    states = paddle.load(os.path.join(out, "MobileNetV2_x0_25", "latest.pdstates"))
    assert states["partial"] is not None and states["partial"]["epoch"] == 2  # a mid-epoch checkpoint
    resumed = subprocess.run(train_cmd(digits_slice, out, **RESUME, **{
        "Global.checkpoints": os.path.join(out, "MobileNetV2_x0_25", "latest")}), cwd=REPO, capture_output=True,
        text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    text = open(log).read()
    assert re.search(r"resumed from .*latest: epoch 2 iteration [35]", text)
    losses = epoch_losses(log)  # epoch 1 (first process), epochs 2 and 3 (resumed process)
    assert losses[0] == ref_losses[0]
    assert losses[-2:] == ref_losses[1:], (losses, ref_losses)
    # VisualDL shows the one history of the uninterrupted run: the steps logged after the killed
    # process's last checkpoint are logged once, by the resumed process
    history = visualdl_history(os.path.join(out, "MobileNetV2_x0_25"))
    assert history == visualdl_history(str(tmp_path / "ref" / "MobileNetV2_x0_25"))
    assert [s for s, _ in history["train/loss"]] == list(range(1, 22)) and len(history["eval/top1"]) == 3


@pytest.mark.slow
def test_kill_9_during_a_checkpoint_write_never_corrupts(data, tmp_path):
    """A real SIGKILL between two renames of the checkpoint set; the resume still works."""
    out = str(tmp_path / "o")
    driver = (
        "import os, signal, sys\n"
        "import ppnets.checkpoint.sets as ck\n"
        "real, calls = os.replace, []\n"
        "def replace(a, b):\n"
        "    calls.append(b)\n"
        "    if b.endswith('latest.pdopt') and sum(c.endswith('latest.pdparams') for c in calls) == 2:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)  # params renamed, opt/states not yet\n"
        "    real(a, b)\n"
        "ck.os.replace = replace\n"
        "from ppnets.cli import run\n"
        "import runpy\n"
        "sys.argv = ['train.py'] + sys.argv[1:]\n"
        f"runpy.run_path({os.path.join(REPO, 'tools', 'train.py')!r}, run_name='__main__')\n")
    r = subprocess.run([sys.executable, "-c", driver] + train_args(data, out, **{"Global.epochs": 3}), cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == -signal.SIGKILL
    prefix = os.path.join(out, "MobileNetV2_x0_25", "latest")
    assert os.path.exists(prefix + ".bak.pdstates")  # the previous set is still complete
    r = subprocess.run([sys.executable, "tools/train.py"] + train_args(data, out, **{
        "Global.epochs": 3, "Global.checkpoints": prefix}), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    log = open(os.path.join(out, "MobileNetV2_x0_25", "train.log")).read()
    assert "using the previous checkpoint" in log and "resumed from" in log and "epoch 1 done" in log
    assert "[Train][Epoch 3/3][Avg]" in log
    assert paddle.load(prefix + ".pdstates")["epoch"] == 3 and not glob.glob(prefix + ".bak.*")


def test_sigint_saves_latest_and_exits_cleanly(digits_slice, tmp_path):
    out = str(tmp_path)
    log = os.path.join(out, "MobileNetV2_x0_25", "train.log")
    proc = subprocess.Popen(train_cmd(digits_slice, out, **{"Global.epochs": 50}), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(log, r"\[Train\]\[Epoch 1/50\]\[Iter 3/7\]", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().startswith("ppnets: interrupted: SIGINT: stopped at epoch 1, iteration ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    states = paddle.load(os.path.join(out, "MobileNetV2_x0_25", "latest.pdstates"))
    assert states["epoch"] == 0 and states["partial"]["epoch"] == 1 and states["partial"]["iters"] >= 3
