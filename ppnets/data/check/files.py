"""One image file, cheaply: its header (PIL's ``Image.open`` reads only that), a hash of its bytes
read in chunks, and whether it ends with its format's end marker (a truncated PNG or JPEG does not).

Nothing is decoded unless asked (``decode``: the training's own decoder on the whole file).
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

from PIL import Image

from ...errors import DataError

__all__ = ["ImageInfo", "inspect_image", "GRAY_MODES"]

CHUNK = 1 << 20
#: bytes of the file's end searched for the end marker (some writers pad or append a little)
TAIL = 1024
#: PIL modes of one-channel images
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_PNG_GRAY = (0, 4)  # IHDR colour types: gray, gray + alpha


@dataclass
class ImageInfo:
    """What :func:`inspect_image` found; ``defects`` are ``(kind, detail)`` pairs."""

    path: str
    size: int = 0
    digest: Optional[str] = None
    format: str = ""
    mode: str = ""
    width: int = 0
    height: int = 0
    bits: int = 8
    gray: bool = False
    orientation: int = 1
    defects: List[Tuple[str, str]] = field(default_factory=list)
    splits: str = ""  # the splits that list it (set by the checker)

    @property
    def readable(self) -> bool:
        return bool(self.width) and not any(k in ("missing", "zero-byte", "unreadable") for k, _ in self.defects)


def inspect_image(path: str, digest: bool = True, decode: Optional[Callable[[bytes], object]] = None,
                  max_pixels: Optional[int] = None) -> ImageInfo:
    """Header, hash and end marker of the image at ``path``; with ``decode`` (a bytes → image
    callable raising DataError) also whether it decodes."""
    info = ImageInfo(path)
    try:
        info.size = os.path.getsize(path)
    except OSError as e:
        info.defects.append(("missing" if isinstance(e, FileNotFoundError) else "unreadable",
                             f"cannot read: {e.strerror or e}"))
        return info
    if info.size == 0:
        info.defects.append(("zero-byte", "empty file (0 bytes)"))
        return info
    try:
        with open(path, "rb") as f:
            _read_header(f, info)
            f.seek(0)
            head, tail, data = _read_bytes(f, info, digest, keep=decode is not None)
    except OSError as e:
        info.defects.append(("unreadable", f"cannot read: {e.strerror or e}"))
        return info
    if not info.format:
        return info
    if info.format == "PNG" and len(head) >= 26:
        info.bits = head[24]
        info.gray = head[25] in _PNG_GRAY
    ending = _missing_end(info.format, head, tail, info.size)
    if ending:
        info.defects.append(("truncated", ending))
    if max_pixels is not None and info.width * info.height > max_pixels:
        info.defects.append(("too-large", f"{info.width}×{info.height} is more than {max_pixels:,} pixels "
                                          "(DecodeImage.max_pixels): training refuses it"))
    if decode is not None and not ending:
        try:
            decode(data)
        except DataError as e:
            info.defects.append(("unreadable", str(e)))
    return info


def _read_header(f, info: ImageInfo) -> None:
    """Format, mode, size, bit depth and EXIF orientation from the header."""
    try:
        with Image.open(f) as im:
            info.format = im.format or "?"
            info.mode = im.mode
            info.width, info.height = im.size
            info.gray = im.mode in GRAY_MODES
            info.bits = 16 if im.mode.startswith("I;16") else 32 if im.mode in ("I", "F") else 8
            if im.format == "TIFF":
                bits = im.tag_v2.get(258)
                info.bits = max(bits) if isinstance(bits, tuple) and bits else bits or info.bits
            if im.format in ("JPEG", "MPO", "TIFF", "WEBP"):
                info.orientation = int(im.getexif().get(0x0112, 1) or 1)
    except Exception as e:  # PIL raises many kinds (UnidentifiedImageError, SyntaxError, struct.error …)
        info.format = ""
        detail = str(e).split(" (")[0] if not isinstance(e, Image.UnidentifiedImageError) else "unknown format"
        info.defects.append(("unreadable", f"not an image PIL can read ({detail})"))


def _read_bytes(f, info: ImageInfo, digest: bool, keep: bool) -> Tuple[bytes, bytes, Optional[bytes]]:
    """(first 32 bytes, last :data:`TAIL` bytes, all bytes when ``keep``); hashes the file on the way."""
    if not (digest or keep):
        head = f.read(32)
        f.seek(max(0, info.size - TAIL))
        return head, f.read(TAIL), None
    h = hashlib.blake2b(digest_size=16)
    parts: List[bytes] = []
    head = tail = b""
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        h.update(chunk)
        if not head:
            head = chunk[:32]
        tail = (tail + chunk)[-TAIL:]
        if keep:
            parts.append(chunk)
    if digest:
        info.digest = h.hexdigest()
    return head, tail, b"".join(parts) if keep else None


def _missing_end(fmt: str, head: bytes, tail: bytes, size: int) -> str:
    """Why the file looks cut short, or "" (PNG: IEND chunk, JPEG: EOI marker, WebP/BMP: the size
    in the header). Other formats are checked only by ``decode``."""
    if fmt == "PNG" and b"IEND" not in tail:
        return "truncated PNG: the file ends before its IEND chunk"
    if fmt in ("JPEG", "MPO") and b"\xff\xd9" not in tail:
        return "truncated JPEG: the file ends before its end-of-image marker"
    if fmt == "WEBP" and len(head) >= 8 and struct.unpack("<I", head[4:8])[0] + 8 > size:
        return f"truncated WebP: {size:,} bytes, the header says {struct.unpack('<I', head[4:8])[0] + 8:,}"
    if fmt == "BMP" and len(head) >= 6 and struct.unpack("<I", head[2:6])[0] > size:
        return f"truncated BMP: {size:,} bytes, the header says {struct.unpack('<I', head[2:6])[0]:,}"
    return ""
