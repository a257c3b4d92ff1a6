"""argparse types shared by the subcommands: each turns bad input into a one-line usage error."""

from __future__ import annotations

import argparse


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
    return value


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
