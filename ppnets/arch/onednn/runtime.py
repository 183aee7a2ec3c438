"""The oneDNN library behind :mod:`ppnets.arch.onednn`: loading, self-check, engine and stream.

Paddle's wheel ships oneDNN (``paddle/libs/libdnnl.so.3``); this module opens it with
:mod:`ctypes` (``PPNETS_ONEDNN_LIBRARY`` names another file), declares the C functions the
binding calls, checks that the library is the version the binding was written for
(:data:`BINDING_VERSION`) and that its enum values are the ones used here, and owns the
CPU engine, the stream, the scratch buffers and the plan cache of one process.
:func:`get` returns the runtime, or None with :func:`reason` telling why (missing library,
other version, ``PPNETS_ONEDNN=0``); it never raises.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections import OrderedDict
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle

P = ctypes.c_void_p
Dims = ctypes.c_int64 * 12

# oneDNN 3.x C API constants (checked at load time through the library's own *2str functions)
F32, TAG_ANY, TAG_ABCD, TAG_ABCDE = 3, 1, 5, 6
FORWARD_TRAINING, CONV_DIRECT, ENGINE_CPU, STREAM_DEFAULT = 64, 1, 1, 1
Q_SRC, Q_DIFF_SRC, Q_WEIGHTS, Q_DIFF_WEIGHTS, Q_DST, Q_DIFF_DST = 129, 130, 131, 132, 133, 134
ARG_SRC, ARG_DST, ARG_WEIGHTS, ARG_DIFF_SRC, ARG_DIFF_DST, ARG_DIFF_WEIGHTS = 1, 17, 33, 129, 145, 161
ARG_SCRATCHPAD, Q_SCRATCHPAD, SCRATCHPAD_USER = 80, 136, 1
Q_IMPL_INFO_STR = 8  # dnnl_query_impl_info_str: the implementation's name, e.g. "jit_dw:avx512_core"
#: (major, minor) of the oneDNN whose C API this binding declares: Paddle 3.3's bundled 3.6.
BINDING_VERSION = (3, 6)
LIBRARY_ENV = "PPNETS_ONEDNN_LIBRARY"


class ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", P)]


SIGNATURES = {
    "dnnl_version": (P, []),
    "dnnl_fmt_tag2str": (ctypes.c_char_p, [ctypes.c_int]),
    "dnnl_prop_kind2str": (ctypes.c_char_p, [ctypes.c_int]),
    "dnnl_alg_kind2str": (ctypes.c_char_p, [ctypes.c_int]),
    "dnnl_dt2str": (ctypes.c_char_p, [ctypes.c_int]),
    "dnnl_scratchpad_mode2str": (ctypes.c_char_p, [ctypes.c_int]),
    "dnnl_primitive_attr_create": (ctypes.c_int, [ctypes.POINTER(P)]),
    "dnnl_primitive_attr_set_scratchpad_mode": (ctypes.c_int, [P, ctypes.c_int]),
    "dnnl_engine_create": (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_int, ctypes.c_size_t]),
    "dnnl_stream_create": (ctypes.c_int, [ctypes.POINTER(P), P, ctypes.c_uint]),
    "dnnl_stream_wait": (ctypes.c_int, [P]),
    "dnnl_memory_desc_create_with_tag": (ctypes.c_int, [ctypes.POINTER(P), ctypes.c_int, Dims, ctypes.c_int,
                                                        ctypes.c_int]),
    "dnnl_memory_desc_destroy": (ctypes.c_int, [P]),
    "dnnl_memory_desc_equal": (ctypes.c_int, [P, P]),
    "dnnl_memory_desc_get_size": (ctypes.c_size_t, [P]),
    "dnnl_memory_create": (ctypes.c_int, [ctypes.POINTER(P), P, P, P]),
    "dnnl_memory_set_data_handle": (ctypes.c_int, [P, P]),
    "dnnl_memory_destroy": (ctypes.c_int, [P]),
    "dnnl_primitive_desc_query_md": (P, [P, ctypes.c_int, ctypes.c_int]),
    "dnnl_primitive_desc_query": (ctypes.c_int, [P, ctypes.c_int, ctypes.c_int, P]),
    "dnnl_primitive_desc_destroy": (ctypes.c_int, [P]),
    "dnnl_primitive_create": (ctypes.c_int, [ctypes.POINTER(P), P]),
    "dnnl_primitive_destroy": (ctypes.c_int, [P]),
    "dnnl_primitive_execute": (ctypes.c_int, [P, P, ctypes.c_int, ctypes.POINTER(ExecArg)]),
    "dnnl_reorder_primitive_desc_create": (ctypes.c_int, [ctypes.POINTER(P), P, P, P, P, P]),
    "dnnl_convolution_forward_primitive_desc_create": (
        ctypes.c_int, [ctypes.POINTER(P), P, ctypes.c_int, ctypes.c_int, P, P, P, P, Dims, Dims, Dims,
                       Dims, P]),
    "dnnl_convolution_backward_data_primitive_desc_create": (
        ctypes.c_int, [ctypes.POINTER(P), P, ctypes.c_int, P, P, P, Dims, Dims, Dims, Dims, P, P]),
    "dnnl_convolution_backward_weights_primitive_desc_create": (
        ctypes.c_int, [ctypes.POINTER(P), P, ctypes.c_int, P, P, P, P, Dims, Dims, Dims, Dims, P, P]),
}


class VersionT(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint), ("gpu_runtime", ctypes.c_uint)]


class Runtime:
    """The loaded library, one CPU engine and one stream."""

    def __init__(self, path: str) -> None:
        self.lib = ctypes.CDLL(path)
        for name, (restype, argtypes) in SIGNATURES.items():
            fn = getattr(self.lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        version = ctypes.cast(self.lib.dnnl_version(), ctypes.POINTER(VersionT)).contents
        self.version = f"{version.major}.{version.minor}.{version.patch}"
        if (version.major, version.minor) != BINDING_VERSION:
            raise RuntimeError(f"{path} is oneDNN {self.version}; the binding is written for "
                               f"{'.'.join(map(str, BINDING_VERSION))}")
        checks = {"format tag 5": (self.lib.dnnl_fmt_tag2str(TAG_ABCD), b"abcd"),
                  "format tag 6": (self.lib.dnnl_fmt_tag2str(TAG_ABCDE), b"abcde"),
                  "data type 3": (self.lib.dnnl_dt2str(F32), b"f32"),
                  "prop kind 64": (self.lib.dnnl_prop_kind2str(FORWARD_TRAINING), b"forward_training"),
                  "alg kind 1": (self.lib.dnnl_alg_kind2str(CONV_DIRECT), b"convolution_direct"),
                  "scratchpad mode 1": (self.lib.dnnl_scratchpad_mode2str(SCRATCHPAD_USER), b"user")}
        bad = [f"{k}: {got!r} (expected {want!r})" for k, (got, want) in checks.items() if got != want]
        if bad:
            raise RuntimeError(f"unexpected oneDNN {self.version} ABI: {'; '.join(bad)}")
        self.engine, self.stream = P(), P()
        self.check(self.lib.dnnl_engine_create(ctypes.byref(self.engine), ENGINE_CPU, 0), "engine")
        self.check(self.lib.dnnl_stream_create(ctypes.byref(self.stream), self.engine, STREAM_DEFAULT), "stream")
        # user-managed scratchpads: with the library's, a primitive's scratchpad is freed after
        # every execution and allocated (page-faulted) again on the next
        self.attr = P()
        self.check(self.lib.dnnl_primitive_attr_create(ctypes.byref(self.attr)), "primitive_attr_create")
        self.check(self.lib.dnnl_primitive_attr_set_scratchpad_mode(self.attr, SCRATCHPAD_USER), "scratchpad mode")
        self.gomp = ctypes.CDLL("libgomp.so.1")  # oneDNN's OpenMP runtime (already loaded by libdnnl)
        self.threads = int(self.gomp.omp_get_max_threads())
        self.plans: "OrderedDict[tuple, Any]" = OrderedDict()  # shape key → plan with a close()
        self.buffers: Dict[str, np.ndarray] = {}
        self.lock = threading.Lock()

    @staticmethod
    def check(status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"oneDNN {what} failed (status {status})")

    def desc(self, dims: Sequence[int], tag: int) -> P:
        md = P()
        self.check(self.lib.dnnl_memory_desc_create_with_tag(ctypes.byref(md), len(dims), Dims(*dims), F32, tag),
                   "memory_desc_create")
        return md

    def impl_name(self, pd: P) -> str:
        """The name of the implementation oneDNN chose for a primitive descriptor (as its verbose
        log prints it: ``jit_dw:avx512_core``, ``x64:gemm:jit`` …)."""
        name = ctypes.c_char_p()
        self.check(self.lib.dnnl_primitive_desc_query(pd, Q_IMPL_INFO_STR, 0, ctypes.byref(name)),
                   "primitive_desc_query(impl_info_str)")
        return (name.value or b"").decode("ascii", "replace")

    def buffer(self, role: str, nbytes: int) -> int:
        """Address of a scratch buffer of at least ``nbytes`` for ``role`` (grown, never shrunk)."""
        buf = self.buffers.get(role)
        if buf is None or buf.nbytes < nbytes:
            buf = self.buffers[role] = np.empty(max(nbytes // 4 + 16, 1), np.float32)
        return buf.ctypes.data

    @contextlib.contextmanager
    def threads_for(self, n: int) -> Iterator[None]:
        """Run oneDNN on ``n`` threads within the block (its plans are built and run under this)."""
        if n == self.threads:
            yield
            return
        self.gomp.omp_set_num_threads(n)
        try:
            yield
        finally:
            self.gomp.omp_set_num_threads(self.threads)

    def execute(self, prim: P, args: List[Tuple[int, P]], scratch: Optional["Scratch"] = None) -> None:
        if scratch is not None and scratch.mem is not None:
            self.lib.dnnl_memory_set_data_handle(scratch.mem, P(self.buffer("scratchpad", scratch.nbytes)))
            args = args + [(ARG_SCRATCHPAD, scratch.mem)]
        arr = (ExecArg * len(args))(*[ExecArg(a, m) for a, m in args])
        self.check(self.lib.dnnl_primitive_execute(prim, self.stream, len(args), arr), "execute")


class Scratch:
    """The user-managed scratchpad of one primitive (None when it needs none)."""

    def __init__(self, rt: Runtime, pd: P) -> None:
        self.rt, self.mem, self.nbytes = rt, None, 0
        md = rt.lib.dnnl_primitive_desc_query_md(pd, Q_SCRATCHPAD, 0)
        size = rt.lib.dnnl_memory_desc_get_size(md) if md else 0
        if size:
            self.mem, self.nbytes = P(), size
            rt.check(rt.lib.dnnl_memory_create(ctypes.byref(self.mem), md, rt.engine, None), "memory_create")

    def close(self) -> None:
        if self.mem is not None:
            self.rt.lib.dnnl_memory_destroy(self.mem)
            self.mem = None


class Operand:
    """One tensor of a primitive: the user's NCHW/OIHW memory and, if the primitive wants
    another layout, a scratch memory in that layout plus the reorder between them."""

    def __init__(self, rt: Runtime, user_md: P, prim_md: P, role: str, into_user: bool) -> None:
        self.rt, self.role = rt, role
        self.user = P()
        rt.check(rt.lib.dnnl_memory_create(ctypes.byref(self.user), user_md, rt.engine, None), "memory_create")
        self.blocked = not rt.lib.dnnl_memory_desc_equal(user_md, prim_md)
        self.mem, self.reorder, self.nbytes, self.scratch = self.user, None, 0, None
        if self.blocked:
            self.mem = P()
            rt.check(rt.lib.dnnl_memory_create(ctypes.byref(self.mem), prim_md, rt.engine, None), "memory_create")
            self.nbytes = rt.lib.dnnl_memory_desc_get_size(prim_md)
            src, dst = (prim_md, user_md) if into_user else (user_md, prim_md)
            pd, self.reorder = P(), P()
            rt.check(rt.lib.dnnl_reorder_primitive_desc_create(ctypes.byref(pd), src, rt.engine, dst, rt.engine,
                                                               rt.attr), "reorder_primitive_desc_create")
            try:
                rt.check(rt.lib.dnnl_primitive_create(ctypes.byref(self.reorder), pd), "reorder primitive_create")
                self.scratch = Scratch(rt, pd)
            finally:
                rt.lib.dnnl_primitive_desc_destroy(pd)

    def bind(self, address: int, load: bool) -> P:
        """Point at the user tensor ``address``; return the memory the primitive should use
        (reordered from the user tensor first if ``load``)."""
        lib = self.rt.lib
        lib.dnnl_memory_set_data_handle(self.user, P(address))
        if not self.blocked:
            return self.user
        lib.dnnl_memory_set_data_handle(self.mem, P(self.rt.buffer(self.role, self.nbytes)))
        if load:
            self.rt.execute(self.reorder, [(ARG_SRC, self.user), (ARG_DST, self.mem)], self.scratch)
        return self.mem

    def store(self) -> None:
        """Reorder the primitive's output back into the user tensor (no-op for plain layouts)."""
        if self.blocked:
            self.rt.execute(self.reorder, [(ARG_SRC, self.mem), (ARG_DST, self.user)], self.scratch)

    def close(self) -> None:
        lib = self.rt.lib
        if self.blocked:
            self.scratch.close()
            lib.dnnl_memory_destroy(self.mem)
            lib.dnnl_primitive_destroy(self.reorder)
        lib.dnnl_memory_destroy(self.user)


