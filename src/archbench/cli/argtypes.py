"""argparse value types shared by the CLI verbs: bad values end in one line naming what is allowed."""

from __future__ import annotations

import argparse
import math


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def positive_int(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def nonnegative_int(text: str) -> int:
    value = integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be 0 (all) or more")
    return value


def _finite_float(text: str, zero_ok: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise argparse.ArgumentTypeError(f"{value} must be {'0 or ' if zero_ok else ''}a positive number")
    return value


def positive_float(text: str) -> float:
    return _finite_float(text, zero_ok=False)


def nonnegative_float(text: str) -> float:
    return _finite_float(text, zero_ok=True)
