"""Published weights: resolving a weights setting to a local file, downloading it once, checking its digest.

A weights setting (``Global.pretrained_model``, ``Arch.pretrained``, ``build_model(pretrained=…)``) is

- a local file or prefix — used as it is, nothing is requested;
- ``paddleclas`` / ``ssld`` — PaddleClas's ImageNet weights of the model (``MODEL_URLS``, see
  :mod:`.sources`), cached where PaddleClas caches them, ``~/.paddleclas/weights/``, so the two tools
  share files;
- an ``http(s)://`` URL — downloaded into the same folder under its file name (PaddleClas's rule);
- ``timm/<model>.<tag>`` (timm's hub id, also ``hf-hub:timm/…``) or ``timm`` (timm's default weights
  of the model) — ``model.safetensors`` of that repository through ``huggingface_hub``: its cache,
  ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` work as for timm's users. A file put by hand at
  ``$PPNETS_HOME/timm/<model>.<tag>.safetensors`` is used first.

A file in a cache is used without any request. Plain URLs are downloaded with ``pooch`` (progress
bar, retries, a temporary file renamed only when complete and checked). ``PPNETS_PADDLECLAS_MIRROR``
(or ``Arch.pretrained_mirror``) replaces PaddleClas's host, as ``HF_ENDPOINT`` does the hub's.
``PPNETS_OFFLINE=1`` (the hub: also ``HF_HUB_OFFLINE=1``) requests nothing. A download that cannot
happen is one :class:`~ppnets.errors.CheckpointError` line naming the URL and the exact path to put
the file at, and leaves nothing in the cache.

Each cached file's SHA-256 is recorded in ``SHA256SUMS`` beside it (``sha256sum -c`` reads it) the
first time it is used; a later difference is an error naming both digests, as is a difference from
a pinned digest (``Arch.pretrained_sha256``).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ..arch.registry import TIMM_NAMES, model_info
from ..errors import CheckpointError, ConfigError
from ..utils.files import atomic_write, sha256_file
from ..utils.logger import get_logger
from .sources import PADDLECLAS_HOST, TIMM_HUB, paddleclas_url

__all__ = ["OFFLINE_ENV", "MIRROR_ENV", "HOME_ENV", "MANIFEST", "SOURCES", "Weights", "paddleclas_cache",
           "ppnets_home", "hf_cache", "offline", "sha256_file", "read_manifest", "is_download", "hub_id_of",
           "timm_hub_ids", "source_spec", "resolve", "check_digest", "hub_dropin_path", "fetch_url", "fetch_hub",
           "cached_hub_file", "timm_target"]

OFFLINE_ENV = "PPNETS_OFFLINE"
MIRROR_ENV = "PPNETS_PADDLECLAS_MIRROR"
HOME_ENV = "PPNETS_HOME"
MANIFEST = "SHA256SUMS"
#: the named sources of a model's weights (besides paths, URLs and hub ids)
SOURCES = ("paddleclas", "ssld", "timm")
#: extra attempts of a failed plain-URL transfer, and the seconds a connection may stay silent
RETRIES = 2
TIMEOUT = 60

_HUB_ID = re.compile(r"^(?:hf-hub:)?(timm/([A-Za-z0-9_\-]+)(?:\.([A-Za-z0-9_\-]+))?)$")
_HUB_FILE = "model.safetensors"


@dataclass(frozen=True)
class Weights:
    """A resolved weights setting: the local ``path``, what was asked for (``origin``: the path, URL
    or hub id), the cache manifest that records it (``(folder, key)``, None for the user's own
    files) and, for timm's hub, timm's model name."""

    path: str
    origin: str
    manifest: Optional[Tuple[str, str]] = None
    timm: Optional[str] = None


def _true(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def offline(hub: bool = False) -> Optional[str]:
    """The variable that forbids requests (``PPNETS_OFFLINE``; for the hub also ``HF_HUB_OFFLINE``), or None."""
    for name in (OFFLINE_ENV, "HF_HUB_OFFLINE") if hub else (OFFLINE_ENV,):
        if _true(os.environ.get(name)):
            return name
    return None


def paddleclas_cache() -> str:
    """PaddleClas's weights folder (its ``WEIGHTS_HOME``), shared with it."""
    return os.path.expanduser(os.path.join("~", ".paddleclas", "weights"))


