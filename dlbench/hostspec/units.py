"""Sizes, link speeds and version rules as people write them in a host spec.

Units follow each trade's own convention, which is why one "GB" is not always the same number of bytes:
- storage vendors sell decimal units (IEC 80000-13, IDEMA LBA1-03): "2TB" is 2·10^12 bytes; "TiB"/"GiB" and the
  bare "T"/"G" that `lsblk` and `df -h` print are binary (2^40, 2^30);
- memory modules are sold in JEDEC units (JESD100B.01: "giga" = 2^30 for memory): "512GB" of RAM is 512 GiB;
- link speeds are decimal bits per second: "100GbE" is 100 000 Mb/s, the unit of /sys/class/net/*/speed.
"""

from __future__ import annotations

import re

DECIMAL = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
BINARY = {
    "K": 2**10,
    "KIB": 2**10,
    "M": 2**20,
    "MIB": 2**20,
    "G": 2**30,
    "GIB": 2**30,
    "T": 2**40,
    "TIB": 2**40,
    "P": 2**50,
    "PIB": 2**50,
}
# JEDEC memory units: decimal-looking names with binary values.
JEDEC = {"MB": 2**20, "GB": 2**30, "TB": 2**40}

SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGTP]i?B?|B)\b", re.IGNORECASE)
# bytes a second, B upper-case: "25 Gb/s" is a network's bits, not a disk's bytes
RATE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGTkmgt]i?B)\s*/\s*s\b")
SPEED = re.compile(r"(\d+(?:\.\d+)?)\s*(G|M)(?:b(?:E|it/s|/s|ps)?|E)?\b", re.IGNORECASE)


def size_bytes(text: str, *, memory: bool = False) -> int | None:
    """'2TB' -> 2e12, '1.8T' -> 1.8·2^40, '512GB' with memory=True -> 512·2^30; None when no size is in the text."""
    match = SIZE.search(str(text))
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2).upper()
    if memory and unit in JEDEC:
        return int(number * JEDEC[unit])
    factor = DECIMAL.get(unit) or BINARY.get(unit)
    return int(number * factor) if factor else None


def rate_gbps(text: str) -> float | None:
    """A disk's throughput as datasheets print it, in GB/s (10^9 bytes a second): '7GB/s' -> 7.0, '6800 MB/s' -> 6.8,
    '2GiB/s' -> 2.147; None when the text holds no rate. Storage vendors' MB/s and GB/s are decimal, as their sizes."""
    match = RATE.search(str(text))
    if not match:
        return None
    unit = match.group(2).upper()
    return float(match.group(1)) * (DECIMAL.get(unit) or BINARY[unit]) / 1e9


def human_bytes(n: int, *, memory: bool = False) -> str:
    """Bytes the way the trade writes them: storage in decimal TB/GB, memory in (JEDEC) GB = GiB."""
    if memory:
        return f"{n / 2**30:.0f}GB" if n >= 2**30 else f"{n / 2**20:.0f}MB"
    return f"{n / 10**12:.2f}TB" if n >= 10**12 else f"{n / 10**9:.0f}GB" if n >= 10**9 else f"{n / 10**6:.0f}MB"


def speed_mbps(text: str) -> int | None:
    """'100GbE' -> 100000, '25 Gb/s' -> 25000, '100G' -> 100000 (Mb/s, the unit of /sys/class/net/*/speed)."""
    match = SPEED.search(str(text))
    if not match:
        return None
    return int(float(match.group(1)) * (1000 if match.group(2).upper() == "G" else 1))


def within(found: float, expected: float, tolerance: float) -> bool:
    return abs(found - expected) <= tolerance * expected


# --- versions --------------------------------------------------------------------------------------------------
VERSION_RULE = re.compile(r"^\s*(>=|<=|==|>|<|=)?\s*v?(\d+(?:\.\d+)*)([^\s,]*)\s*$")


def version_tuple(text: str) -> tuple[int, ...]:
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text))
    return tuple(int(part) for part in match.group(1).split(".")) if match else ()


def parse_version_rule(text: str) -> list[tuple[str, tuple[int, ...], str]]:
    """'580.95.05' (exact), '>=580', '>=580.65.06,<581' -> [(operator, version, suffix)]; ValueError otherwise.

    Exact means every component the rule gives agrees: '12.1' matches 12.1.105, '580' matches any 580 driver.
    """
    clauses = []
    for part in str(text).split(","):
        match = VERSION_RULE.match(part)
        if not match:
            raise ValueError(part)
        operator = {None: "==", "=": "=="}.get(match.group(1), match.group(1))
        clauses.append((operator, tuple(int(p) for p in match.group(2).split(".")), match.group(3)))
    return clauses


def version_satisfies(found: str, rule: str) -> bool:
    have = version_tuple(found)
    if not have:
        return False
    for operator, want, _suffix in parse_version_rule(rule):
        if operator == "==":
            ok = have[: len(want)] == want
        else:
            padded = have[: len(want)] + (0,) * max(0, len(want) - len(have))
            ok = {">=": padded >= want, ">": have > want, "<=": padded <= want, "<": padded < want}[operator]
        if not ok:
            return False
    return True
