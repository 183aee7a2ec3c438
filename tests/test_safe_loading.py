"""Untrusted weights and checkpoint files: no code runs from them, their contents are checked,
and weights may be safetensors (docs/reliability.md, "Weights and checkpoints", "Security")."""
from __future__ import annotations

import hashlib
import io
import os
import pickle

import numpy as np
import paddle
import pytest

import ppnets
from ppnets.cli import run

from helpers.runs import make_digits_slice
from helpers.cli import tool_main, train_args, user_error


class _CreatesAFile:
    """Unpickling this runs ``open(marker, "w")``: the file appears if the pickle is executed."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, "w")


class _RunsAShellCommand:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _pickle(obj) -> bytes:
    return pickle.dumps(obj, protocol=4)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A one-epoch run with EMA: latest.{pdparams,pdopt,pdema,pdstates}."""
    root = tmp_path_factory.mktemp("safe")
    data = make_digits_slice(str(root / "data"), n_train=8, n_val=4)
    out = str(root / "out")
    run(tool_main("train"), train_args(data, out, **{"Global.epochs": 1, "EMA.decay": 0.9}))
    return {"data": data, "prefix": os.path.join(out, "MobileNetV2_x0_25", "latest")}


def _payload_weights(run_dir, path, payload_cls, marker):
    """A real state_dict with one tensor replaced by a payload object."""
    weights = paddle.load(run_dir["prefix"] + ".pdparams")
    weights[next(iter(weights))] = payload_cls(marker)
    with open(path, "wb") as f:
        f.write(_pickle(weights))
    return path


def _payload_checkpoint(run_dir, dst, suffix, marker, paddleclas=False):
    """A copy of the run's checkpoint whose ``suffix`` file carries a payload; its digest in
    ``.pdstates`` is updated so the file looks like a consistent part of the set. ``paddleclas``:
    as PaddleClas writes it (no digests; with EMA, ``.pdparams`` holds the EMA weights, ``.pdema`` the raw)."""
    src = run_dir["prefix"]
    if paddleclas:
        open(f"{dst}.pdparams", "wb").write(open(f"{src}.pdparams", "rb").read())
        open(f"{dst}.pdema", "wb").write(_pickle({"x": _CreatesAFile(marker)}))
        open(f"{dst}.pdstates", "wb").write(_pickle({"epoch": 1, "metric": 0.5}))
        return dst
    states = paddle.load(src + ".pdstates")
    blobs = {s: open(f"{src}.{s}", "rb").read() for s in states["digests"]}
    if suffix == "pdstates":
        states["class_names"] = _CreatesAFile(marker)
    else:
        blobs[suffix] = _pickle({"weights": _CreatesAFile(marker)} if suffix == "pdema"
                                else {"x@": _CreatesAFile(marker)})
        states["digests"][suffix] = hashlib.sha1(blobs[suffix]).hexdigest()
    for s, blob in blobs.items():
        open(f"{dst}.{s}", "wb").write(blob)
    open(f"{dst}.pdstates", "wb").write(_pickle(states))
    return dst


ENTRY_POINTS = ["train:pretrained_model", "train:checkpoints.pdparams", "train:checkpoints.pdopt",
                "train:checkpoints.pdema", "train:checkpoints.pdstates", "train:paddleclas.pdema", "eval", "export",
                "infer", "convert_weights"]


def _invoke(entry, run_dir, tmp_path, marker, payload_cls=_CreatesAFile, trust=False):
    out = str(tmp_path / "o")
    if entry.startswith(("train:checkpoints", "train:paddleclas")):
        prefix = _payload_checkpoint(run_dir, str(tmp_path / "ck"), entry.split(".")[-1], marker,
                                     paddleclas=entry.startswith("train:paddleclas"))
        tool, args = "train", train_args(run_dir["data"], out, **{"Global.checkpoints": prefix, "EMA.decay": 0.9,
                                                                   "Global.epochs": 2})
    elif entry == "convert_weights":
        src = _payload_weights(run_dir, str(tmp_path / "w.pdparams"), payload_cls, marker)
        tool, args = "convert_weights", ["--model", "MobileNetV2_x0_25", "--class-num", "3", "--src", src,
                                         "--dst", str(tmp_path / "dst.pdparams")]
        return tool, args + (["--trust-pickles"] if trust else [])
    else:
        weights = _payload_weights(run_dir, str(tmp_path / "w.pdparams"), payload_cls, marker)
        tool = {"train:pretrained_model": "train", "export": "export_model"}.get(entry, entry)
        args = train_args(run_dir["data"], out, **{"Global.pretrained_model": weights})
    return tool, args + (["--trust-pickles"] if trust else [])


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_crafted_pickle_runs_no_code_through_any_entry_point(entry, run_dir, tmp_path, capsys):
    marker = str(tmp_path / "PWNED")
    tool, args = _invoke(entry, run_dir, tmp_path, marker)
    msg = user_error(tool, args, capsys)
    assert not os.path.exists(marker)
    assert "refers to io.open, which ppnets does not load" in msg and "trust_pickles" in msg, msg
    culprit = f"ck.{entry.split('.')[-1]}" if entry.startswith("train:") and "." in entry else "w.pdparams"
    assert f"{tmp_path / culprit} refers to io.open" in msg, msg   # the file that holds the payload