def ppnets_home() -> str:
    """``$PPNETS_HOME``, default ``~/.cache/ppnets``: the hub files' manifest and hand-placed timm files."""
    return os.path.expanduser(os.environ.get(HOME_ENV) or os.path.join("~", ".cache", "ppnets"))


def hf_cache() -> str:
    """huggingface_hub's cache folder as its variables set it now (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return os.path.join(os.path.expanduser(home), "hub")


def _hf_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


# -- the manifest ------------------------------------------------------------------------------------------

def read_manifest(folder: str) -> Dict[str, str]:
    """``{key: sha256}`` of ``folder/SHA256SUMS`` (``sha256sum``'s format), ``{}`` when there is none."""
    path = os.path.join(folder, MANIFEST)
    out: Dict[str, str] = {}
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                digest, _, key = line.rstrip("\n").partition("  ")
                if len(digest) == 64 and key:
                    out[key] = digest
    return out


def _record(folder: str, key: str, digest: str) -> None:
    """Add ``key`` to ``folder``'s manifest (rewritten as a unit, under a lock against other processes)."""
    os.makedirs(folder, exist_ok=True)
    lock = open(os.path.join(folder, f".{MANIFEST}.lock"), "w")
    try:
        try:
            import fcntl
            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        entries = read_manifest(folder)
        entries[key] = digest
        atomic_write(os.path.join(folder, MANIFEST), "".join(f"{d}  {k}\n" for k, d in sorted(entries.items())))
    finally:
        lock.close()


def check_digest(weights: Weights, digest: str, pinned: Optional[str] = None) -> None:
    """Compare ``digest`` (of ``weights.path``'s bytes) with the pinned one and with the cache's
    manifest, recording it there the first time; a difference is a CheckpointError naming both."""
    if pinned and digest != pinned.strip().lower():
        raise CheckpointError(f"{weights.path}: SHA-256 {digest} differs from the pinned Arch.pretrained_sha256 "
                              f"{pinned.strip().lower()} (a different file: check the source, or update the pin)")
    blob = os.path.basename(os.path.realpath(weights.path))
    if weights.timm and re.fullmatch(r"[0-9a-f]{64}", blob) and blob != digest:  # the hub names LFS blobs by digest
        raise CheckpointError(f"{weights.path}: SHA-256 {digest} differs from the hub's {blob}: a damaged download; "
                              f"delete {os.path.realpath(weights.path)} to download it again")
    if weights.manifest is None:
        return
    folder, key = weights.manifest
    recorded = read_manifest(folder).get(key)
    if recorded is None:
        try:
            _record(folder, key, digest)
        except OSError as e:  # a read-only cache is still used
            get_logger().warning(f"cannot record the SHA-256 of {weights.path} in {folder}: {e.strerror or e}")
    elif recorded != digest:
        raise CheckpointError(f"{weights.path}: SHA-256 {digest} differs from {recorded} recorded in "
                              f"{os.path.join(folder, MANIFEST)} when it was first used: the file changed; delete it "
                              "to download it again")


# -- naming -------------------------------------------------------------------------------------------------

def is_download(spec: str) -> bool:
    """Whether ``spec`` names published weights (a source, URL or hub id) rather than a local file."""
    if not isinstance(spec, str):
        return False
    return spec.lower() in SOURCES or spec.startswith(("http://", "https://")) or _HUB_ID.match(spec) is not None


def hub_id_of(spec: str) -> Optional[str]:
    """``timm/<model>.<tag>`` for a hub id (``hf-hub:`` accepted, a missing tag is timm's default one), else None."""
    m = _HUB_ID.match(spec) if isinstance(spec, str) else None
    if m is None:
        return None
    repo, model, tag = m.groups()
    if tag is None:
        if model not in TIMM_HUB:
            raise ConfigError(f"{spec}: no tag, and timm's results list no ImageNet weights of '{model}'; give the "
                              "hub id in full, timm/<model>.<tag>")
        return f"timm/{model}.{TIMM_HUB[model][0][0]}"
    return repo


def timm_hub_ids(name: str) -> List[Tuple[str, int, float]]:
    """``(hub id, image size, top-1)`` of timm's published weights of ppnets model ``name``
    (through the timm names registered for it), timm's default of each first."""
    return [(f"timm/{t}.{tag}", size, top1) for t in model_info(name).timm for tag, size, top1 in TIMM_HUB.get(t, ())]


def source_spec(name: Optional[str], source: str) -> str:
    """The URL (``paddleclas``, ``ssld``) or hub id (``timm``) of model ``name``'s weights from ``source``."""
    source = source.lower()
    if name is None:
        raise ConfigError(f"pretrained weights '{source}': the weights of which model? (no Arch.name here)")
    info = model_info(name)
    if source in ("paddleclas", "ssld"):
        url = paddleclas_url(name, ssld=source == "ssld")
        if url is None:
            other = " (timm's: 'timm')" if timm_hub_ids(name) else ""
            raise CheckpointError(f"PaddleClas publishes no weights of {name}{other}; see python tools/weights.py list")
        return url
    ids = timm_hub_ids(name)
    if not ids:
        why = f"timm publishes none for {', '.join(info.timm)}" if info.timm else "no timm model is registered as it"
        raise CheckpointError(f"no timm weights for {name}: {why}; see python tools/weights.py list")
    return ids[0][0]


def hub_dropin_path(hub_id: str) -> str:
    """Where a hand-downloaded ``model.safetensors`` of ``hub_id`` is looked for first."""
    return os.path.join(ppnets_home(), "timm", f"{hub_id.split('/', 1)[1]}.safetensors")


# -- fetching -----------------------------------------------------------------------------------------------

def _why(error: BaseException) -> str:
    """One short line saying why a transfer failed (the HTTP status of the error or of its cause)."""
    cause: Optional[BaseException] = error
    while cause is not None:
        response = getattr(cause, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            reason = getattr(response, "reason", None) or getattr(response, "reason_phrase", "") or ""
            return f"HTTP {status} {reason}".strip()
        cause = cause.__cause__ or cause.__context__
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text[:160]}"


class _Refused(Exception):
    """A client error (404, 403 …): retrying cannot help, so pooch's retry loop lets it through."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.response = getattr(error, "response", None)


class _ToPPNetsLog(logging.Handler):
    """pooch's messages (a transfer retried …) through ppnets's logger, like every other line of a run."""

    def emit(self, record: logging.LogRecord) -> None:
        get_logger().log(record.levelno, record.getMessage())


def _downloader():
    """pooch's HTTP downloader (progress bar on stderr), with client errors not retried."""
    import pooch
    import requests

    pooch.get_logger().handlers[:] = [_ToPPNetsLog()]  # not its own handler on the stderr of its import time

    http = pooch.HTTPDownloader(progressbar=True, timeout=TIMEOUT)

    def download(url, output_file, store, check_only=False):
        try:
            return http(url, output_file, store, check_only=check_only)
        except requests.exceptions.HTTPError as e:
            status = getattr(e.response, "status_code", 500)
            if 400 <= status < 500 and status not in (408, 429):
                raise _Refused(e) from e
            raise
    return download


def fetch_url(url: str, mirror: Optional[str] = None, sha256: Optional[str] = None) -> Weights:
    """The cached copy of ``url`` (PaddleClas's folder, its file name), downloaded first if missing."""
    folder = paddleclas_cache()
    name = os.path.basename(url.split("?", 1)[0])
    if name in ("", ".", ".."):
        raise ConfigError(f"{url}: the URL names no file")
    dest = os.path.join(folder, name)
    weights = Weights(dest, url, (folder, name))
    if os.path.isfile(dest):
        return weights
    mirror = mirror or os.environ.get(MIRROR_ENV)
    source = f"{mirror.rstrip('/')}{url[len(PADDLECLAS_HOST):]}" if mirror and url.startswith(PADDLECLAS_HOST) else url
    where = f"download it yourself and put it at {dest}"
    blocked = offline()
    if blocked:
        raise CheckpointError(f"cannot download {source}: offline ({blocked}=1); {where}")
    import pooch
    import requests

    try:
        os.makedirs(folder, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".download-", dir=folder)
    except OSError as e:
        raise CheckpointError(f"cannot download {source}: cannot write to {folder} ({e.strerror or e}); {where}") \
            from None
    try:
        get_logger().info(f"downloading {source} -> {dest}")
        store = pooch.create(path=staging, base_url="", registry={name: None}, urls={name: source},
                             retry_if_failed=RETRIES)
        try:
            staged = store.fetch(name, downloader=_downloader())
        except (requests.exceptions.RequestException, OSError, ValueError, _Refused) as e:
            raise CheckpointError(f"cannot download {source} ({_why(e)}); {where}") from None
        digest = sha256_file(staged)
        if sha256 and digest != sha256.strip().lower():
            raise CheckpointError(f"{source}: SHA-256 {digest} differs from the pinned Arch.pretrained_sha256 "
                                  f"{sha256.strip().lower()}; nothing was cached")
        os.replace(staged, dest)
        _record(folder, name, digest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return weights


def cached_hub_file(hub_id: str) -> Optional[str]:
    """The local ``model.safetensors`` of ``hub_id`` (hand-placed, else in the Hugging Face cache), or None;
    nothing is requested."""
    if os.path.isfile(hub_dropin_path(hub_id)):
        return hub_dropin_path(hub_id)
    import huggingface_hub

    path = huggingface_hub.try_to_load_from_cache(hub_id, _HUB_FILE, cache_dir=hf_cache())
    return path if isinstance(path, str) and os.path.isfile(path) else None


def fetch_hub(hub_id: str) -> Weights:
    """``model.safetensors`` of ``hub_id``: the hand-placed file, the Hugging Face cache, or a download."""
    timm = hub_id.split("/", 1)[1].split(".", 1)[0]
    manifest = (ppnets_home(), f"{hub_id}/{_HUB_FILE}")
    cached = cached_hub_file(hub_id)
    if cached is not None:
        return Weights(cached, hub_id, manifest, timm)
    import huggingface_hub

    cache, dropin = hf_cache(), hub_dropin_path(hub_id)
    url = f"{_hf_endpoint()}/{hub_id}/resolve/main/{_HUB_FILE}"
    where = f"download {url} and put it at {dropin}"
    blocked = offline(hub=True)
    if blocked:
        raise CheckpointError(f"cannot download {hub_id}: offline ({blocked}=1) and not in the Hugging Face cache "
                              f"{cache}; {where}")
    get_logger().info(f"downloading {url} (huggingface_hub, cache {cache})")
    try:
        path = huggingface_hub.hf_hub_download(hub_id, _HUB_FILE, cache_dir=cache, endpoint=_hf_endpoint(),
                                               library_name="ppnets")
    except Exception as e:  # huggingface_hub raises HTTP, connection, metadata and OS errors
        raise CheckpointError(f"cannot download {url} ({_why(e)}); {where}") from None
    return Weights(path, hub_id, manifest, timm)


def resolve(spec: str, name: Optional[str] = None, mirror: Optional[str] = None,
            sha256: Optional[str] = None) -> Weights:
    """The local file of the published weights ``spec`` (:func:`is_download`) for model ``name``;
    a download happens only when the file is in no cache. ``sha256``: a download must have it."""
    if spec.lower() in SOURCES:
        spec = source_spec(name, spec)
    if spec.startswith(("http://", "https://")):
        return fetch_url(spec, mirror, sha256)
    hub_id = hub_id_of(spec)
    if hub_id is None:
        raise ConfigError(f"{spec}: not a URL, a timm hub id or one of {', '.join(SOURCES)}")
    return fetch_hub(hub_id)


def timm_target(weights: Weights, name: Optional[str]) -> None:
    """A hub file of timm's model ``t`` loads only into the ppnets model registered as ``t``."""
    if weights.timm is None or name is None:
        return
    target = TIMM_NAMES.get(weights.timm)
    if target is None:
        raise CheckpointError(f"{weights.origin}: timm's {weights.timm} is registered as no ppnets model, so its "
                              "conversion is not known to be exact (see docs/pretrained.md)")
    if target != name:
        raise CheckpointError(f"{weights.origin} holds timm's {weights.timm}, which is ppnets's {target}, not {name}: "
                              f"set Arch.name: {target}")
