"""EfficientNet compound scaling explorer (Tan & Le 2019, §3.3).

With a compound coefficient φ, depth, width and resolution are scaled by
``d = α^φ``, ``w = β^φ``, ``r = γ^φ`` under ``α · β² · γ² ≈ 2``, so each unit of φ
roughly doubles the FLOPs (FLOPs grow with d·w²·r²). The paper's grid search on B0
gave α = 1.2, β = 1.1, γ = 1.15 (α·β²·γ² = 1.9203).

The released B1–B7 do not use these exact multipliers (their width / depth /
resolution are in :data:`ppnets.arch.efficientnet.SCALING`); :func:`variant_phis`
says which φ each corresponds to, per axis and by its MACs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from tqdm import tqdm

from ..arch.efficientnet import SCALING, EfficientNet
from ..errors import ConfigError
from ..arch.profile import profile_model

__all__ = ["ALPHA", "BETA", "GAMMA", "BASE_RESOLUTION", "ScaledModel", "compound_scaling", "variant_phis",
           "format_scaling"]

ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15
BASE_RESOLUTION = 224


@dataclass
class ScaledModel:
    """The multipliers for one φ and, if profiled, the resulting EfficientNet's size."""

    phi: float
    alpha: float
    beta: float
    gamma: float
    depth: float
    width: float
    resolution_mult: float
    resolution: int
    params: Optional[int] = None
    macs: Optional[int] = None

    @property
    def constraint(self) -> float:
        """α · β² · γ² (the paper constrains it to ≈ 2)."""
        return self.alpha * self.beta ** 2 * self.gamma ** 2

    @property
    def flops_factor(self) -> float:
        """Predicted FLOPs growth over B0: (α·β²·γ²)^φ."""
        return self.constraint ** self.phi


def _check_coefficients(alpha: float, beta: float, gamma: float) -> None:
    """α, β, γ must exceed 1: φ per axis is log(multiplier) / log(coefficient)."""
    for name, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)):
        if not v > 1.0:
            raise ConfigError(f"compound scaling: {name} must be > 1, got {v}")


def compound_scaling(phi: float, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA,
                     profile: bool = True, class_num: int = 1000,
                     base_resolution: int = BASE_RESOLUTION) -> ScaledModel:
    """Multipliers for ``phi``; with ``profile`` also build the scaled EfficientNet and count it.

    Width is rounded by ``round_filters`` and depth by ``ceil`` exactly as the B0–B7 code,
    the resolution to the nearest pixel.
    """
    _check_coefficients(alpha, beta, gamma)
    if not -1.0 <= phi <= 12.0:
        raise ConfigError(f"compound scaling: phi must be between -1 and 12, got {phi}")
    d, w, r = alpha ** phi, beta ** phi, gamma ** phi
    res = max(8, int(round(base_resolution * r)))
    out = ScaledModel(phi, alpha, beta, gamma, d, w, r, res)
    if profile:
        model = EfficientNet(width_mult=w, depth_mult=d, class_num=class_num)
        prof = profile_model(model, res)
        out.params, out.macs = prof.params, prof.macs
    return out


def variant_phis(alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA,
                 profile: bool = True, class_num: int = 1000) -> List[Dict[str, Any]]:
    """For each released B0–B7: its multipliers, size, and the φ it corresponds to.

    Per axis: ``phi_depth = log(d)/log(α)``, ``phi_width = log(w)/log(β)``,
    ``phi_res = log(res/224)/log(γ)``. With ``profile`` (builds and counts every variant at
    its native resolution, ~10 s for all eight) also params, MACs and
    ``phi = log(MACs/MACs_B0) / log(α·β²·γ²)``, the φ whose predicted FLOPs it has.
    """
    _check_coefficients(alpha, beta, gamma)
    rows: List[Dict[str, Any]] = []
    # building and counting the eight variants takes a while: show progress on a terminal
    for name, (w, d, res, _) in tqdm(SCALING.items(), desc="profiling EfficientNet B0–B7", disable=None,
                                     leave=False):
        row: Dict[str, Any] = {"name": name, "width": w, "depth": d, "resolution": res,
                               "phi_depth": math.log(d) / math.log(alpha),
                               "phi_width": math.log(w) / math.log(beta),
                               "phi_res": math.log(res / BASE_RESOLUTION) / math.log(gamma)}
        if profile:
            prof = profile_model(EfficientNet(width_mult=w, depth_mult=d, class_num=class_num), res)
            row["params"], row["macs"] = prof.params, prof.macs
        rows.append(row)
    if profile:
        base = rows[0]["macs"]
        for row in rows:
            row["phi"] = math.log(row["macs"] / base) / math.log(alpha * beta ** 2 * gamma ** 2)
    return rows


