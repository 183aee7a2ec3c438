"""oneDNN convolutions (forward, backward-data, backward-weights) as a Paddle ``PyLayer``.

:func:`conv2d` is ``F.conv2d(x, weight, stride=…, padding=…, groups=…)`` for float32 NCHW
tensors on the CPU (no dilation, symmetric padding); autograd works as usual and results
equal the native op's within float32 rounding (the summation order differs). A plan
(primitive descriptors, primitives, reorders) is built once per shape and cached.
Depthwise convolutions run in oneDNN's channel-blocked layout (``nChw8c``, its fast
``jit_dw`` kernels) with reorders from and to NCHW; the others run on NCHW except on
small maps (:func:`blocked_layout`).
"""
from __future__ import annotations

import ctypes
from typing import List, Optional, Sequence, Tuple

import paddle
from paddle.autograd import PyLayer

from ..unfold import depthwise_weight_grad
from . import runtime
from .runtime import (ARG_DIFF_DST, ARG_DIFF_SRC, ARG_DIFF_WEIGHTS, ARG_DST, ARG_SRC, ARG_WEIGHTS, CONV_DIRECT,
                      FORWARD_TRAINING, Q_DIFF_DST, Q_DIFF_SRC, Q_DIFF_WEIGHTS, Q_DST, Q_SRC, Q_WEIGHTS, TAG_ABCD,
                      TAG_ABCDE, TAG_ANY, Dims, Operand, P, Runtime, Scratch)

__all__ = ["conv2d", "blocked_layout", "SMALL_CONV_MACS", "BLOCKED_MAX_PIXELS"]

MAX_PLANS = 512
#: Convolutions of fewer multiply-adds than this run on one thread: waking a second thread
#: costs more than it saves there (tens of µs idle, up to a scheduler tick on a busy machine).
SMALL_CONV_MACS = 4_000_000


