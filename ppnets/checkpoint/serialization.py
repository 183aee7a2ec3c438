"""The one reader and writer of weights and checkpoint files: no code runs from a file.

``.pdparams``, ``.pdopt``, ``.pdstates`` and ``.pdema`` files are pickles, and unpickling an
arbitrary pickle runs whatever code it names. :func:`decode` reads them with a restricted
unpickler that admits only what Paddle's and PaddleClas's files contain — numpy arrays,
dtypes and scalars, dicts (also ``OrderedDict``), lists, tuples, numbers, strings, bytes and
``None`` (Paddle's ``LR_Scheduler`` state is a dict of numbers; a tensor inside a nested object,
e.g. the EMA state, is pickled as ``tuple((name, array))``). Any other type is a one-line
:class:`~ppnets.errors.CheckpointError` naming the file and the type, before anything is
called. ``trust=True`` (``Global.trust_pickles`` / ``--trust-pickles``) uses Paddle's own
loader instead, for files the user trusts.

``.safetensors`` files hold tensors only and never run code; they are the files
``paddle.save(state_dict, path, safetensors=True)`` writes and ``paddle.load(path,
safetensors=True)`` reads (both call the ``safetensors`` library used here).
"""
from __future__ import annotations

import codecs
import io
import os
import pickle
from typing import Any, Dict, Tuple

import numpy as np
import paddle

from ..errors import CheckpointError, short_repr
from ..utils.logger import get_logger

try:   # numpy 2 moved its core to numpy._core
    from numpy._core.multiarray import _reconstruct as _np_reconstruct, scalar as _np_scalar
except ImportError:   # pragma: no cover - numpy 1.26
    from numpy.core.multiarray import _reconstruct as _np_reconstruct, scalar as _np_scalar

__all__ = ["SAFE_GLOBALS", "read_bytes", "decode", "load", "encode", "is_safetensors", "parameter_names"]

#: the only ``module.name`` globals a pickle may reference (what numpy's own pickles use;
#: ``_codecs.encode`` is how protocol-2 pickles spell bytes, e.g. a dtype's code)
SAFE_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("collections", "OrderedDict"), ("_codecs", "encode"), ("builtins", "tuple"), ("__builtin__", "tuple"),
})

_ADMITTED = "numpy arrays, dicts, lists, tuples, numbers and strings"
_NAME_TABLE, _BIG_PARAMS = "StructuredToParameterName@@", "UnpackBigParamInfor@@"  # Paddle's bookkeeping keys


