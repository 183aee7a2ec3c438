"""Controlling a training run from outside: one run per output folder (a real second process,
a real kill -9), SIGHUP from a real closed terminal, a checkpoint with nothing left to train, and
the NaN message (docs/reliability.md, "The training run")."""
from __future__ import annotations

import fcntl
import glob
import os
import pickle
import pty
import signal
import subprocess
import termios

import paddle
import pytest

from ppnets.cli import run

from conftest import REPO, make_digits_slice, visualdl_history
from test_reliability import _tool, train_args, trained, user_error  # noqa: F401 (trained: a fixture)
from test_training_features import _train_cmd, _wait_for


@pytest.fixture
def data(tmp_path):
    return make_digits_slice(str(tmp_path / "data"), n_train=8, n_val=4)


def _slow_run(data, out, **extra):
    """A long, stable run (3 iterations per epoch) that checkpoints after every iteration."""
    return _train_cmd(data, out, **{"Global.epochs": 200, "Global.save_steps": 1, "Optimizer.lr.learning_rate": 0.001,
                                    "Optimizer.lr.warmup_epoch": 0,
                                    "DataLoader.Train.sampler.batch_size": 8, **extra})


def test_a_second_run_on_the_same_output_dir_is_refused_and_a_killed_runs_lock_recovered(data, tmp_path):
    out = str(tmp_path / "o")
    run_dir = os.path.join(out, "MobileNetV2_x0_25")
    log = os.path.join(run_dir, "train.log")
    first = subprocess.Popen(_slow_run(data, out), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        _wait_for(log, r"\[Iter 2/3\]", first)
        second = subprocess.run(_train_cmd(data, out, **{"Global.epochs": 1}), cwd=REPO, capture_output=True,
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
    third = subprocess.run(_train_cmd(data, out, **{"Global.epochs": 1, "Global.overwrite": True}), cwd=REPO,
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
        _wait_for(log, r"\[Epoch 1/200\]\[Iter 2/3\]", proc, timeout=300)
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
    run(_tool("train"), train_args(trained["data"], str(tmp_path / "o"), **{  # returns: exit code 0
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
    r = subprocess.run(_train_cmd(data, out, **{
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
    from conftest import load_small_config

    out = str(tmp_path / "o")
    run_dir = os.path.join(out, "MobileNetV2_x0_25")
    # the folder follows the model the config builds, Arch options included (README's "-o Arch.scale=0.75")
    assert output_dir_of(load_small_config(data, out, **{"Arch.scale": 0.75})) == os.path.join(out, "MobileNetV2_x0_75")
    assert output_dir_of(load_small_config(data, out, **{"Arch.scale": 0.6})) == run_dir + "-scale0.6"
    assert output_dir_of(load_small_config(data, out, **{"Arch.freeze_stages": 2})) == run_dir
    run(_tool("train"), train_args(data, out, **{"Global.epochs": 1}))
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
    run(_tool("train"), train_args(data, out, **{"Global.epochs": 2, "Global.save_interval": 1,
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
    from conftest import load_small_config

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
