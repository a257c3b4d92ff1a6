"""argparse types shared by the subcommands: each turns bad input into a one-line usage error."""

from __future__ import annotations

import argparse
import math
import re


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


def one_word(what: str):
    """A string option that must be one word, without spaces (a label value such as a hostname)."""

    def parse(text: str) -> str:
        if not text.strip() or any(c.isspace() for c in text):
            raise argparse.ArgumentTypeError(f"{what} must be one word, not {text!r}")
        return text

    return parse


def fraction(text: str) -> float:
    """A number strictly between 0 and 1: a tolerance, an outlier distance, a significance level."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a fraction such as 0.1, not {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), not {text}")
    return value


def percent(text: str) -> float:
    """'5', '5%' or '0.5%' -> a fraction; refuses what is not a percentage between 0 and 100."""
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a percentage such as 5 or 5%, not {text!r}") from None
    if not 0 < value < 100:
        raise argparse.ArgumentTypeError(f"must be between 0 and 100 percent, not {text}")
    return value / 100.0


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def duration(text: str) -> float:
    """'90', '90s', '30m', '1h', '1h30m' -> seconds."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise argparse.ArgumentTypeError(f"duration must look like 90s, 30m, 1h or 1h30m, not {text!r}")
    hours, minutes, seconds = (float(group or 0) for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, not {text!r}")
    return total


def byte_size(text: str) -> int:
    """'256MiB', '2GB', '1.5TiB' -> bytes, in the units a host spec accepts (dlbench/hostspec/units.py)."""
    from dlbench.hostspec import units

    size = units.size_bytes(text)
    if size is None or size <= 0:
        raise argparse.ArgumentTypeError(f"must be a size such as 256MiB or 2GB, not {text!r}")
    return size


def process_counts(text: str) -> list[int]:
    """ "1,2,4,8" -> [1, 2, 4, 8]: distinct positive whole numbers, in the order they run (ascending)."""
    try:
        values = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected process counts such as 1,2,4,8, not {text!r}") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"process counts must be positive whole numbers, not {text!r}")
    return values