class _ConvPlan:
    """Primitives for one convolution shape: forward, backward-data, backward-weights."""

    def __init__(self, rt: Runtime, x_shape: Tuple[int, ...], w_shape: Tuple[int, ...], stride: Tuple[int, int],
                 padding: Tuple[int, int], groups: int, blocked: bool) -> None:
        self.rt = rt
        n, c, h, w = x_shape
        o, ipg, kh, kw = w_shape
        self.y_shape = (n, o, (h + 2 * padding[0] - kh) // stride[0] + 1, (w + 2 * padding[1] - kw) // stride[1] + 1)
        self.threads = _threads_for_shape(rt, x_shape, w_shape, stride, padding)
        w_dims = (groups, o // groups, ipg, kh, kw) if groups > 1 else (o, ipg, kh, kw)
        w_tag = TAG_ABCDE if groups > 1 else TAG_ABCD
        act_tag = TAG_ANY if blocked else TAG_ABCD
        self._mds: List[P] = []
        user_x, user_w, user_y = self._md(x_shape, TAG_ABCD), self._md(w_dims, w_tag), self._md(self.y_shape, TAG_ABCD)
        x_md, y_md = self._md(x_shape, act_tag), self._md(self.y_shape, act_tag)
        w_md = self._md(w_dims, TAG_ANY if blocked else w_tag)
        s, d, p = Dims(*stride), Dims(0, 0), Dims(*padding)
        lib = rt.lib
        self._pds: List[P] = []
        self._prims: List[P] = []
        self._operands: List[Operand] = []
        self._scratches: List[Scratch] = []
        try:
            fwd = self._pd(lib.dnnl_convolution_forward_primitive_desc_create, rt.engine, FORWARD_TRAINING,
                           CONV_DIRECT, x_md, w_md, None, y_md, s, d, p, p, rt.attr)
            bwd_d = self._pd(lib.dnnl_convolution_backward_data_primitive_desc_create, rt.engine, CONV_DIRECT,
                             x_md, w_md, y_md, s, d, p, p, fwd, rt.attr)
            bwd_w = self._pd(lib.dnnl_convolution_backward_weights_primitive_desc_create, rt.engine, CONV_DIRECT,
                             x_md, w_md, None, y_md, s, d, p, p, fwd, rt.attr)
            q = lib.dnnl_primitive_desc_query_md
            self.fwd = (self._prim(fwd), self._op(user_x, q(fwd, Q_SRC, 0), "x", False),
                        self._op(user_w, q(fwd, Q_WEIGHTS, 0), "w", False),
                        self._op(user_y, q(fwd, Q_DST, 0), "y", True))
            self.bwd_data = (self._prim(bwd_d), self._op(user_y, q(bwd_d, Q_DIFF_DST, 0), "y", False),
                             self._op(user_w, q(bwd_d, Q_WEIGHTS, 0), "w", False),
                             self._op(user_x, q(bwd_d, Q_DIFF_SRC, 0), "dx", True))
            dy_shared = lib.dnnl_memory_desc_equal(q(bwd_d, Q_DIFF_DST, 0), q(bwd_w, Q_DIFF_DST, 0))
            self.bwd_weights = (self._prim(bwd_w), self._op(user_x, q(bwd_w, Q_SRC, 0), "x", False),
                                self._op(user_y, q(bwd_w, Q_DIFF_DST, 0), "y" if dy_shared else "y2", False),
                                self._op(user_w, q(bwd_w, Q_DIFF_WEIGHTS, 0), "dw", True))
            self.dy_shared = bool(dy_shared)
            # oneDNN's depthwise weight-gradient kernel (jit_dw) refuses maps smaller than the
            # kernel (MobileNetV2's 1×1 and 2×2 maps at 32 px): it falls back to a per-sample GEMM
            # that takes milliseconds for a few thousand MACs; such gradients are computed here
            self.dw_unfold = (groups > 1 and groups == c == o and (h < kh or w < kw)
                              and "gemm" in rt.impl_name(bwd_w))
            self.kernel, self.stride, self.padding = (kh, kw), stride, padding
        except Exception:
            self.close()
            raise

    def _md(self, dims: Sequence[int], tag: int) -> P:
        md = self.rt.desc(dims, tag)
        self._mds.append(md)
        return md

    def _pd(self, create, *args) -> P:
        pd = P()
        self.rt.check(create(ctypes.byref(pd), *args), create.__name__)
        self._pds.append(pd)
        return pd

    def _prim(self, pd: P) -> Tuple[P, Scratch]:
        prim = P()
        self.rt.check(self.rt.lib.dnnl_primitive_create(ctypes.byref(prim), pd), "primitive_create")
        self._prims.append(prim)
        scratch = Scratch(self.rt, pd)
        self._scratches.append(scratch)
        return prim, scratch

    def _op(self, user_md: P, prim_md: P, role: str, into_user: bool) -> Operand:
        op = Operand(self.rt, user_md, prim_md, role, into_user)
        self._operands.append(op)
        return op

    def forward(self, x: paddle.Tensor, w: paddle.Tensor) -> paddle.Tensor:
        y = paddle.empty(list(self.y_shape), dtype="float32")
        (prim, scratch), xo, wo, yo = self.fwd
        args = [(ARG_SRC, xo.bind(x.data_ptr(), True)), (ARG_WEIGHTS, wo.bind(w.data_ptr(), True)),
                (ARG_DST, yo.bind(y.data_ptr(), False))]
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
            self.rt.execute(prim, [(ARG_DIFF_DST, dy_mem), (ARG_WEIGHTS, wo.bind(w.data_ptr(), True)),
                                   (ARG_DIFF_SRC, dxo.bind(dx.data_ptr(), False))], scratch)
            dxo.store()
        if need_dw and self.dw_unfold:
            dw = depthwise_weight_grad(x, dy, self.kernel, self.stride, self.padding)
        elif need_dw:
            dw = paddle.empty(list(w.shape), dtype="float32")
            (prim, scratch), xo, dyo, dwo = self.bwd_weights
            if dy_mem is None or not self.dy_shared:
                dy_mem = dyo.bind(dy.data_ptr(), True)  # else: the reordered dy of backward-data is reused
            self.rt.execute(prim, [(ARG_SRC, xo.bind(x.data_ptr(), True)), (ARG_DIFF_DST, dy_mem),
                                   (ARG_DIFF_WEIGHTS, dwo.bind(dw.data_ptr(), False))], scratch)
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


def _threads_for_shape(rt: Runtime, x_shape: Tuple[int, ...], w_shape: Tuple[int, ...], stride: Tuple[int, int],
                       padding: Tuple[int, int]) -> int:
    n, _, h, w = x_shape
    o, ipg, kh, kw = w_shape
    oh, ow = (h + 2 * padding[0] - kh) // stride[0] + 1, (w + 2 * padding[1] - kw) // stride[1] + 1
    return 1 if n * o * oh * ow * ipg * kh * kw < SMALL_CONV_MACS else rt.threads


def _plan(rt: Runtime, key: tuple) -> _ConvPlan:
    plan = rt.plans.get(key)
    if plan is None:
        with rt.threads_for(_threads_for_shape(rt, *key[:4])):
            plan = _ConvPlan(rt, *key)
        rt.plans[key] = plan
        if len(rt.plans) > MAX_PLANS:
            rt.plans.popitem(last=False)[1].close()
    else:
        rt.plans.move_to_end(key)
    return plan


class _OneDNNConv(PyLayer):
    @staticmethod
    def forward(ctx, x, weight, key):
        rt = runtime.get()
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
        rt = runtime.get()
        with rt.lock:
            plan = _plan(rt, ctx.key)
            with rt.threads_for(plan.threads):
                dx, dw = plan.backward(x, weight, dy, *ctx.need)
        return dx, dw


#: Non-depthwise convolutions whose output has at most this many pixels run in the blocked layout.
BLOCKED_MAX_PIXELS = 64


def blocked_layout(x_shape: Tuple[int, ...], w_shape: Tuple[int, ...], stride: Tuple[int, int],
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
    key = key + (blocked_layout(*key),)
    return _OneDNNConv.apply(x, weight, key)
