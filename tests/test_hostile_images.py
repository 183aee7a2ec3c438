"""Hostile images and file lists: a decompression bomb in bounded memory, resize limits, the
decoders' own stderr lines, file lists in Latin-1 or with a UTF-8 byte-order mark
(docs/reliability.md, "Datasets")."""
from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import zlib

import cv2
import numpy as np
import pytest

from ppnets.cli import run
from ppnets.data import CHECK_HINT

from helpers.runs import REPO, make_digits_slice
from helpers.cli import tool_main, train_args, user_error

MEMORY_CAP = 3 << 29  # 1.5 GiB of address space: decoding the bomb needs 0.9-2.7 GB more


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: str, width: int = 30000, height: int = 30000) -> str:
    """A valid grayscale PNG of ``width``×``height`` black pixels: 900 MB decoded, < 1 MB on disk."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    parts = [comp.compress(row * 64) for _ in range(height // 64)] + [comp.compress(row * (height % 64)),
                                                                      comp.flush()]
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b""))
    return path


def _png(img) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def png_with_bad_icc_profile() -> bytes:
    """Decodable, but libpng prints 'libpng warning: iCCP: …' while reading it."""
    png = _png(np.full((32, 32, 3), 90, np.uint8))
    return png[:33] + _chunk(b"iCCP", b"bad\x00\x00" + zlib.compress(b"x" * 100)) + png[33:]


def png_with_bad_crc() -> bytes:
    """Undecodable; libpng prints 'libpng error: …' and OpenCV a '[ WARN …]' line."""
    png = _png(np.full((32, 32, 3), 90, np.uint8))
    i = png.index(b"IDAT") + 4
    return png[:i] + bytes([png[i] ^ 1]) + png[i + 1:]


@pytest.fixture
def data(tmp_path):
    return make_digits_slice(str(tmp_path / "data"), n_train=8, n_val=4)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return png_bomb(str(tmp_path_factory.mktemp("bomb") / "bomb.png"))


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def test_a_decompression_bomb_is_one_line_in_bounded_memory(bomb, data, tmp_path):
    target = os.path.join(data, "train", "1", "zz_bomb.png")
    with open(target, "wb") as f:
        f.write(open(bomb, "rb").read())
    r = subprocess.run([sys.executable, "tools/train.py", *train_args(data, str(tmp_path / "o"), **{
        "DataLoader.Train.sampler.shuffle": False, "DataLoader.Train.sampler.batch_size": 5,
        "DataLoader.Train.loader.num_workers": 2})],
        cwd=REPO, capture_output=True, text=True, timeout=300, preexec_fn=_capped)
    assert r.returncode == 2, r.stderr[-2000:]
    assert r.stderr.strip() == (f"ppnets: error: {target}: an image of 900,000,000 pixels (900.0 megapixels) is "
                                "larger than DecodeImage.max_pixels=100,000,000 (a decompression bomb? raise "
                                "max_pixels if the image is genuine)" + CHECK_HINT)


def test_the_pixel_limit_is_configurable(data, tmp_path, capsys):
    first = sorted(os.listdir(os.path.join(data, "train", "0")))[0]
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{
        "DataLoader.Train.dataset.transform_ops.0": "{DecodeImage: {max_pixels: 1000}}",
        "DataLoader.Train.sampler.shuffle": False}), capsys)
    assert msg == (f"{os.path.join(data, 'train', '0', first)}: a 32x32 image (0.0 megapixels) is larger than "
                   "DecodeImage.max_pixels=1,000 (a decompression bomb? raise max_pixels if the image is genuine)"
                   + CHECK_HINT)
    run(tool_main("train"), train_args(data, str(tmp_path / "o2"), **{
        "Global.epochs": 1, "DataLoader.Train.dataset.transform_ops.0": "{DecodeImage: {max_pixels: 1024}}"}))


@pytest.mark.parametrize("override, message", [
    ("DataLoader.Train.dataset.transform_ops.1={ResizeImage: {size: 200000}}",
     "ResizeImage.size: expected at most 16384 px per side, got 200000"),
    ("DataLoader.Train.dataset.transform_ops.1={ResizeImage: {resize_short: 200000}}",
     "ResizeImage.resize_short: expected at most 16384 px, got 200000"),
    ("DataLoader.Train.dataset.transform_ops.1={RandCropImage: {size: [32, 100000]}}",
     "RandCropImage.size: expected at most 16384 px per side, got [32, 100000]"),
    ("DataLoader.Train.dataset.transform_ops.0={DecodeImage: {max_pixels: 0}}",
     "DecodeImage.max_pixels: expected a positive integer, got 0"),
])
def test_resize_and_decode_limits_in_the_config(override, message, data, tmp_path, capsys):
    assert user_error("train", ["-c", os.path.join(REPO, "configs", "mobilenetv2.yaml"), "-o", override], capsys) \
        == message


def test_an_elongated_image_cannot_resize_beyond_the_limit(data, tmp_path, capsys):
    thin = os.path.join(data, "train", "0", "aa_thin.png")
    cv2.imwrite(thin, np.zeros((1, 4000, 3), np.uint8))
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **{
        "DataLoader.Train.dataset.transform_ops.1": "{ResizeImage: {resize_short: 32}}",
        "DataLoader.Train.sampler.shuffle": False}), capsys)
    assert msg == (f"{thin}: ResizeImage: resizing a 4000x1 image to short side 32 gives 128000x32, more than "
                   "16384 px per side" + CHECK_HINT)


@pytest.mark.parametrize("content, expected", [
    (png_with_bad_icc_profile(), None),
    (png_with_bad_crc(), "not a decodable image (corrupt, truncated or not an image)"),
    (b"\xff\xd8\xff\xe0" + b"junk" * 10, "not a decodable image (corrupt, truncated or not an image)"),
], ids=["libpng-warning", "libpng-error", "broken-jpeg"])
def test_the_decoders_own_lines_stay_off_stderr(content, expected, tmp_path):
    """The real script in a subprocess: stderr is exactly ppnets's line (or empty)."""
    image = tmp_path / "img.png"
    image.write_bytes(content)
    code = ("import sys\nfrom ppnets.data import build_transforms\nfrom ppnets.cli import run\n"
            "def main(argv):\n"
            "    t = build_transforms([{'DecodeImage': {}}, {'ResizeImage': {'size': 8}}], 'ops')\n"
            "    print(t(open(argv[0], 'rb').read()).shape)\n"
            "run(main, sys.argv[1:])\n")
    r = subprocess.run([sys.executable, "-c", code, str(image)], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    err = "\n".join(line for line in r.stderr.splitlines() if "ccache" not in line and "warnings.warn" not in line)
    if expected is None:
        assert r.returncode == 0 and err == "" and "(8, 8, 3)" in r.stdout, r.stderr
    else:
        assert r.returncode == 2 and err == f"ppnets: error: {expected}", r.stderr


def _file_list(data, tmp_path, raw: bytes):
    path = tmp_path / "list.txt"
    path.write_bytes(raw)
    return {"DataLoader.Train.dataset": "{name: FileListDataset, image_root: %s, cls_label_path: %s, class_num: 3, "
                                        "transform_ops: [{DecodeImage: {}}, {NormalizeImage: {}}, {ToCHWImage: {}}]}"
                                        % (os.path.join(data, "train"), path),
            "DataLoader.Train.sampler.batch_size": 4, "Global.epochs": 1}


def _lines(data):
    return [f"{c}/{n} {c}" for c in "012" for n in sorted(os.listdir(os.path.join(data, "train", c)))[:3]]


def test_a_file_list_with_a_utf8_byte_order_mark(data, tmp_path, capsys):
    extra = _file_list(data, tmp_path, b"\xef\xbb\xbf" + ("\n".join(_lines(data)) + "\n").encode())
    run(tool_main("train"), train_args(data, str(tmp_path / "o"), **extra))
    extra = _file_list(data, tmp_path, b"\xef\xbb\xbf0/gone.png 0\n")
    msg = user_error("train", train_args(data, str(tmp_path / "o2"), **extra), capsys)
    assert msg == f"{tmp_path / 'list.txt'}:1: image not found: {os.path.join(data, 'train', '0/gone.png')}{CHECK_HINT}"
    assert "\ufeff" not in msg


def test_a_file_list_in_latin1(data, tmp_path, capsys):
    """Paths keep their bytes: a Latin-1 list finds a Latin-1 file name, and a missing one is shown
    with the byte escaped."""
    folder = os.path.join(data, "train", "0")
    first = sorted(os.listdir(folder))[0]
    os.rename(os.path.join(folder, first).encode(), os.path.join(folder, "caf\xe9.png").encode("latin-1"))
    raw = ("\n".join(["0/caf\xe9.png 0"] + _lines(data)[1:]) + "\n").encode("latin-1")
    run(tool_main("train"), train_args(data, str(tmp_path / "o"), **_file_list(data, tmp_path, raw)))
    raw = "0/d\xe9j\xe0_vu.png 0\n".encode("latin-1")
    msg = user_error("train", train_args(data, str(tmp_path / "o2"), **_file_list(data, tmp_path, raw)), capsys)
    assert msg == f"{tmp_path / 'list.txt'}:1: image not found: {os.path.join(data, 'train')}/0/d\\xe9j\\xe0_vu.png" \
        + CHECK_HINT


def test_a_class_folder_name_that_is_not_utf8(data, tmp_path, capsys):
    for split in ("train", "val"):
        os.rename(os.path.join(data, split, "2").encode(), os.path.join(data, split, "caf\xe9").encode("latin-1"))
    msg = user_error("train", train_args(data, str(tmp_path / "o")), capsys)
    assert msg == (f"{os.path.join(data, 'train')}/caf\\xe9: the class folder's name is not UTF-8 (a Latin-1 name?); "
                   "rename it, class names are written to label_list.txt and logs" + CHECK_HINT)


def test_a_file_list_label_implying_too_many_classes(data, tmp_path, capsys):
    extra = _file_list(data, tmp_path, (_lines(data)[0].split()[0] + " 1000000000000000000000000000000\n").encode())
    extra["DataLoader.Train.dataset"] = extra["DataLoader.Train.dataset"].replace("class_num: 3, ", "")
    msg = user_error("train", train_args(data, str(tmp_path / "o"), **extra), capsys)
    assert msg == (f"{tmp_path / 'list.txt'}: label 1000000000000000000000000000000 would make "
                   "1,000,000,000,000,000,000,000,000,000,001 classes (more than 100,000); set class_num, relabel: "
                   "true or fix the label" + CHECK_HINT)