def test_a_shell_command_payload_names_the_file_and_the_type(run_dir, tmp_path, capsys):
    marker = str(tmp_path / "PWNED")
    tool, args = _invoke("train:pretrained_model", run_dir, tmp_path, marker, _RunsAShellCommand)
    msg = user_error(tool, args, capsys)
    assert not os.path.exists(marker)
    assert msg.startswith(f"weights file {tmp_path / 'w.pdparams'} refers to posix.system, which ppnets does not load")


@pytest.mark.parametrize("entry", ["train:pretrained_model", "convert_weights"])
def test_trust_pickles_is_an_explicit_opt_in(entry, run_dir, tmp_path, capsys):
    """With --trust-pickles Paddle's own loader runs: the same payload does create its file
    (so the test above would notice a loader that executed it)."""
    marker = str(tmp_path / "PWNED")
    tool, args = _invoke(entry, run_dir, tmp_path, marker, trust=True)
    with pytest.raises(SystemExit):
        run(tool_main(tool), args)
    assert os.path.exists(marker)


def test_files_paddle_and_paddleclas_write_load_without_trust(run_dir, tmp_path):
    """Everything Paddle itself writes — state_dicts of every dtype, optimizer and LR states,
    protocol 2 (older PaddleClas releases) and 4 — passes the restricted loader unchanged."""
    from ppnets.checkpoint.serialization import decode
    model = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4))
    opt = paddle.optimizer.AdamW(paddle.optimizer.lr.LinearWarmup(paddle.optimizer.lr.CosineAnnealingDecay(0.1, 9),
                                                                  2, 0.0, 0.1), parameters=model.parameters())
    model(paddle.rand([1, 3, 5, 5])).mean().backward()
    opt.step()
    objects = [model.state_dict(), opt.state_dict(),
               {"i64": paddle.to_tensor([1, 2]), "f16": paddle.ones([2], "float16"), "b": paddle.to_tensor([True])},
               {"epoch": 3, "best_metric": float("-inf"), "names": ["a", "b"], "partial": None, "t": (1, 2.5)},
               {"weights": model.state_dict(), "updates": 3, "decay": 0.9}]  # nested: tensors as (name, array)
    for obj in objects:
        for protocol in (2, 4):
            buf = io.BytesIO()
            paddle.save(obj, buf, protocol=protocol)
            data = buf.getvalue()
            ours = decode(data, "f.pdparams", "file")
            theirs = paddle.load(io.BytesIO(data), return_numpy=True)
            assert ours.keys() == theirs.keys()
            _assert_same(ours, theirs)


def _assert_same(ours, theirs):
    if isinstance(theirs, dict):
        assert ours.keys() == theirs.keys()
        for k in theirs:
            _assert_same(ours[k], theirs[k])
    elif isinstance(theirs, np.ndarray):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    else:
        assert ours == theirs


@pytest.mark.parametrize("content, expected", [
    ([1, 2, 3], "does not hold a state_dict (a mapping of names to arrays), got list"),
    ({"conv1._conv.weight": "not an array"}, "does not hold a state_dict: entry 'conv1._conv.weight' is a str, not an array"),
])
def test_a_weights_pickle_of_the_wrong_type(content, expected, run_dir, tmp_path, capsys):
    path = tmp_path / "w.pdparams"
    path.write_bytes(_pickle(content))
    msg = user_error("train", train_args(run_dir["data"], str(tmp_path / "o"),
                                         **{"Global.pretrained_model": str(path)}), capsys)
    assert msg == f"weights file {path} {expected}"


