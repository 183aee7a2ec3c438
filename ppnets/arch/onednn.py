"""oneDNN convolutions for training on the CPU.

Paddle's dynamic-graph CPU kernels for ``conv2d`` run im2col + GEMM per sample and per
group: a depthwise convolution becomes ``N × C`` tiny matrix products, and even the 1×1
convolutions reach a fraction of the machine's FLOP rate. Paddle's *inference* on the CPU
uses oneDNN, whose convolution kernels are JIT-compiled for the CPU's vector ISA, and the
wheel ships that library (``paddle/libs/libdnnl.so.3``). This module calls its C API
through :mod:`ctypes` — nothing to compile — for the forward, backward-data and
backward-weights convolutions of training and of dynamic-mode evaluation.

- :func:`conv2d` is ``F.conv2d(x, weight, stride=…, padding=…, groups=…)`` for float32 NCHW
  tensors on the CPU (no dilation, symmetric padding), as a ``PyLayer`` so that autograd
  works as usual. Results equal the native op's within float32 rounding (the summation
  order differs); ``tests/test_layers.py`` checks forward and both gradients.
- A plan (primitive descriptors, primitives, reorders) is built once per shape and cached.
  Depthwise convolutions run in oneDNN's channel-blocked layout (``nChw8c``, its fast
  ``jit_dw`` kernels) with reorders from and to NCHW; the others run directly on NCHW.
- :func:`available` tells whether the library loaded and passed its self-check (major
  version 3, enum values as this module expects); when it did not, or when
  ``PPNETS_ONEDNN=0`` is set, callers use Paddle's kernels. Exported programs never use
  this path: they keep Paddle's ``conv2d`` op, which ``paddle.inference`` maps to oneDNN itself.

oneDNN parallelises over the OpenMP threads of the calling thread (all cores unless
``OMP_NUM_THREADS`` says otherwise); :func:`set_num_threads` changes that.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections import OrderedDict
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle
from paddle.autograd import PyLayer

__all__ = ["available", "unavailable_reason", "conv2d", "set_num_threads", "clear_cache"]

_P = ctypes.c_void_p
_Dims = ctypes.c_int64 * 12

# oneDNN 3.x C API constants (checked at load time through the library's own *2str functions)
_F32, _TAG_ANY, _TAG_ABCD, _TAG_ABCDE = 3, 1, 5, 6
_FORWARD_TRAINING, _CONV_DIRECT, _ENGINE_CPU, _STREAM_DEFAULT = 64, 1, 1, 1
_Q_SRC, _Q_DIFF_SRC, _Q_WEIGHTS, _Q_DIFF_WEIGHTS, _Q_DST, _Q_DIFF_DST = 129, 130, 131, 132, 133, 134
_ARG_SRC, _ARG_DST, _ARG_WEIGHTS, _ARG_DIFF_SRC, _ARG_DIFF_DST, _ARG_DIFF_WEIGHTS = 1, 17, 33, 129, 145, 161
_ARG_SCRATCHPAD, _Q_SCRATCHPAD, _SCRATCHPAD_USER = 80, 136, 1
_MAX_PLANS = 512
#: Convolutions of fewer multiply-adds than this run on one thread: waking a second thread
#: costs more than it saves there (tens of µs idle, up to a scheduler tick on a busy machine).
SMALL_CONV_MACS = 4_000_000


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", _P)]


_SIGNATURES = {
    "dnnl_version": (_P, []),
    "dnnl_fmt_tag2str": (ctypes.c_char_p, [ctypes.c_int]),
    "dnnl_prop_kind2str": (ctypes.c_char_p, [ctypes.c_int]),
    "dnnl_alg_kind2str": (ctypes.c_char_p, [ctypes.c_int]),
    "dnnl_dt2str": (ctypes.c_char_p, [ctypes.c_int]),
    "dnnl_scratchpad_mode2str": (ctypes.c_char_p, [ctypes.c_int]),
    "dnnl_primitive_attr_create": (ctypes.c_int, [ctypes.POINTER(_P)]),
    "dnnl_primitive_attr_set_scratchpad_mode": (ctypes.c_int, [_P, ctypes.c_int]),
    "dnnl_engine_create": (ctypes.c_int, [ctypes.POINTER(_P), ctypes.c_int, ctypes.c_size_t]),
    "dnnl_stream_create": (ctypes.c_int, [ctypes.POINTER(_P), _P, ctypes.c_uint]),
    "dnnl_stream_wait": (ctypes.c_int, [_P]),
    "dnnl_memory_desc_create_with_tag": (ctypes.c_int, [ctypes.POINTER(_P), ctypes.c_int, _Dims, ctypes.c_int,
                                                        ctypes.c_int]),
    "dnnl_memory_desc_destroy": (ctypes.c_int, [_P]),
    "dnnl_memory_desc_equal": (ctypes.c_int, [_P, _P]),
    "dnnl_memory_desc_get_size": (ctypes.c_size_t, [_P]),
    "dnnl_memory_create": (ctypes.c_int, [ctypes.POINTER(_P), _P, _P, _P]),
    "dnnl_memory_set_data_handle": (ctypes.c_int, [_P, _P]),
    "dnnl_memory_destroy": (ctypes.c_int, [_P]),
    "dnnl_primitive_desc_query_md": (_P, [_P, ctypes.c_int, ctypes.c_int]),
    "dnnl_primitive_desc_destroy": (ctypes.c_int, [_P]),
    "dnnl_primitive_create": (ctypes.c_int, [ctypes.POINTER(_P), _P]),
    "dnnl_primitive_destroy": (ctypes.c_int, [_P]),
    "dnnl_primitive_execute": (ctypes.c_int, [_P, _P, ctypes.c_int, ctypes.POINTER(_ExecArg)]),
    "dnnl_reorder_primitive_desc_create": (ctypes.c_int, [ctypes.POINTER(_P), _P, _P, _P, _P, _P]),
    "dnnl_convolution_forward_primitive_desc_create": (
        ctypes.c_int, [ctypes.POINTER(_P), _P, ctypes.c_int, ctypes.c_int, _P, _P, _P, _P, _Dims, _Dims, _Dims,
                       _Dims, _P]),
    "dnnl_convolution_backward_data_primitive_desc_create": (
        ctypes.c_int, [ctypes.POINTER(_P), _P, ctypes.c_int, _P, _P, _P, _Dims, _Dims, _Dims, _Dims, _P, _P]),
    "dnnl_convolution_backward_weights_primitive_desc_create": (
        ctypes.c_int, [ctypes.POINTER(_P), _P, ctypes.c_int, _P, _P, _P, _P, _Dims, _Dims, _Dims, _Dims, _P, _P]),
}


class _VersionT(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint), ("gpu_runtime", ctypes.c_uint)]


class _Runtime:
    """The loaded library, one CPU engine and one stream."""

    def __init__(self) -> None:
        path = os.path.join(os.path.dirname(paddle.__file__), "libs", "libdnnl.so.3")
        self.lib = ctypes.CDLL(path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(self.lib, name)
            fn.restype, fn.argtypes = restype, argtypes
        version = ctypes.cast(self.lib.dnnl_version(), ctypes.POINTER(_VersionT)).contents
        self.version = f"{version.major}.{version.minor}.{version.patch}"
        checks = {"major version": (version.major, 3), "format tag 5": (self.lib.dnnl_fmt_tag2str(_TAG_ABCD), b"abcd"),
                  "format tag 6": (self.lib.dnnl_fmt_tag2str(_TAG_ABCDE), b"abcde"),
                  "data type 3": (self.lib.dnnl_dt2str(_F32), b"f32"),
                  "prop kind 64": (self.lib.dnnl_prop_kind2str(_FORWARD_TRAINING), b"forward_training"),
                  "alg kind 1": (self.lib.dnnl_alg_kind2str(_CONV_DIRECT), b"convolution_direct"),
                  "scratchpad mode 1": (self.lib.dnnl_scratchpad_mode2str(_SCRATCHPAD_USER), b"user")}
        bad = [f"{k}: {got!r} (expected {want!r})" for k, (got, want) in checks.items() if got != want]
        if bad:
            raise RuntimeError(f"unexpected oneDNN {self.version} ABI: {'; '.join(bad)}")
        self.engine, self.stream = _P(), _P()
        self.check(self.lib.dnnl_engine_create(ctypes.byref(self.engine), _ENGINE_CPU, 0), "engine")
        self.check(self.lib.dnnl_stream_create(ctypes.byref(self.stream), self.engine, _STREAM_DEFAULT), "stream")
        # user-managed scratchpads: with the library's, a primitive's scratchpad is freed after
        # every execution and allocated (page-faulted) again on the next
        self.attr = _P()
        self.check(self.lib.dnnl_primitive_attr_create(ctypes.byref(self.attr)), "primitive_attr_create")
        self.check(self.lib.dnnl_primitive_attr_set_scratchpad_mode(self.attr, _SCRATCHPAD_USER), "scratchpad mode")
        self.gomp = ctypes.CDLL("libgomp.so.1")  # oneDNN's OpenMP runtime (already loaded by libdnnl)
        self.threads = int(self.gomp.omp_get_max_threads())
        self.plans: "OrderedDict[tuple, _ConvPlan]" = OrderedDict()
        self.buffers: Dict[str, np.ndarray] = {}
        self.lock = threading.Lock()

    @staticmethod
    def check(status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"oneDNN {what} failed (status {status})")

    def desc(self, dims: Sequence[int], tag: int) -> _P:
        md = _P()
        self.check(self.lib.dnnl_memory_desc_create_with_tag(ctypes.byref(md), len(dims), _Dims(*dims), _F32, tag),
                   "memory_desc_create")
        return md

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

    def execute(self, prim: _P, args: List[Tuple[int, _P]], scratch: Optional["_Scratch"] = None) -> None:
        if scratch is not None and scratch.mem is not None:
            self.lib.dnnl_memory_set_data_handle(scratch.mem, _P(self.buffer("scratchpad", scratch.nbytes)))
            args = args + [(_ARG_SCRATCHPAD, scratch.mem)]
        arr = (_ExecArg * len(args))(*[_ExecArg(a, m) for a, m in args])
        self.check(self.lib.dnnl_primitive_execute(prim, self.stream, len(args), arr), "execute")


class _Scratch:
    """The user-managed scratchpad of one primitive (None when it needs none)."""

    def __init__(self, rt: _Runtime, pd: _P) -> None:
        self.rt, self.mem, self.nbytes = rt, None, 0
        md = rt.lib.dnnl_primitive_desc_query_md(pd, _Q_SCRATCHPAD, 0)
        size = rt.lib.dnnl_memory_desc_get_size(md) if md else 0
        if size:
            self.mem, self.nbytes = _P(), size
            rt.check(rt.lib.dnnl_memory_create(ctypes.byref(self.mem), md, rt.engine, None), "memory_create")

    def close(self) -> None:
        if self.mem is not None:
            self.rt.lib.dnnl_memory_destroy(self.mem)
            self.mem = None


class _Operand:
    """One tensor of a primitive: the user's NCHW/OIHW memory and, if the primitive wants
    another layout, a scratch memory in that layout plus the reorder between them."""

    def __init__(self, rt: _Runtime, user_md: _P, prim_md: _P, role: str, into_user: bool) -> None:
        self.rt, self.role = rt, role
        self.user = _P()
        rt.check(rt.lib.dnnl_memory_create(ctypes.byref(self.user), user_md, rt.engine, None), "memory_create")
        self.blocked = not rt.lib.dnnl_memory_desc_equal(user_md, prim_md)
        self.mem, self.reorder, self.nbytes, self.scratch = self.user, None, 0, None
        if self.blocked:
            self.mem = _P()
            rt.check(rt.lib.dnnl_memory_create(ctypes.byref(self.mem), prim_md, rt.engine, None), "memory_create")
            self.nbytes = rt.lib.dnnl_memory_desc_get_size(prim_md)
            src, dst = (prim_md, user_md) if into_user else (user_md, prim_md)
            pd, self.reorder = _P(), _P()
            rt.check(rt.lib.dnnl_reorder_primitive_desc_create(ctypes.byref(pd), src, rt.engine, dst, rt.engine,
                                                               rt.attr), "reorder_primitive_desc_create")
            try:
                rt.check(rt.lib.dnnl_primitive_create(ctypes.byref(self.reorder), pd), "reorder primitive_create")
                self.scratch = _Scratch(rt, pd)
            finally:
                rt.lib.dnnl_primitive_desc_destroy(pd)

    def bind(self, address: int, load: bool) -> _P:
        """Point at the user tensor ``address``; return the memory the primitive should use
        (reordered from the user tensor first if ``load``)."""
        lib = self.rt.lib
        lib.dnnl_memory_set_data_handle(self.user, _P(address))
        if not self.blocked:
            return self.user
        lib.dnnl_memory_set_data_handle(self.mem, _P(self.rt.buffer(self.role, self.nbytes)))
        if load:
            self.rt.execute(self.reorder, [(_ARG_SRC, self.user), (_ARG_DST, self.mem)], self.scratch)
        return self.mem

    def store(self) -> None:
        """Reorder the primitive's output back into the user tensor (no-op for plain layouts)."""
        if self.blocked:
            self.rt.execute(self.reorder, [(_ARG_SRC, self.mem), (_ARG_DST, self.user)], self.scratch)

    def close(self) -> None:
        lib = self.rt.lib
        if self.blocked:
            self.scratch.close()
            lib.dnnl_memory_destroy(self.mem)
            lib.dnnl_primitive_destroy(self.reorder)
        lib.dnnl_memory_destroy(self.user)


