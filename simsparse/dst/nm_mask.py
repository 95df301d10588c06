"""N:M masks: top-N |w| in every group of M consecutive weights along the reduction axis.

Layout (records.py, METHODS.md; masks.patterns.gemm_rows): a weight is seen as an [n, k] matrix — rows are output
features/channels, k the reduction. Linear (out, in): groups run along `in`. Conv (Cout, Cin, *kernel):
Cin is moved innermost, (Cout, *kernel, Cin), and the flattened kernel·Cin axis is cut into groups,
which is how N:M hardware and cuSPARSELt (implicit GEMM, NHWC) group it.

Layouts (masks/eligibility.py says which one a layer gets on which hardware):
- `reduction` / `channels`: groups per row along k. Reduction lengths that are not a multiple of M
  pad the last group: it holds r < M real weights and keeps its min(N, r) largest, so every group
  has at most N nonzeros (hardware that pads k up to a multiple of M). On `channels` hardware an
  eligible layer has Cin % M == 0, so its groups are exactly the groups of Cin at each kernel position.
- `flat`: groups of M consecutive weights of the whole flattened (Cout, kh, kw, Cin) tensor, wrapping
  from one row into the next (the SR-STE / PGF reference code); numel must be a multiple of M.
"""

from __future__ import annotations

import torch

from simsparse.errors import PatternError
from simsparse.masks.eligibility import check_nm
from simsparse.masks.patterns import from_gemm_rows, gemm_rows


def nm_mask(weight: torch.Tensor, n: int, m: int, *, layout: str = "reduction") -> torch.Tensor:
    """Bool mask of `weight`'s shape keeping the N largest |w| of every M-group (see the layouts above)."""
    check_nm(n, m)
    rows = gemm_rows(weight.detach().abs().float())
    n_rows, k = rows.shape
    if n == m:
        return torch.ones(weight.shape, dtype=torch.bool, device=weight.device)
    if layout == "flat":
        if rows.numel() % m:
            raise PatternError(f"a flat {n}:{m} mask needs numel divisible by {m}; {rows.numel()} is not")
        flat = rows.reshape(-1, m)
        keep = torch.zeros(flat.shape, dtype=torch.bool, device=weight.device)
        keep.scatter_(-1, flat.topk(n, dim=-1, sorted=False).indices, True)
        return from_gemm_rows(keep.reshape(n_rows, k), weight.shape)
    if layout not in ("reduction", "channels"):
        raise PatternError(f"unknown N:M mask layout {layout!r}; use reduction, channels or flat")
    groups = -(-k // m)
    pad = groups * m - k
    # padding is -1 < any |w|, so it is chosen only when a tail group has fewer than N real weights
    padded = torch.nn.functional.pad(rows, (0, pad), value=-1.0).reshape(n_rows, groups, m)
    keep_idx = padded.topk(n, dim=-1, sorted=False).indices
    keep = torch.zeros(padded.shape, dtype=torch.bool, device=weight.device).scatter_(-1, keep_idx, True)
    keep = keep.reshape(n_rows, groups * m)[:, :k]
    return from_gemm_rows(keep, weight.shape)


def nm_group_counts(mask: torch.Tensor, m: int) -> torch.Tensor:
    """Nonzeros per M-group along the reduction axis, shape [rows, groups] (last group may be partial)."""
    rows = gemm_rows(mask.bool()).to(torch.int64)
    n_rows, k = rows.shape
    groups = -(-k // m)
    padded = torch.nn.functional.pad(rows, (0, groups * m - k), value=0)
    return padded.reshape(n_rows, groups, m).sum(dim=-1)


def is_nm_compliant(mask: torch.Tensor, n: int, m: int) -> bool:
    """True when every M-group along the reduction axis holds at most N nonzeros."""
    check_nm(n, m)
    return bool((nm_group_counts(mask, m) <= n).all())