def test_weights_holding_nan_are_refused(run_dir, tmp_path, capsys):
    weights = paddle.load(run_dir["prefix"] + ".pdparams")
    key = sorted(weights)[3]
    weights[key] = weights[key] * np.nan
    path = tmp_path / "nan.pdparams"
    paddle.save(weights, str(path))
    msg = user_error("eval", train_args(run_dir["data"], str(tmp_path / "o"), **{"Global.pretrained_model": str(path)}),
                     capsys)
    assert msg == (f"weights file {path}: 1 tensor(s) hold NaN or infinite values (e.g. {key}); the weights are "
                   "from a run that diverged")


def _doctored(run_dir, dst, **changes):
    """A copy of the run's checkpoint with ``.pdstates`` fields changed (or files replaced)."""
    src = run_dir["prefix"]
    states = paddle.load(src + ".pdstates")
    for suffix in states["digests"]:
        blob = changes.pop(suffix, None) or open(f"{src}.{suffix}", "rb").read()
        open(f"{dst}.{suffix}", "wb").write(blob)
        states["digests"][suffix] = hashlib.sha1(blob).hexdigest()
    states.update(changes)
    open(f"{dst}.pdstates", "wb").write(_pickle(states))
    return dst


@pytest.mark.parametrize("changes, expected", [
    ({"epoch": "three"}, "ck.pdstates: 'epoch' must be a non-negative integer, got 'three'"),
    ({"partial": {"epoch": 1}}, "ck.pdstates: 'partial' must be an epoch's progress"),
    ({"pdopt": _pickle(["not", "a", "state"])}, "ck.pdopt does not hold an optimizer state (a mapping), got list"),
])
def test_checkpoint_files_of_the_wrong_type(changes, expected, run_dir, tmp_path, capsys):
    prefix = _doctored(run_dir, str(tmp_path / "ck"), **changes)
    msg = user_error("train", train_args(run_dir["data"], str(tmp_path / "o"), **{
        "Global.checkpoints": prefix, "Global.epochs": 2, "EMA.decay": 0.9}), capsys)
    assert msg.startswith(str(tmp_path / expected)), msg


def test_an_optimizer_state_from_another_model_with_a_matching_digest(run_dir, tmp_path, capsys):
    """The .pdopt of a wider MobileNetV2 (same key names, other shapes), its digest recorded in
    .pdstates: refused before anything is set, instead of an AssertionError or a later shape crash."""
    other = tmp_path / "other"
    run(tool_main("train"), train_args(run_dir["data"], str(other), **{"Global.epochs": 1,
                                                                   "Arch.name": "MobileNetV2_x0_5"}))
    foreign = open(other / "MobileNetV2_x0_5" / "latest.pdopt", "rb").read()
    prefix = _doctored(run_dir, str(tmp_path / "ck"), pdopt=foreign)
    msg = user_error("train", train_args(run_dir["data"], str(tmp_path / "o"), **{
        "Global.checkpoints": prefix, "Global.epochs": 2, "EMA.decay": 0.9}), capsys)
    assert msg.startswith(f"{prefix}.pdopt is the optimizer state of another model: 0 entries for parameters this "
                          "model does not have, "), msg
    assert " vs parameter [" in msg


def test_a_checkpoint_of_another_optimizer(run_dir, tmp_path, capsys):
    msg = user_error("train", train_args(run_dir["data"], str(tmp_path / "o"), **{
        "Global.checkpoints": run_dir["prefix"], "Global.epochs": 2, "EMA.decay": 0.9, "Optimizer.name": "Adam"})
        + ["-o", "~Optimizer.momentum"], capsys)
    assert msg == (f"checkpoint {run_dir['prefix']} was saved with Optimizer.name=Momentum, but the config uses "
                   "Adam")


# ----------------------------------------------------------------------------- safetensors