class _ConvPlan:
    """Primitives for one convolution shape: forward, backward-data, backward-weights."""

    def __init__(self, rt: _Runtime, x_shape: Tuple[int, ...], w_shape: Tuple[int, ...], stride: Tuple[int, int],
                 padding: Tuple[int, int], groups: int, blocked: bool) -> None:
        self.rt = rt
        n, c, h, w = x_shape
        o, ipg, kh, kw = w_shape
        self.y_shape = (n, o, (h + 2 * padding[0] - kh) // stride[0] + 1, (w + 2 * padding[1] - kw) // stride[1] + 1)
        self.threads = _threads_for_shape(rt, x_shape, w_shape, stride, padding)
        w_dims = (groups, o // groups, ipg, kh, kw) if groups > 1 else (o, ipg, kh, kw)
        w_tag = _TAG_ABCDE if groups > 1 else _TAG_ABCD
        act_tag = _TAG_ANY if blocked else _TAG_ABCD
        self._mds: List[_P] = []
        user_x, user_w, user_y = self._md(x_shape, _TAG_ABCD), self._md(w_dims, w_tag), self._md(self.y_shape, _TAG_ABCD)
        x_md, y_md = self._md(x_shape, act_tag), self._md(self.y_shape, act_tag)
        w_md = self._md(w_dims, _TAG_ANY if blocked else w_tag)
        s, d, p = _Dims(*stride), _Dims(0, 0), _Dims(*padding)
        lib = rt.lib
        self._pds: List[_P] = []
        self._prims: List[_P] = []
        self._operands: List[_Operand] = []
        self._scratches: List[_Scratch] = []
        try:
            fwd = self._pd(lib.dnnl_convolution_forward_primitive_desc_create, rt.engine, _FORWARD_TRAINING,
                           _CONV_DIRECT, x_md, w_md, None, y_md, s, d, p, p, rt.attr)
            bwd_d = self._pd(lib.dnnl_convolution_backward_data_primitive_desc_create, rt.engine, _CONV_DIRECT,
                             x_md, w_md, y_md, s, d, p, p, fwd, rt.attr)
            bwd_w = self._pd(lib.dnnl_convolution_backward_weights_primitive_desc_create, rt.engine, _CONV_DIRECT,
                             x_md, w_md, None, y_md, s, d, p, p, fwd, rt.attr)
            q = lib.dnnl_primitive_desc_query_md
            self.fwd = (self._prim(fwd), self._op(user_x, q(fwd, _Q_SRC, 0), "x", False),
                        self._op(user_w, q(fwd, _Q_WEIGHTS, 0), "w", False),
                        self._op(user_y, q(fwd, _Q_DST, 0), "y", True))
            self.bwd_data = (self._prim(bwd_d), self._op(user_y, q(bwd_d, _Q_DIFF_DST, 0), "y", False),
                             self._op(user_w, q(bwd_d, _Q_WEIGHTS, 0), "w", False),
                             self._op(user_x, q(bwd_d, _Q_DIFF_SRC, 0), "dx", True))
            dy_shared = lib.dnnl_memory_desc_equal(q(bwd_d, _Q_DIFF_DST, 0), q(bwd_w, _Q_DIFF_DST, 0))
            self.bwd_weights = (self._prim(bwd_w), self._op(user_x, q(bwd_w, _Q_SRC, 0), "x", False),
                                self._op(user_y, q(bwd_w, _Q_DIFF_DST, 0), "y" if dy_shared else "y2", False),
                                self._op(user_w, q(bwd_w, _Q_DIFF_WEIGHTS, 0), "dw", True))
            self.dy_shared = bool(dy_shared)
        except Exception:
            self.close()
            raise

    def _md(self, dims: Sequence[int], tag: int) -> _P:
        md = self.rt.desc(dims, tag)
        self._mds.append(md)
        return md

    def _pd(self, create, *args) -> _P:
        pd = _P()
        self.rt.check(create(ctypes.byref(pd), *args), create.__name__)
        self._pds.append(pd)
        return pd

    def _prim(self, pd: _P) -> Tuple[_P, _Scratch]:
        prim = _P()
        self.rt.check(self.rt.lib.dnnl_primitive_create(ctypes.byref(prim), pd), "primitive_create")
        self._prims.append(prim)
        scratch = _Scratch(self.rt, pd)
        self._scratches.append(scratch)
        return prim, scratch

    def _op(self, user_md: _P, prim_md: _P, role: str, into_user: bool) -> _Operand:
        op = _Operand(self.rt, user_md, prim_md, role, into_user)
        self._operands.append(op)
        return op

    def forward(self, x: paddle.Tensor, w: paddle.Tensor) -> paddle.Tensor:
        y = paddle.empty(list(self.y_shape), dtype="float32")
        (prim, scratch), xo, wo, yo = self.fwd
        args = [(_ARG_SRC, xo.bind(x.data_ptr(), True)), (_ARG_WEIGHTS, wo.bind(w.data_ptr(), True)),
                (_ARG_DST, yo.bind(y.data_ptr(), False))]
        self.rt.execute(prim, args, scratch)
        yo.store()
        return y

    def backward(self, x: paddle.Tensor, w: paddle.Tensor, dy: paddle.Tensor, need_dx: bool, need_dw: bool
                 ) -> Tuple[Optional[paddle.Tensor], Optional[paddle.Tensor]]:
        dx = dw = None
        dy_mem = None
        if need_dx:
            dx = paddle.empty(list(x.shape), dtype="float32")
            (prim, scratch), dyo, wo, dxo = self.bwd_data
            dy_mem = dyo.bind(dy.data_ptr(), True)
            self.rt.execute(prim, [(_ARG_DIFF_DST, dy_mem), (_ARG_WEIGHTS, wo.bind(w.data_ptr(), True)),
                                   (_ARG_DIFF_SRC, dxo.bind(dx.data_ptr(), False))], scratch)
            dxo.store()
        if need_dw:
            dw = paddle.empty(list(w.shape), dtype="float32")
            (prim, scratch), xo, dyo, dwo = self.bwd_weights
            if dy_mem is None or not self.dy_shared:
                dy_mem = dyo.bind(dy.data_ptr(), True)  # else: the reordered dy of backward-data is reused
            self.rt.execute(prim, [(_ARG_SRC, xo.bind(x.data_ptr(), True)), (_ARG_DIFF_DST, dy_mem),
                                   (_ARG_DIFF_WEIGHTS, dwo.bind(dw.data_ptr(), False))], scratch)
            dwo.store()
        return dx, dw

    def close(self) -> None:
        lib = self.rt.lib
        for op in self._operands:
            op.close()
        for scratch in self._scratches:
            scratch.close()
        for prim in self._prims:
            lib.dnnl_primitive_destroy(prim)
        for pd in self._pds:
            lib.dnnl_primitive_desc_destroy(pd)
        for md in self._mds:
            lib.dnnl_memory_desc_destroy(md)
        self._operands, self._prims, self._pds, self._mds, self._scratches = [], [], [], [], []


_runtime: Optional[_Runtime] = None
_reason: Optional[str] = None


def _get_runtime() -> Optional[_Runtime]:
    global _runtime, _reason
    if _runtime is None and _reason is None:
        if os.environ.get("PPNETS_ONEDNN", "1").strip().lower() in ("0", "false", "off", "no"):
            _reason = "disabled by PPNETS_ONEDNN=0"
        else:
            try:
                _runtime = _Runtime()
            except (OSError, AttributeError, RuntimeError) as e:
                _reason = f"oneDNN unavailable: {e}"
    return _runtime


def available() -> bool:
    """True when Paddle's oneDNN library loaded and passed the self-check."""
    return _get_runtime() is not None


def unavailable_reason() -> Optional[str]:
    """Why :func:`available` is False (None when it is True)."""
    _get_runtime()
    return _reason


def set_num_threads(n: int) -> None:
    """Threads of oneDNN's OpenMP runtime (libgomp) for the convolutions (small ones use one)."""
    rt = _get_runtime()
    if rt is None:
        return
    with rt.lock:
        rt.threads = max(int(n), 1)
        rt.gomp.omp_set_num_threads(rt.threads)
        for plan in rt.plans.values():  # primitives size their work split when they are built
            plan.close()
        rt.plans.clear()


def clear_cache() -> None:
    """Free every cached plan and scratch buffer."""
    rt = _runtime
    if rt is None:
        return
    with rt.lock:
        for plan in rt.plans.values():
            plan.close()
        rt.plans.clear()
        rt.buffers.clear()


def _threads_for_shape(rt: _Runtime, x_shape: Tuple[int, ...], w_shape: Tuple[int, ...], stride: Tuple[int, int],
                       padding: Tuple[int, int]) -> int:
    n, _, h, w = x_shape
    o, ipg, kh, kw = w_shape
    oh, ow = (h + 2 * padding[0] - kh) // stride[0] + 1, (w + 2 * padding[1] - kw) // stride[1] + 1
    return 1 if n * o * oh * ow * ipg * kh * kw < SMALL_CONV_MACS else rt.threads


def _plan(rt: _Runtime, key: tuple) -> _ConvPlan:
    plan = rt.plans.get(key)
    if plan is None:
        with rt.threads_for(_threads_for_shape(rt, *key[:4])):
            plan = _ConvPlan(rt, *key)
        rt.plans[key] = plan
        if len(rt.plans) > _MAX_PLANS:
            rt.plans.popitem(last=False)[1].close()
    else:
        rt.plans.move_to_end(key)
    return plan


class _OneDNNConv(PyLayer):
    @staticmethod
    def forward(ctx, x, weight, key):
        rt = _get_runtime()
        with rt.lock:
            plan = _plan(rt, key)
            with rt.threads_for(plan.threads):
                y = plan.forward(x, weight)
        ctx.key = key
        ctx.need = (not x.stop_gradient, not weight.stop_gradient)
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensor()
        dy = dy if dy.is_contiguous() else dy.contiguous()
        rt = _get_runtime()
        with rt.lock:
            plan = _plan(rt, ctx.key)
            with rt.threads_for(plan.threads):
                dx, dw = plan.backward(x, weight, dy, *ctx.need)
        return dx, dw


#: Non-depthwise convolutions whose output has at most this many pixels run in the blocked layout.
BLOCKED_MAX_PIXELS = 64


def _blocked_layout(x_shape: Tuple[int, ...], w_shape: Tuple[int, ...], stride: Tuple[int, int],
                    padding: Tuple[int, int], groups: int) -> bool:
    """Layout of a convolution's activations, chosen by shape from measurements on MobileNetV2
    (training step, forward + both backward passes, 2 cores):

    - depthwise: oneDNN's ``nChw8c`` ``jit_dw`` kernels are 2–30× faster than its NCHW
      (GEMM-based) path, reorders included, at every size from 112×112 down to 1×1;
    - other convolutions on maps of ≥ 14×14: NCHW (``gemm:jit``), 1.1–2× faster than paying
      two reorders for the blocked ``jit_1x1`` kernels;
    - on ≤ 8×8 maps the blocked kernels win, by up to 80× on 1×1 maps, where the NCHW path
      multiplies per sample.
    """
    if groups == x_shape[1] == w_shape[0] and groups > 1:
        return True
    oh = (x_shape[2] + 2 * padding[0] - w_shape[2]) // stride[0] + 1
    ow = (x_shape[3] + 2 * padding[1] - w_shape[3]) // stride[1] + 1
    return oh * ow <= BLOCKED_MAX_PIXELS


def conv2d(x: paddle.Tensor, weight: paddle.Tensor, stride: Sequence[int], padding: Sequence[int],
           groups: int = 1) -> paddle.Tensor:
    """``F.conv2d(x, weight, stride=stride, padding=padding, groups=groups)`` through oneDNN.

    ``x``: float32 NCHW on the CPU; ``weight``: ``[O, C / groups, kh, kw]``; ``padding``:
    ``(pad_h, pad_w)`` on both sides; no dilation. Call only when :func:`available`.
    """
    x = x if x.is_contiguous() else x.contiguous()
    key = (tuple(x.shape), tuple(weight.shape), (int(stride[0]), int(stride[1])),
           (int(padding[0]), int(padding[1])), int(groups))
    key = key + (_blocked_layout(*key),)
    return _OneDNNConv.apply(x, weight, key)
