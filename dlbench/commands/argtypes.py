"""argparse types shared by the subcommands: each turns bad input into a one-line usage error."""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type, what: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a number, not {text!r}") from None


def positive_int(text: str) -> int:
    value = _number(text, int, "value")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int, "value")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or a positive whole number, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float, "value")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    if math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds, got {text}")
    return value


def seed(text: str) -> int:
    """What torch.manual_seed and numpy accept: 0 to 2**64 - 1."""
    value = _number(text, int, "seed")
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"seed must be 0 to 2**64-1 (18446744073709551615), not {text}")
    return value


def non_empty(what: str):
    """A string option that must not be empty (`--output ''` from an unset shell variable)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        return text

    return parse


def port(text: str) -> int:
    value = _number(text, int, "port")
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, not {value}")
    return value


def seconds_between(low: float, high: float, what: str):
    """A type for a number of seconds within [low, high], named `what` in errors."""

    def parse(text: str) -> float:
        value = _number(text, float, what)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{what} must be {low:g}-{high:g} seconds, not {text}")
        return value

    return parse
