"""What the image tests share: reading images/locks/*.txt."""

from __future__ import annotations

from pathlib import Path

from packaging.utils import canonicalize_name


def parse_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from a `uv pip compile --generate-hashes` file."""
    entries: dict[str, tuple[str, list[str]]] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        requirement, *options = line.split()
        name, version = requirement.split("==")
        hashes = [option.split(":", 1)[1] for option in options if option.startswith("--hash=sha256:")]
        entries[canonicalize_name(name)] = (version, hashes)
    return entries