def library_path() -> str:
    """The oneDNN library to load: ``$PPNETS_ONEDNN_LIBRARY``, else the one in Paddle's wheel."""
    return os.environ.get(LIBRARY_ENV) or os.path.join(os.path.dirname(paddle.__file__), "libs", "libdnnl.so.3")


def load(path: str) -> Tuple[Optional[Runtime], Optional[str]]:
    """``(runtime, None)``, or ``(None, why)`` when ``path`` cannot be used (never raises)."""
    try:
        return Runtime(path), None
    except (OSError, AttributeError, RuntimeError) as e:
        return None, f"oneDNN unavailable: {e}"


_runtime: Optional[Runtime] = None
_reason: Optional[str] = None
_load_lock = threading.Lock()


def get() -> Optional[Runtime]:
    """The process's runtime (loaded on first use), or None; see :func:`reason`."""
    global _runtime, _reason
    if _runtime is None and _reason is None:
        with _load_lock:
            if _runtime is None and _reason is None:
                if os.environ.get("PPNETS_ONEDNN", "1").strip().lower() in ("0", "false", "off", "no"):
                    _reason = "disabled by PPNETS_ONEDNN=0"
                else:
                    _runtime, _reason = load(library_path())
    return _runtime


def reason() -> Optional[str]:
    """Why :func:`get` returns None (None when it does not)."""
    get()
    return _reason


def close_plans(rt: Runtime, buffers: bool = False) -> None:
    """Free every cached plan (and the scratch buffers with ``buffers``); call under ``rt.lock``."""
    for plan in rt.plans.values():
        plan.close()
    rt.plans.clear()
    if buffers:
        rt.buffers.clear()
