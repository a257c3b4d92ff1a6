"""Write a result file so that a reader sees the old content or the new, never half of either, and so that
writing never destroys what it should not.

The rules, checked before a run starts (`check_writable`) and again when writing (`write_text`):
- a symlink is followed: the file it points to is replaced, the link stays a link;
- a character device or a FIFO (/dev/null, /dev/stdout, a named pipe) is written directly: renaming a regular file
  over /dev/null would replace the device, as root;
- any other non-regular target (a directory, a socket, a block device) is refused;
- a read-only file is refused, also for root (who may write anything: a file without write permission is a file
  somebody protected);
- a replaced file keeps its permission bits; a new file gets 0666 minus the umask, like any file a shell creates.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from dlbench.errors import UserError

_DIRECT = (stat.S_ISCHR, stat.S_ISFIFO)  # written in place, never replaced
_ANY_WRITE_BIT = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
# Opening a named pipe for writing blocks until a process opens it for reading (fifo(7)). The result is written
# while SIGINT and SIGTERM are held, so a pipe nobody reads would hang the run beyond Ctrl-C; wait this long instead.
FIFO_READER_WAIT_SECONDS = 30.0


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask can only set-and-return)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _resolve(path: str | os.PathLike) -> tuple[Path, os.stat_result | None]:
    """The real target (symlinks followed, also a dangling one) and its status, or None when it does not exist."""
    text = os.fspath(path)
    if not text:
        raise UserError("--output is empty; give a file name such as result.json")
    target = Path(os.path.realpath(text))
    try:
        return target, target.stat()
    except FileNotFoundError:
        return target, None
    except OSError as error:
        raise UserError(f"cannot write {text}: {error.strerror}") from None


def _refuse_unwritable(shown: str, target: Path, status: os.stat_result | None) -> bool:
    """Raise for a target that must not be written; True when it is to be written in place."""
    if status is None:
        return False
    mode = status.st_mode
    if stat.S_ISDIR(mode):
        raise UserError(f"output path {shown} is a directory; give a file name such as {shown}/result.json")
    if any(test(mode) for test in _DIRECT):
        if not os.access(target, os.W_OK):
            raise UserError(f"cannot write {shown}: permission denied")
        return True
    if not stat.S_ISREG(mode):
        raise UserError(f"cannot write {shown}: not a regular file, a character device or a pipe")
    if not mode & _ANY_WRITE_BIT or not os.access(target, os.W_OK):
        raise UserError(f"cannot write {shown}: the file is read-only (chmod u+w it, or choose another name)")
    return False


def check_writable(path: str | os.PathLike) -> Path:
    """Fail before any work is done if `path` cannot be written later."""
    target, status = _resolve(path)
    shown = os.fspath(path)
    if _refuse_unwritable(shown, target, status):
        return target
    parent = target.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {shown}: directory {parent} does not exist")
    try:  # the only reliable test (root ignores permission bits; read-only mounts and /proc do not)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{target.name}.", suffix=".probe"):
            pass
    except OSError as error:
        raise UserError(f"cannot write {shown}: directory {parent} is not writable ({error.strerror})") from None
    return target


def _open_pipe(target: Path, shown: str) -> int:
    """A write descriptor on a named pipe once a reader has it open; blocking writes from then on."""
    deadline = time.monotonic() + FIFO_READER_WAIT_SECONDS
    while True:
        try:  # O_NONBLOCK: fails with ENXIO while nobody reads, instead of blocking (fifo(7))
            fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as error:
            if error.errno != errno.ENXIO:
                raise
            if time.monotonic() >= deadline:
                waited = f"{FIFO_READER_WAIT_SECONDS:g} s"
                raise UserError(
                    f"cannot write {shown}: no process opened the pipe for reading within {waited}"
                ) from None
            time.sleep(0.05)
    os.set_blocking(fd, True)  # a result larger than the pipe's buffer waits for the reader, not EAGAIN
    return fd


def _write_in_place(target: Path, shown: str, text: str, status: os.stat_result) -> None:
    try:
        if stat.S_ISFIFO(status.st_mode):
            handle = os.fdopen(_open_pipe(target, shown), "w", encoding="utf-8")
        else:
            handle = open(target, "w", encoding="utf-8")
        with handle:
            handle.write(text)
    except OSError as error:
        raise UserError(f"cannot write {shown}: {error.strerror}") from None


def write_text(path: str | os.PathLike, text: str) -> None:
    target, status = _resolve(path)
    shown = os.fspath(path)
    if _refuse_unwritable(shown, target, status):
        _write_in_place(target, shown, text, status)
        return
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise UserError(f"cannot write {shown}: {error.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            # mkstemp creates 0600; the file gets what the shell would have given it, or what it had
            os.fchmod(handle.fileno(), stat.S_IMODE(status.st_mode) if status else 0o666 & ~_umask())
            if status is not None and os.geteuid() == 0:
                os.fchown(handle.fileno(), status.st_uid, status.st_gid)  # root replacing a user's file
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as error:
        os.unlink(tmp)
        if isinstance(error, OSError):
            raise UserError(f"cannot write {shown}: {error.strerror or error}") from None
        raise


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
