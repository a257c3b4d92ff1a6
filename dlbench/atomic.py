"""Write files so that a reader sees the old content or the new, never half of either."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dlbench.errors import UserError


def check_writable(path: str | os.PathLike) -> Path:
    """Fail before any work is done if `path` cannot be written later."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise UserError(f"output path {target} is a directory; give a file name such as {target}/result.json")
    if not parent.is_dir():
        raise UserError(f"cannot write {target}: directory {parent} does not exist")
    try:  # the only reliable test (root ignores permission bits; read-only mounts and /proc do not)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{target.name}.", suffix=".probe"):
            pass
    except OSError as error:
        raise UserError(f"cannot write {target}: directory {parent} is not writable ({error.strerror})") from None
    return target


def write_text(path: str | os.PathLike, text: str) -> None:
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
    except OSError as error:
        raise UserError(f"cannot write {target}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