class _Refused(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _TooLarge(Exception):
    """An array whose declared size exceeds what the file can hold."""


def _declared_bytes(shape: Any, dtype: Any) -> Tuple[int, str]:
    """``(bytes, "shape dtype")`` of an array a pickle declares, from the arguments alone."""
    dims = (shape,) if isinstance(shape, int) else shape
    if not isinstance(dims, tuple) or not all(isinstance(d, int) and d >= 0 for d in dims):
        raise _Refused(f"an array of shape {short_repr(shape)}")
    try:
        dt = np.dtype(dtype)
    except (TypeError, ValueError):
        raise _Refused(f"an array of dtype {short_repr(dtype)}") from None
    n = dt.itemsize
    for d in dims:
        n *= d
    return n, f"{list(dims)} {dt}"


class _NdarrayClass:
    """What the pickle gets for ``numpy.ndarray``: the class argument of ``_reconstruct`` (how numpy
    pickles an array: an empty array, then its bytes); called directly it would allocate an
    uninitialised array of any declared shape, so that is refused."""

    def __init__(self, unpickler: "_RestrictedUnpickler") -> None:
        self.unpickler = unpickler

    def __call__(self, shape: Any = (), dtype: Any = float, *args: Any, **kwargs: Any) -> Any:
        self.unpickler.spend(*_declared_bytes(shape, dtype))
        raise _Refused("numpy.ndarray called with a shape (an uninitialised array, not the file's data)")


class _PendingArray:
    """An array being unpickled: ``_reconstruct`` makes it, the pickle's BUILD sets its shape, dtype and
    bytes (checked against the budget first); :func:`_resolve` swaps in the array afterwards."""

    def __init__(self, unpickler: "_RestrictedUnpickler", array: np.ndarray) -> None:
        self.unpickler, self.array = unpickler, array

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Refused(f"an array state {short_repr(state)}")
        self.unpickler.spend(*_declared_bytes(state[-4], state[-3]))
        array = _np_reconstruct(np.ndarray, (0,), b"b")
        array.__setstate__(state)   # numpy checks the bytes against the declared shape
        self.array = array


class _RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`SAFE_GLOBALS` (and no persistent ids).

    Memory is bounded before anything is allocated: the arrays a pickle declares may not add up to
    more bytes than the file has (``limit``), since an array's data is part of the file.
    """

    def __init__(self, file: Any, limit: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.limit = self.budget = limit
        self.ndarray = _NdarrayClass(self)

    def spend(self, n: int, what: str) -> None:
        if n > self.budget:
            raise _TooLarge(f"declares arrays larger than the whole file ({self.limit:,} bytes) can hold (at an "
                            f"array {what} of {n:,} bytes)")
        self.budget -= n

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> _PendingArray:
        if subtype is not self.ndarray:
            raise _Refused(f"_reconstruct of {type(subtype).__name__}")
        self.spend(*_declared_bytes(shape, dtype))
        return _PendingArray(self, _np_reconstruct(np.ndarray, shape, dtype))

    def _scalar(self, dtype: Any, *data: Any) -> Any:
        if not isinstance(dtype, np.dtype):
            raise _Refused(f"a numpy scalar of {short_repr(dtype)}")
        self.spend(dtype.itemsize, f"scalar {dtype}")
        return _np_scalar(dtype, *data)

    @staticmethod
    def _encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        codec = str(encoding).replace("-", "").replace("_", "").lower()
        if not isinstance(obj, str) or codec not in ("latin1", "utf8"):
            raise _Refused(f"_codecs.encode to {short_repr(encoding)}")
        return codecs.encode(obj, encoding, errors)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in SAFE_GLOBALS:
            raise _Refused(f"{module}.{name}")
        special = {"ndarray": self.ndarray, "_reconstruct": self._reconstruct, "scalar": self._scalar,
                   "encode": self._encode}
        return special[name] if name in special else super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused(f"persistent id {type(pid).__name__}")


def _resolve(obj: Any, memo: Dict[int, Any]) -> Any:
    """``obj`` with every :class:`_PendingArray` replaced by its array (shared objects stay shared)."""
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, _PendingArray):
        out: Any = obj.array
    elif isinstance(obj, _NdarrayClass):
        raise _Refused("numpy.ndarray as a value")
    elif isinstance(obj, dict):
        out = type(obj)((_resolve(k, memo), _resolve(v, memo)) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        out = type(obj)(_resolve(v, memo) for v in obj)
    else:
        return obj
    memo[id(obj)] = out
    return out


def is_safetensors(name: str) -> bool:
    """Whether the file ``name`` (a path or a checkpoint suffix such as ``ema.safetensors``) is safetensors."""
    return name.endswith("safetensors")


def read_bytes(path: str, what: str) -> bytes:
    """The content of ``path``; a missing or empty file is a CheckpointError naming ``what``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{what} not found: {path}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckpointError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if not data:
        raise CheckpointError(f"{what} {path} is empty (0 bytes)")
    return data


def _pack_big_params(obj: Dict[str, Any]) -> Dict[str, Any]:
    """Join the slices Paddle splits parameters > 1 GiB into (protocol 2/3 files), drop its name table."""
    info = obj.pop(_BIG_PARAMS, None)
    if isinstance(info, dict):
        for key, value in info.items():
            obj[key] = np.concatenate([obj.pop(part) for part in value["slices"]]).reshape(value["OriginShape"])
    obj.pop(_NAME_TABLE, None)
    return obj


def _restore_tensors(obj: Any, numpy: bool, memo: Dict[int, Any]) -> Any:
    """``obj`` with Paddle's tensor encodings undone, as ``paddle.load`` does: a ``(name, array)``
    tuple is a tensor; tensors become numpy arrays (``numpy``) or paddle Tensors. Shared
    sub-objects are converted once."""
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray):
        obj = obj[1]
    if isinstance(obj, np.ndarray):
        out: Any = obj if numpy else paddle.to_tensor(obj)
    elif isinstance(obj, dict):
        out = type(obj)((k, _restore_tensors(v, numpy, memo)) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        out = type(obj)(_restore_tensors(v, numpy, memo) for v in obj)
    else:
        return obj
    memo[id(obj)] = out
    return out


def _unpickle(data: bytes, path: str, what: str) -> Any:
    try:
        return _resolve(_RestrictedUnpickler(io.BytesIO(data), len(data), encoding="latin1").load(), {})
    except _TooLarge as e:
        raise CheckpointError(f"{what} {path} {e}: refused before allocating it (a damaged or crafted file)") from None
    except _Refused as e:
        raise CheckpointError(f"{what} {path} refers to {e.name}, which ppnets does not load: a pickle can run code, "
                              f"so only {_ADMITTED} are read (set Global.trust_pickles: true or --trust-pickles "
                              "only if you trust this file)") from None


def _safetensors_numpy(tensors: Dict[str, paddle.Tensor], path: str) -> Dict[str, np.ndarray]:
    """numpy arrays of safetensors' tensors. numpy has no bfloat16 (Paddle's ``.numpy()`` gives the raw
    bits as uint16), so bfloat16 tensors are converted to float32, with a notice."""
    out, widened = {}, []
    for key, value in tensors.items():
        if value.dtype == paddle.bfloat16:
            out[key] = value.astype("float32").numpy()
            widened.append(key)
        else:
            out[key] = np.asarray(value.numpy())
    if widened:
        get_logger().info(f"{path}: {len(widened)} bfloat16 tensor(s) converted to float32 (e.g. {widened[0]})")
    return out


def decode(data: bytes, path: str, what: str, trust: bool = False, numpy: bool = True) -> Any:
    """Decode the content of the weights/checkpoint file ``path`` (a pickle, or safetensors by its suffix).

    ``numpy``: arrays as numpy arrays, else as paddle Tensors. ``trust``: unpickle with Paddle's
    unrestricted loader. Damaged files raise a CheckpointError naming ``what`` and ``path``.
    """
    try:
        if is_safetensors(path):
            from safetensors.paddle import load as load_safetensors
            tensors = load_safetensors(data)
            return _safetensors_numpy(tensors, path) if numpy else tensors
        if trust:
            return paddle.load(io.BytesIO(data), return_numpy=numpy)
        obj = _unpickle(data, path, what)
        if isinstance(obj, dict):
            obj = _pack_big_params(obj)
        return _restore_tensors(obj, numpy, {})
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"cannot read {what} {path}: nested too deeply") from None
    except Exception as e:  # pickle/numpy/safetensors raise assorted errors for damaged files
        raise CheckpointError(f"cannot read {what} {path}: truncated or not a Paddle file "
                              f"({type(e).__name__})") from None


