"""Can this layer run N:M on that hardware, and if not, why: one rule for the trainer and the arch models.

A layer is seen as the GEMM its weight is: n output rows (features / filters) by the reduction
k = kh·kw·Cin/groups, Cin innermost (records.py, METHODS.md). N:M groups of M weights run along the
reduction, laid out one of three ways (`NMSupport.layout`):

- `channels`: groups of M inside the input channels at each kernel position. This is what NVIDIA's
  sparse tensor cores run (cuSPARSELt; apex ASP builds masks this way). Cin/groups must be a
  multiple of M, and ASP also asks n % 8 == 0 and Cin % 16 == 0 (its "auto skipping" rule). A
  layer that fails stays dense.
- `reduction`: groups along the whole flattened reduction, and a last partial group is padded.
  This is an N:M accelerator that pads k up to a multiple of M, so every dense-capable layer fits.
- `flat`: groups of M consecutive weights of the flattened (Cout, kh, kw, Cin) tensor, wrapping
  from one output row into the next. This is the SR-STE and PGF reference code (a software mask).
  numel must be a multiple of M. Where k % M != 0 (a 3-channel stem) the groups are not per-row
  N:M, and a hardware model sees that in the mask.

`nm_eligibility` takes a weight shape, `gemm_nm_eligibility` a GEMM's (n, k). Both return an
`Eligibility` with the reason when the layer cannot run N:M. Neither imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simsparse.errors import PatternError, SpecError
from simsparse.registry import Registry

LAYOUTS = ("channels", "reduction", "flat")


@dataclass(frozen=True)
class NMSupport:
    """What a piece of hardware (or a reference's software mask) needs to run a layer N:M."""

    name: str
    layout: str                                      # channels | reduction | flat (module doc)
    rows_multiple: int = 1                           # n (output rows) must be a multiple of this
    channels_multiple: int = 1                       # Cin/groups must be a multiple of this (besides M)
    patterns: tuple[tuple[int, int], ...] = ()       # the N:M the hardware runs; () = any
    grouped_conv: bool = True                        # grouped / depthwise convs can run N:M
    source: str = ""


@dataclass(frozen=True)
class Eligibility:
    """The verdict for one layer: eligible, or the reason it stays dense."""

    eligible: bool
    reason: str = ""            # "" when eligible
    layout: str = "reduction"   # the group layout a mask of this layer uses


NM_SUPPORT: Registry[NMSupport] = Registry("N:M hardware support")
NM_SUPPORT.register("sparse_tensor_core", NMSupport(
    name="sparse_tensor_core", layout="channels", rows_multiple=8, channels_multiple=16, patterns=((2, 4),),
    source="NVIDIA apex ASP (apex.contrib.sparsity): skips layers with out % 8 or in % 16; cuSPARSELt 2:4"))
NM_SUPPORT.register("nm_accelerator", NMSupport(
    name="nm_accelerator", layout="reduction",
    source="an N:M accelerator that pads the reduction to a multiple of M (any layer fits)"))
NM_SUPPORT.register("flat", NMSupport(
    name="flat", layout="flat",
    source="SR-STE (aojunzz/NM-sparsity) and PGF reference code: groups of the flattened weight, wrapping rows"))


def check_nm(n: int, m: int) -> None:
    """N:M must satisfy 1 ≤ N ≤ M and M ≥ 2 (PatternError otherwise)."""
    if isinstance(n, bool) or isinstance(m, bool) or not isinstance(n, int) or not isinstance(m, int):
        raise PatternError(f"N:M = {n!r}:{m!r} must be two integers, e.g. 2:4")
    if m < 2 or not 1 <= n <= m:
        raise PatternError(f"N:M = {n}:{m} is invalid; need 1 <= N <= M and M >= 2, e.g. 2:4 or 1:8")


def support_named(support: NMSupport | str) -> NMSupport:
    return NM_SUPPORT.get(support) if isinstance(support, str) else support


def check_pattern_supported(pattern: tuple[int, int], support: NMSupport | str) -> None:
    """SpecError when the hardware runs no layer at this N:M (e.g. 1:8 on 2:4 tensor cores)."""
    sup = support_named(support)
    n, m = pattern
    check_nm(n, m)
    if sup.patterns and (n, m) not in sup.patterns and n != m:
        runs = ", ".join(f"{a}:{b}" for a, b in sup.patterns)
        raise SpecError(f"N:M {n}:{m} does not run on {sup.name} (it runs {runs}); choose one of those "
                        "or another N:M hardware support")


def nm_eligibility(*, weight_shape: tuple[int, ...], pattern: tuple[int, int], support: NMSupport | str,
                   groups: int = 1) -> Eligibility:
    """Can a conv/linear weight of `weight_shape` ((out, in) or (out, in/groups, *kernel)) run `pattern`?"""
    sup = support_named(support)
    n, m = pattern
    check_nm(n, m)
    if len(weight_shape) < 2:
        return Eligibility(False, f"a weight of shape {tuple(weight_shape)} has no reduction axis", sup.layout)
    rows, cin = int(weight_shape[0]), int(weight_shape[1])
    kernel = math.prod(int(s) for s in weight_shape[2:])
    why = _reason(sup, rows=rows, cin=cin, kernel=kernel, groups=groups, n=n, m=m)
    return Eligibility(not why, why, sup.layout)


def gemm_nm_eligibility(*, n: int, k: int, pattern: tuple[int, int], support: NMSupport | str) -> Eligibility:
    """Can a GEMM with n output rows and reduction k (a linear layer's view) run `pattern`?"""
    return nm_eligibility(weight_shape=(int(n), int(k)), pattern=pattern, support=support)


def _reason(sup: NMSupport, *, rows: int, cin: int, kernel: int, groups: int, n: int, m: int) -> str:
    """Why the layer cannot run N:M ("" when it can)."""
    if n == m:
        return ""
    if sup.patterns and (n, m) not in sup.patterns:
        return f"{sup.name} runs {', '.join(f'{a}:{b}' for a, b in sup.patterns)} only, not {n}:{m}"
    if groups > 1 and not sup.grouped_conv:
        return f"grouped conv (groups={groups}) does not run N:M on {sup.name}"
    if rows % sup.rows_multiple:
        return f"{rows} output rows are not a multiple of {sup.rows_multiple} ({sup.name})"
    if sup.layout == "channels":
        for multiple in sorted({sup.channels_multiple, m}, reverse=True):
            if cin % multiple:
                return f"{cin} input channels are not a multiple of {multiple} ({sup.name})"
    if sup.layout == "flat" and (rows * cin * kernel) % m:
        return f"{rows * cin * kernel} weights do not split into groups of {m} ({sup.name})"
    return ""
