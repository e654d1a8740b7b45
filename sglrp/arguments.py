"""Command-line value types: each checks its value while the command line is parsed, before any
work, and names the valid range (``sglrp explain: error: argument --scenes: must be an integer
>= 1, got '0'``, exit code 2)."""

from __future__ import annotations

import argparse
import math
import os

__all__ = ["positive_int", "finite_float", "positive_float", "output_dir"]


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A finite number (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def output_dir(text: str) -> str:
    """A folder to write into: a non-empty path that is not an existing file."""
    if not text:
        raise argparse.ArgumentTypeError("must name a folder, got ''")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"must name a folder, got {text!r}, an existing file")
    return text
