"""Renaming timm's keys to a family's, for the families' ``from_timm`` mappings (see
:mod:`ppnets.arch.timm`): :func:`rename_key` / :func:`timm_rename` by prefix tables, and for the units
of timm's EfficientNet builder (its ``DepthwiseSeparableConv`` and ``InvertedResidual``, which
MobileNetV1/V2/V3 and EfficientNet share) :func:`timm_blocks` and :func:`timm_unit_keys`."""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = ["TIMM_BLOCK", "rename_key", "timm_rename", "timm_blocks", "timm_unit_keys"]

#: a key of timm's ``blocks.<stage>.<index>.<rest>`` (``fullmatch`` groups: stage, index, rest)
TIMM_BLOCK = re.compile(r"blocks\.(\d+)\.(\d+)\.(.+)")
#: timm's parts → (index into the unit's ``names``: expand, depthwise, SE, projection; 0 conv / 1 BN)
_TIMM_SEPARABLE = {"conv_dw": (1, 0), "bn1": (1, 1), "se": (2, None), "conv_pw": (3, 0), "bn2": (3, 1)}
_TIMM_INVERTED = {"conv_pw": (0, 0), "bn1": (0, 1), "conv_dw": (1, 0), "bn2": (1, 1), "se": (2, None),
                  "conv_pwl": (3, 0), "bn3": (3, 1)}


def timm_blocks(state_dict: Mapping[str, Any]) -> Tuple[List[Tuple[Tuple[int, int], Dict[str, Any]]], Dict[str, Any]]:
    """Split a timm EfficientNet-builder ``state_dict`` (EfficientNet, MobileNetV1/V2/V3) into its blocks
    and the rest: ``([((stage, i), {key after "blocks.<stage>.<i>.": value}), …] in network order, rest)``."""
    blocks: Dict[Tuple[int, int], Dict[str, Any]] = {}
    rest: Dict[str, Any] = {}
    for key, value in state_dict.items():
        m = TIMM_BLOCK.fullmatch(key)
        if m:
            blocks.setdefault((int(m.group(1)), int(m.group(2))), {})[m.group(3)] = value
        else:
            rest[key] = value
    return sorted(blocks.items()), rest


def timm_unit_keys(where: Tuple[int, int], block: Mapping[str, Any], prefix: str,
                   names: Sequence[Optional[str]], conv_names: Tuple[str, str] = ("conv", "bn"),
                   se_names: Tuple[str, str] = ("conv_reduce", "conv_expand")) -> Dict[str, Any]:
    """timm's keys of one block (its ``DepthwiseSeparableConv``, or ``InvertedResidual`` when it has a
    ``conv_pwl``) → ``prefix`` + this unit's ``names`` (expand, depthwise, SE, projection parts),
    ``conv_names`` inside a part and ``se_names`` inside the SE. A key of no known part keeps timm's
    full name (``blocks.<stage>.<i>.…``), so the layout check reports it as unexpected."""
    parts = _TIMM_INVERTED if "conv_pwl.weight" in block else _TIMM_SEPARABLE
    out: Dict[str, Any] = {}
    for key, value in block.items():
        part, _, leaf = key.partition(".")
        index, inner = parts.get(part, (None, None))
        name = names[index] if index is not None else None
        if name is None:
            new = "blocks.{}.{}.{}".format(*where, key)
        elif inner is not None:
            new = f"{prefix}{name}.{conv_names[inner]}.{leaf}"
        else:
            se, _, se_leaf = leaf.partition(".")
            new = f"{prefix}{name}.{se_names[0 if se == 'conv_reduce' else 1]}.{se_leaf}" \
                if se in ("conv_reduce", "conv_expand") else "blocks.{}.{}.{}".format(*where, key)
        out[new] = value
    return out


def rename_key(key: str, table: Union[Mapping[str, str], Sequence[Tuple[str, str]]]) -> str:
    """``key`` with the first matching prefix of ``table`` (``{old: new}`` or ``[(old, new), …]``)
    replaced; unchanged when none matches (the layout check then reports it)."""
    for old, new in (table.items() if isinstance(table, Mapping) else table):
        if key.startswith(old):
            return new + key[len(old):]
    return key


def timm_rename(state_dict: Mapping[str, Any], prefixes: Mapping[str, str]) -> Dict[str, Any]:
    """Keys starting with one of ``prefixes`` (timm's, e.g. ``"bn1."``) get its ppnets prefix
    instead; other keys are kept (the layout check reports them)."""
    return {rename_key(key, prefixes): value for key, value in state_dict.items()}
