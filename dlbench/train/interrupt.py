"""Stopping a run from outside: Ctrl-C (SIGINT) or SIGTERM (systemd, Slurm's scancel, `kill -- -PGID`).

Both raise `Interrupted` in the main thread, naming the signal, so the run keeps the steps it timed, writes its
result with status `interrupted`, and the process exits 128 + the signal number (130 for SIGINT, 143 for SIGTERM),
as a shell reports a process killed by that signal. From the end of the timed loop (or the first signal) until
the result is written, further signals are ignored: a second Ctrl-C must not leave a half-written or missing result,
nor lose the steps already timed (the GPU synchronization, the arithmetic and the write take well under a second).
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager

HANDLED = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def exit_code(signal_name: str) -> int:
    """128 + the signal's number: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signal.Signals[signal_name])


def signal_of(error: KeyboardInterrupt) -> Interrupted:
    """A plain KeyboardInterrupt (Python's own SIGINT handling) is a SIGINT."""
    return error if isinstance(error, Interrupted) else Interrupted(signal.SIGINT)


_holding = False


def _raise(signum, frame):
    if not _holding:
        raise Interrupted(signum)


def install() -> None:
    """Route SIGINT and SIGTERM to `Interrupted` (main thread only, as Python requires)."""
    for signum in HANDLED:
        signal.signal(signum, _raise)


def hold() -> None:
    """From now until `release`, SIGINT and SIGTERM do nothing: the run is ending (the first signal already said so,
    or the timed window is over) and what it measured must reach the result: the GPU synchronization, the telemetry
    window's close and the arithmetic that follow the timed loop, then the write."""
    global _holding
    _holding = True


def release() -> None:
    global _holding
    _holding = False


@contextmanager
def held():
    """`hold` for the block, then `release`."""
    hold()
    try:
        yield
    finally:
        release()


def _end_worker(signum, frame):
    raise KeyboardInterrupt


def quiet_in_worker(worker_id: int | None = None) -> None:
    """DataLoader `worker_init_fn`: a signal sent to the whole process group must end a worker quietly.

    PyTorch's workers exit quietly (status 0) on SIGINT, and on a SIGTERM from their parent; a SIGTERM from anyone
    else (Slurm's scancel, `kill -- -PGID`) kills them, and PyTorch's SIGCHLD handler then raises "DataLoader
    worker ... is killed by signal" in the main process, racing the main process's own interruption: a traceback,
    exit 1, sometimes no result. Here SIGTERM ends a worker the way SIGINT does (KeyboardInterrupt, which the worker
    loop catches and exits 0), whoever sent it, so the main process alone decides how the run ends. SIGTERM is not
    ignored: the loader's shutdown and multiprocessing's exit handler stop workers with it.
    """
    signal.signal(signal.SIGTERM, _end_worker)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.excepthook = _silent_when_the_reader_left(sys.excepthook)


def _silent_when_the_reader_left(excepthook):
    """`excepthook`, except for a reader that went away while fetching a batch's shared memory from this worker.

    A worker hands each batch's tensors over as file descriptors through multiprocessing's resource sharer, a
    thread in the worker that accepts the main process's connection, then authenticates and sends (CPython,
    Lib/multiprocessing/resource_sharer.py, `_serve`). When a signal to the whole process group interrupts the main
    process in the middle of that, the worker's thread gets EOFError or a reset connection and prints it through
    sys.excepthook: a traceback on the run's stderr, although the run ended as asked and wrote its result. That case,
    and only that one, is silent here."""

    def hook(kind, value, traceback):
        if issubclass(kind, (EOFError, ConnectionError)) and _raised_in_the_resource_sharer(traceback):
            return
        excepthook(kind, value, traceback)

    return hook


def _raised_in_the_resource_sharer(traceback) -> bool:
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename.endswith("resource_sharer.py"):
            return True
        traceback = traceback.tb_next
    return False
