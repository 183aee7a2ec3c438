"""Size limits of images and the decoder's own output, so that a hostile image is one line.

* :data:`MAX_SIDE`: the largest side a resize or crop may produce (a config asking for
  200,000 px would allocate 120 GB per image).
* :func:`image_pixels` reads an encoded image's width and height from its header (Pillow parses
  only the header, nothing is decoded), so :class:`~ppnets.data.transforms.DecodeImage` refuses
  a decompression bomb — a 30000×30000 PNG of a few hundred KiB — before OpenCV allocates it.
* :func:`native_stderr_silenced`: libpng and OpenCV print their own lines (``libpng warning:
  iCCP: …``, ``[ WARN:0] … imdecode_(): can't read header``) straight to file descriptor 2,
  around ppnets's one-line error; decoding runs with that descriptor pointed at ``/dev/null``.
"""
from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from typing import Iterator, Optional, Tuple

__all__ = ["MAX_SIDE", "DEFAULT_MAX_PIXELS", "image_pixels", "native_stderr_silenced"]

#: the largest width or height a resize/crop op may produce
MAX_SIDE = 16384
#: DecodeImage's default ``max_pixels``: 100 megapixels (300 MB decoded), above any camera photo
DEFAULT_MAX_PIXELS = 100_000_000

_fd_lock = threading.Lock()


def image_pixels(data: bytes) -> Optional[Tuple[int, str]]:
    """``(pixel count, "a WxH image")`` from the header of the encoded image ``data``; None when the header
    is not one Pillow knows (OpenCV then decides, within its own limit of 2**30 pixels)."""
    from PIL import Image
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # DecompressionBombWarning: ppnets applies its own limit
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
                return int(width) * int(height), f"a {width}x{height} image"
    except Image.DecompressionBombError as e:  # above Pillow's own hard limit; its message has the count
        digits = "".join(ch if ch.isdigit() else " " for ch in str(e)).split()
        pixels = int(digits[0]) if digits else 2 * (Image.MAX_IMAGE_PIXELS or 0)
        return pixels, f"an image of {pixels:,} pixels"
    except Exception:  # not an image Pillow can identify, or a damaged header
        return None


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at ``/dev/null`` for the block (native libraries' messages only;
    Python's ``sys.stderr`` object is untouched). Serialised between threads of the process."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    with _fd_lock:
        saved = os.dup(2)
        try:
            os.dup2(null, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)