def test_checkpoints_in_safetensors_resume_and_serve_as_pretrained_weights(run_dir, tmp_path):
    out = str(tmp_path / "o")
    args = train_args(run_dir["data"], out, **{"Global.epochs": 1, "EMA.decay": 0.9,
                                               "Global.weights_format": "safetensors"})
    run(tool_main("train"), args)
    prefix = os.path.join(out, "MobileNetV2_x0_25", "latest")
    files = sorted(os.path.basename(p) for p in os.listdir(os.path.dirname(prefix)) if p.startswith("latest."))
    assert files == ["latest.ema.safetensors", "latest.pdopt", "latest.pdstates", "latest.safetensors"]
    # the files are Paddle's own safetensors: paddle.load(..., safetensors=True) reads them
    ours = paddle.load(prefix + ".safetensors", safetensors=True)
    assert set(ours) == set(paddle.load(run_dir["prefix"] + ".pdparams"))
    # resume (EMA update count from .pdstates), then evaluate from the prefix
    run(tool_main("train"), train_args(run_dir["data"], out, **{"Global.epochs": 2, "EMA.decay": 0.9,
                                                            "Global.weights_format": "safetensors",
                                                            "Global.checkpoints": prefix}))
    log = open(os.path.join(out, "MobileNetV2_x0_25", "train.log")).read()
    assert "resumed from" in log and "[Train][Epoch 2/2][Avg]" in log
    assert paddle.load(prefix + ".pdstates")["ema_updates"] == 2
    run(tool_main("eval"), train_args(run_dir["data"], str(tmp_path / "e"), **{"Global.pretrained_model": prefix}))


def test_paddle_written_safetensors_load_as_pretrained_and_convert(run_dir, tmp_path, capsys):
    src = str(tmp_path / "w.safetensors")
    paddle.save({k: paddle.to_tensor(v) for k, v in paddle.load(run_dir["prefix"] + ".pdparams").items()}, src,
                safetensors=True)
    dst = str(tmp_path / "out.safetensors")
    run(tool_main("convert_weights"), ["--model", "MobileNetV2_x0_25", "--class-num", "3", "--src", src, "--dst", dst])
    a, b = paddle.load(src, safetensors=True), paddle.load(dst, safetensors=True)
    assert set(a) == set(b) and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    run(tool_main("eval"), train_args(run_dir["data"], str(tmp_path / "e"), **{"Global.pretrained_model": dst}))
    assert "top1" in capsys.readouterr().out + open(tmp_path / "e" / "MobileNetV2_x0_25" / "eval.log").read()


def test_a_truncated_safetensors_file(run_dir, tmp_path, capsys):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    msg = user_error("train", train_args(run_dir["data"], str(tmp_path / "o"),
                                         **{"Global.pretrained_model": str(path)}), capsys)
    assert msg == f"cannot read weights file {path}: truncated or not a Paddle file (SafetensorError)"


# ----------------------------------------------------------------------------- dtypes and sizes

def _as_dtype(run_dir, dtype):
    """The run's weights as paddle Tensors of ``dtype`` (floats only; BatchNorm statistics included)."""
    weights = paddle.load(run_dir["prefix"] + ".pdparams", return_numpy=True)
    return {k: paddle.to_tensor(v).astype(dtype) for k, v in weights.items()}


def _loaded(path):
    from ppnets.checkpoint import load_pretrained
    model = ppnets.build_model("MobileNetV2_x0_25", class_num=3)
    load_pretrained(model, path, "MobileNetV2_x0_25", strict=True)
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("dtype, suffix", [("bfloat16", "safetensors"), ("float16", "safetensors"),
                                           ("float16", "pdparams")])
def test_half_precision_weights_load_as_their_values_with_a_notice(dtype, suffix, run_dir, tmp_path, caplog):
    """bfloat16 safetensors are read as bfloat16 and widened (numpy has no bfloat16: Paddle's .numpy()
    gives the raw bits as uint16, which cast to float32 would be numbers around 1e4); float16 is
    converted to the parameters' float32; each says so."""
    tensors = _as_dtype(run_dir, dtype)
    path = str(tmp_path / f"w.{suffix}")
    paddle.save(tensors, path, **({"safetensors": True} if suffix == "safetensors" else {}))
    with caplog.at_level("INFO", logger="ppnets"):
        loaded = _loaded(path)
    for key, tensor in tensors.items():
        np.testing.assert_array_equal(loaded[key], tensor.astype("float32").numpy(), err_msg=key)
    original = paddle.load(run_dir["prefix"] + ".pdparams", return_numpy=True)
    key = max(original, key=lambda k: np.abs(original[k]).max())
    assert np.abs(loaded[key] - original[key]).max() <= 1e-2 * np.abs(original[key]).max()
    notice = f"{path}: {len(tensors)} bfloat16 tensor(s) converted to float32" if dtype == "bfloat16" else \
        f"weights file {path}: converted {len(tensors)} tensor(s) from float16 to the model's float32"
    assert notice in caplog.text


