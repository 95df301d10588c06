"""The one strict parser for what users type: numbers, GEMM shapes, seeds, batch sizes, pattern strings.

Rules (the same for every command, the API and sweep files):
  * ASCII only: `６４` (full-width), `1_0` (underscores), `٣` are refused, never read as numbers;
  * integers are plain decimal (`-`/`+` sign allowed where negatives make sense); no `1e3`, no `0x10`;
  * floats are decimal or scientific (`0.5`, `1e-3`); `inf` and `nan` are refused;
  * empty values and degenerate patterns (`fanin=0`, `0:4`, `N > M`) are refused;
  * `2:4` is a pattern, never a number (YAML 1.1 would read it as 124).

Every failure is a `SimSparseError` (`PatternError` for patterns) with one line naming the value
and what is accepted. `cli_type(fn)` adapts any parser to an argparse `type=` callable.
"""

from __future__ import annotations

import argparse
import inspect
import math
import re
from dataclasses import dataclass
from typing import Any, Callable

from simsparse.errors import PatternError, SimSparseError

MAX_DIM = 2**31 - 1          # largest GEMM dimension, batch size or count accepted
MAX_SEED = 2**32 - 1
INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)     # a plain decimal integer (the one rule: --set values too)
FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
PATTERN_HELP = ("dense, N:M (e.g. 2:4), fanin=K (or fanin=D, 0<D<1), density=D (0<D<=1), "
                "channels=D (0<D<=1; on a network also channels=D,skip=S|keep)")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise SimSparseError(f"{what} {value!r}: expected text, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise SimSparseError(f"{what} is empty; give a value")
    if not text.isascii():
        raise SimSparseError(f"{what} {value!r} holds non-ASCII characters; type plain ASCII digits (e.g. 64, not ６４)")
    return text


def parse_int(value: Any, *, what: str = "value", min: int | None = None, max: int | None = None) -> int:
    """A plain decimal integer (an int passes through), within [min, max] when given."""
    if isinstance(value, bool):
        raise SimSparseError(f"{what} {value!r}: expected an integer")
    if isinstance(value, int):
        n = value
    else:
        text = _text(value, what)
        if not INT_TEXT.fullmatch(text):
            raise SimSparseError(f"{what} {value!r} is not a plain integer; give decimal digits only (e.g. 64)")
        n = int(text)
    return _in_range(n, what=what, value=value, min=min, max=max)


def parse_float(value: Any, *, what: str = "value", min: float | None = None, max: float | None = None,
                min_exclusive: bool = False) -> float:
    """A finite decimal or scientific number (an int/float passes through), within the bounds given."""
    if isinstance(value, bool):
        raise SimSparseError(f"{what} {value!r}: expected a number")
    if isinstance(value, (int, float)):
        x = float(value)
    else:
        text = _text(value, what)
        if not FLOAT_TEXT.fullmatch(text):
            raise SimSparseError(f"{what} {value!r} is not a number; give e.g. 0.5 or 1e-3")
        x = float(text)
    if not math.isfinite(x):
        raise SimSparseError(f"{what} {value!r} is not finite; give a finite number")
    if min is not None and (x < min or (min_exclusive and x == min)):
        raise SimSparseError(f"{what} {value!r} must be {'>' if min_exclusive else '>='} {min:g}")
    if max is not None and x > max:
        raise SimSparseError(f"{what} {value!r} must be <= {max:g}")
    return x


def _in_range(n: int, *, what: str, value: Any, min: int | None, max: int | None) -> int:
    if min is not None and n < min:
        raise SimSparseError(f"{what} {value!r} must be >= {min}")
    if max is not None and n > max:
        raise SimSparseError(f"{what} {value!r} must be <= {max}")
    return n


def parse_count(value: Any, *, what: str = "count") -> int:
    """A positive integer (batch sizes, steps, processes, threads): 1..MAX_DIM."""
    n = parse_int(value, what=what)
    if not 1 <= n <= MAX_DIM:
        raise SimSparseError(f"{what} {value!r} must be a positive integer (1..{MAX_DIM})")
    return n


def parse_batch(value: Any, *, what: str = "--batch") -> int:
    return parse_count(value, what=what)


def parse_seed(value: Any, *, what: str = "--seed") -> int:
    """A random seed: an integer in 0..2**32-1."""
    return parse_int(value, what=what, min=0, max=MAX_SEED)


def parse_gemm(value: Any, *, what: str = "--gemm") -> tuple[int, int, int]:
    """`M,N,K` -> (m, n, k), three positive plain integers (m activation rows, n outputs, k reduction)."""
    if isinstance(value, (tuple, list)):
        parts = list(value)
    else:
        parts = _text(value, what).split(",")
    if len(parts) != 3:
        raise SimSparseError(f"{what} {value!r}: expected three positive integers M,N,K (e.g. 3072,768,3072)")
    dims = []
    for part, axis in zip(parts, "MNK"):
        try:
            dims.append(parse_int(part.strip() if isinstance(part, str) else part, what=axis))
        except SimSparseError as exc:
            raise SimSparseError(f"{what} {value!r}: {exc}; give three positive integers M,N,K") from None
        if not 1 <= dims[-1] <= MAX_DIM:
            raise SimSparseError(f"{what} {value!r}: M, N and K must be positive integers <= {MAX_DIM} "
                                 f"(got {axis} = {dims[-1]})")
    return dims[0], dims[1], dims[2]


MAX_RANK = 8                  # dimensions of a shape (--input C,H,W, a declared tensor shape)


def parse_shape(value: Any, *, what: str = "--input", example: str = "3,224,224") -> tuple[int, ...]:
    """`C,H,W` (any rank 1..MAX_RANK) -> a tuple of positive plain integers; a tuple/list passes through checked."""
    parts = list(value) if isinstance(value, (tuple, list)) else _text(value, what).split(",")
    if not 1 <= len(parts) <= MAX_RANK:
        raise SimSparseError(f"{what} {value!r}: expected 1 to {MAX_RANK} positive integers separated by commas "
                             f"(e.g. {example})")
    dims = []
    for part in parts:
        try:
            dims.append(parse_int(part.strip() if isinstance(part, str) else part, what="size", min=1, max=MAX_DIM))
        except SimSparseError as exc:
            raise SimSparseError(f"{what} {value!r}: {exc}; give positive integers (e.g. {example})") from None
    return tuple(dims)


def parse_assignment(value: Any, *, what: str, form: str) -> tuple[str, str]:
    """`NAME=VALUE` -> (name, value), both non-empty and printable; `form` says what is expected
    (e.g. "GPU=ARCH, e.g. 'H100 PCIe=h100_2to4'")."""
    text = value if isinstance(value, str) else ""
    name, sep, rhs = text.partition("=")
    if not sep or not name.strip() or not rhs.strip() or not text.isprintable():
        raise SimSparseError(f"{what} {value!r}: expected {form}")
    return name.strip(), rhs.strip()


# ----------------------------------------------------------------------------- patterns


@dataclass(frozen=True)
class PatternSpec:
    """A parsed pattern string."""

    kind: str                 # dense | nm | fanin | density | channels
    n: int = 0
    m: int = 0
    fan_in: int = 0
    fan_in_fraction: float = 0.0   # fanin=D form: fraction of the reduction kept per row
    density: float = 1.0
    text: str = "dense"
    skip: float | None = None      # channels=D,skip=S: share kept in residual groups (1.0 = keep; None: as D)


def parse_pattern(value: Any) -> PatternSpec:
    """Parse a --pattern string; PatternError naming the accepted forms otherwise."""
    if isinstance(value, PatternSpec):
        return value
    if not isinstance(value, str) or not value.strip():
        raise PatternError(f"empty pattern {value!r}; use one of: {PATTERN_HELP}")
    if not value.isascii():
        raise PatternError(f"pattern {value!r} holds non-ASCII characters (e.g. full-width digits); "
                           f"type it in ASCII: {PATTERN_HELP}")
    t = value.strip().lower()
    if t == "dense":
        return PatternSpec(kind="dense", text="dense")
    key, eq, raw = t.partition("=")
    if not eq and ":" in t:
        return _parse_nm(value, t)
    if eq and key == "fanin":
        return _parse_fanin(value, raw)
    if eq and key == "channels" and "," in raw:
        return _parse_channels_skip(value, raw)
    if eq and key in ("density", "channels"):
        d = _pattern_number(value, raw, what=f"{key}=D", lo=0.0, hi=1.0)
        return PatternSpec(kind=key, density=d, text=f"{key}={d:g}")
    raise PatternError(f"unknown pattern {value!r}; use one of: {PATTERN_HELP}")


def _parse_nm(value: str, t: str) -> PatternSpec:
    n_text, _, m_text = t.partition(":")
    if not (INT_TEXT.fullmatch(n_text) and INT_TEXT.fullmatch(m_text)) or n_text[0] in "+-" or m_text[0] in "+-":
        raise PatternError(f"pattern {value!r}: N:M needs two plain positive integers with 0 < N <= M (e.g. 2:4)")
    n, m = int(n_text), int(m_text)
    if not (0 < n <= m) or m > MAX_DIM:
        raise PatternError(f"pattern {value!r}: N:M needs 0 < N <= M (e.g. 2:4)")
    return PatternSpec(kind="nm", n=n, m=m, text=f"{n}:{m}")


def _parse_fanin(value: str, raw: str) -> PatternSpec:
    if "." in raw or "e" in raw:
        d = _pattern_number(value, raw, what="fanin=D", lo=0.0, hi=1.0)
        if d >= 1.0:
            raise PatternError(f"pattern {value!r}: fanin=D needs 0 < D < 1 (or an integer fan-in K >= 1)")
        return PatternSpec(kind="fanin", fan_in_fraction=d, density=d, text=f"fanin={d:g}")
    if not INT_TEXT.fullmatch(raw) or raw[0] in "+-" or int(raw) < 1 or int(raw) > MAX_DIM:
        raise PatternError(f"pattern {value!r}: fanin=K needs a positive integer K (e.g. fanin=16) "
                           "or a fraction 0 < D < 1")
    k = int(raw)
    return PatternSpec(kind="fanin", fan_in=k, text=f"fanin={k}")


def _parse_channels_skip(value: str, raw: str) -> PatternSpec:
    """channels=D,skip=S (0<S<=1) or channels=D,skip=keep: residual groups keep a share S (or all)."""
    head, _, tail = raw.partition(",")
    d = _pattern_number(value, head, what="channels=D", lo=0.0, hi=1.0)
    key, eq, share_text = tail.partition("=")
    if key != "skip" or not eq or not share_text:
        raise PatternError(f"pattern {value!r}: after channels=D only skip=S (0<S<=1) or skip=keep may follow")
    share = 1.0 if share_text == "keep" else _pattern_number(value, share_text, what="skip=S", lo=0.0, hi=1.0,
                                                                alt="skip=keep")
    tail_text = "keep" if share_text == "keep" else f"{share:g}"
    return PatternSpec(kind="channels", density=d, skip=share, text=f"channels={d:g},skip={tail_text}")


def _pattern_number(value: str, raw: str, *, what: str, lo: float, hi: float, alt: str = "") -> float:
    """The number in `what` (e.g. `skip=S`), named by its own letter in the message; `alt`: another form."""
    name, or_alt = what.rpartition("=")[2], f" (or {alt})" if alt else ""
    if not FLOAT_TEXT.fullmatch(raw):
        raise PatternError(f"pattern {value!r}: {what} needs a number 0 < {name} <= 1 (e.g. 0.25){or_alt}")
    d = float(raw)
    if not (lo < d <= hi):
        raise PatternError(f"pattern {value!r}: {what} needs 0 < {name} <= 1{or_alt}")
    return d


def parse_pattern_text(value: Any) -> str:
    """A pattern string checked and normalised (`FANIN=0.10` -> `fanin=0.1`)."""
    return parse_pattern(value).text


def check_pattern_fits(spec: PatternSpec, *, reduction: int, what: str = "pattern") -> None:
    """Refuse a pattern that cannot be laid on a reduction of `reduction` (M or K larger than it)."""
    if spec.kind == "nm" and spec.m > reduction:
        raise PatternError(f"{what} {spec.text}: M = {spec.m} exceeds the reduction length K = {reduction}; "
                           f"choose M <= {reduction}")
    if spec.kind == "fanin" and spec.fan_in > reduction:
        raise PatternError(f"{what} {spec.text}: fan-in {spec.fan_in} exceeds the reduction length K = {reduction}; "
                           f"choose K <= {reduction}")


def parse_nm(value: Any, *, what: str = "--nm") -> tuple[int, int]:
    """`N:M` (e.g. 1:8) -> (n, m)."""
    spec = parse_pattern(value)
    if spec.kind != "nm":
        raise PatternError(f"{what} {value!r}: expected N:M such as 1:8")
    return spec.n, spec.m


# ----------------------------------------------------------------------------- argparse


def cli_type(fn: Callable[..., Any], **kwargs: Any) -> Callable[[str], Any]:
    """`fn` as an argparse `type=`: its one-line error becomes argparse's usage error (exit 2)."""

    param = inspect.signature(fn).parameters.get("what")
    what = kwargs.get("what", param.default if param is not None else None)

    def convert(text: str) -> Any:
        try:
            return fn(text, **kwargs)
        except SimSparseError as exc:  # argparse prefixes "argument --x: "; say the option once
            message = str(exc)
            if what and message.startswith(f"{what} "):
                message = message[len(what) + 1:]
            raise argparse.ArgumentTypeError(message) from None

    convert.__name__ = fn.__name__.removeprefix("parse_")
    return convert