def format_scaling(scaled: List[ScaledModel], variants: List[Dict[str, Any]]) -> str:
    """The explorer's report: the requested φ and the released B0–B7 in one table sorted by φ."""
    a, b, g = ((scaled[0].alpha, scaled[0].beta, scaled[0].gamma) if scaled else (ALPHA, BETA, GAMMA))
    c = a * b ** 2 * g ** 2
    lines = [f"Compound scaling: depth d = α^φ, width w = β^φ, resolution r = γ^φ with "
             f"α={a:g}, β={b:g}, γ={g:g}",
             f"α·β²·γ² = {c:.4f} (≈ 2: FLOPs grow by about (α·β²·γ²)^φ); base EfficientNet-B0 at "
             f"{BASE_RESOLUTION} px; params and MACs of the model at its input size, FLOPs = 2 × MACs",
             "Released B1–B7 are placed at the φ whose predicted FLOPs they have: φ = log(MACs/MACs_B0) / "
             "log(α·β²·γ²)", ""]
    header = (f"{'model':<10} {'φ':>6} {'depth':>7} {'width':>7} {'input':>6} {'(αβ²γ²)^φ':>10} "
              f"{'params':>12} {'MACs':>16} {'MACs/B0':>8}")
    base = next((v.get("macs") for v in variants if v["name"] == "EfficientNetB0"), None)
    entries = []
    for s in scaled:
        entries.append((s.phi, 0, f"{'φ = ' + format(s.phi, 'g'):<10} {s.phi:>6.2f} {s.depth:>7.4f} {s.width:>7.4f} "
                                  f"{s.resolution:>6} {s.flops_factor:>10.3f} "
                                  f"{(format(s.params, ',') if s.params is not None else '-'):>12} "
                                  f"{(format(s.macs, ',') if s.macs is not None else '-'):>16} "
                                  f"{(format(s.macs / base, '.2f') if s.macs and base else '-'):>8}"))
    for v in variants:
        phi = v.get("phi", v["phi_res"])
        entries.append((phi, 1, f"{v['name'].replace('EfficientNet', '  '):<10} {phi:>6.2f} {v['depth']:>7g} "
                                f"{v['width']:>7g} {v['resolution']:>6} {'-':>10} "
                                f"{(format(v['params'], ',') if 'params' in v else '-'):>12} "
                                f"{(format(v['macs'], ',') if 'macs' in v else '-'):>16} "
                                f"{(format(v['macs'] / base, '.2f') if 'macs' in v and base else '-'):>8}"))
    lines += [header, "-" * len(header)] + [text for _, _, text in sorted(entries, key=lambda e: (e[0], e[1]))]
    profiled = [s for s in scaled if s.macs and base]
    over = [s for s in profiled if s.macs / base > s.flops_factor]
    if over:  # only when the table shows it
        which = ("of a φ row" if len(over) == len(profiled)
                 else "of the φ = " + ", ".join(format(s.phi, "g") for s in over) + " row" + "s" * (len(over) > 1))
        lines.append(f"(MACs/B0 {which} exceeds (αβ²γ²)^φ: stage depths are rounded up and widths to "
                     "multiples of 8, as in the B0–B7 code)")
    if variants:
        lines += ["", "φ implied by each axis of the released variants: log(width)/log(β), log(depth)/log(α), "
                      "log(res/224)/log(γ)",
                  f"{'model':<6} {'φ width':>8} {'φ depth':>8} {'φ res':>8}"]
        for v in variants:
            lines.append(f"{v['name'].replace('EfficientNet', ''):<6} {v['phi_width']:>8.2f} {v['phi_depth']:>8.2f} "
                         f"{v['phi_res']:>8.2f}")
    return "\n".join(lines)