@pytest.mark.parametrize("dtype, hint", [
    ("int32", " (a quantized or foreign file?)"),
    ("uint16", " (bfloat16 weights pickled by Paddle are uint16 bits: save them as safetensors, or as float32)")])
def test_integer_weights_into_float_parameters_are_refused(dtype, hint, run_dir, tmp_path):
    from ppnets.checkpoint import load_checkpoint
    from ppnets.errors import CheckpointError
    weights = {k: v.astype(dtype) for k, v in paddle.load(run_dir["prefix"] + ".pdparams", return_numpy=True).items()}
    key = next(iter(weights))
    path = tmp_path / "w.pdparams"
    path.write_bytes(_pickle(weights))
    with pytest.raises(CheckpointError) as e:
        _loaded(str(path))
    assert str(e.value) == (f"weights file {path}: entry '{key}' is {dtype}, but the model's tensor is float32; "
                            f"{dtype} values are not converted to float32{hint}")
    prefix = _doctored(run_dir, str(tmp_path / "ck"), pdparams=_pickle(weights))   # the same in a checkpoint
    with pytest.raises(CheckpointError, match=rf"^{prefix}.pdparams: entry '{key}' is {dtype}, but the model"):
        load_checkpoint(prefix, ppnets.build_model("MobileNetV2_x0_25", class_num=3), None)


def _crafted_pickle(n_arrays, n_bytes):
    """A protocol-3 pickle: a list of ``n_arrays`` numpy arrays of ``n_bytes`` declared through
    ``_reconstruct`` (numpy's own constructor), without their data."""
    item = b"h\x01h\x02J" + n_bytes.to_bytes(4, "little") + b"\x85C\x01b\x87R"
    return (b"\x80\x03cnumpy._core.multiarray\n_reconstruct\nq\x010cnumpy\nndarray\nq\x020]q\x00("
            + item * n_arrays + b"e.")


def test_a_pickle_is_bounded_by_its_own_size_before_any_array_is_built(run_dir, tmp_path, capsys):
    """The 65-byte .pdparams that calls ``numpy.ndarray((15000, 15000))``: 1.8 GB uninitialised (then
    reported as NaN weights) if it were run; refused from its declared size instead. Declared sizes
    add up: arrays of a few bytes each cannot exceed the file together either."""
    from ppnets.checkpoint.serialization import decode
    from ppnets.errors import CheckpointError
    path = tmp_path / "huge.pdparams"
    path.write_bytes(b"\x80\x02}q\x00X\x17\x00\x00\x00features.0.conv.weightsq\x01"   # {key: numpy.ndarray(
                     b"cnumpy\nndarray\nJ\x98:\x00\x00J\x98:\x00\x00\x86\x85Rs.")          # (15000, 15000))}
    assert len(path.read_bytes()) == 65
    msg = user_error("train", train_args(run_dir["data"], str(tmp_path / "o"),
                                         **{"Global.pretrained_model": str(path)}), capsys)
    assert msg == (f"weights file {path} declares arrays larger than the whole file (65 bytes) can hold (at an array "
                   "[15000, 15000] float64 of 1,800,000,000 bytes): refused before allocating it (a damaged or "
                   "crafted file)")
    blob = _crafted_pickle(1, 10 ** 9)
    with pytest.raises(CheckpointError, match=r"at an array \[1000000000\] int8 of 1,000,000,000 bytes"):
        decode(blob, "a.pdparams", "weights file")
    blob = _crafted_pickle(200, 400)   # 400 bytes each, fewer than the file's 3,066; 80,000 together
    assert len(blob) == 3066
    with pytest.raises(CheckpointError, match=r"whole file \(3,066 bytes\) can hold \(at an array \[400\] int8"):
        decode(blob, "b.pdparams", "weights file")
    arrays = decode(_crafted_pickle(7, 10), "c.pdparams", "weights file")   # 70 bytes declared in 171: read
    assert [a.shape for a in arrays] == [(10,)] * 7