def parameter_names(data: bytes, path: str, what: str) -> Dict[str, str]:
    """The table ``structured name → parameter name`` Paddle stores in a ``.pdparams`` pickle
    (``StructuredToParameterName@@``: how its optimizer state names each parameter), or ``{}``."""
    try:
        obj = _unpickle(data, path, what)
    except Exception:  # a file that cannot be read restrictedly has been reported by decode() already
        return {}
    table = obj.get(_NAME_TABLE) if isinstance(obj, dict) else None
    return {k: v for k, v in table.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(table, dict) else {}


def load(path: str, what: str, trust: bool = False, numpy: bool = True) -> Tuple[Any, bytes]:
    """Read and :func:`decode` ``path``; returns the object and the file's bytes."""
    data = read_bytes(path, what)
    return decode(data, path, what, trust, numpy), data


def encode(obj: Any, name: str) -> bytes:
    """The bytes of ``obj`` as the file ``name`` (a path or a suffix) holds it: safetensors (a flat
    dict of tensors) by the suffix, else ``paddle.save``'s pickle."""
    if is_safetensors(name):
        from safetensors.paddle import save as save_safetensors
        return save_safetensors({k: v if isinstance(v, paddle.Tensor) else paddle.to_tensor(v)
                                 for k, v in obj.items()})
    buf = io.BytesIO()
    paddle.save(obj, buf)
    return buf.getvalue()
