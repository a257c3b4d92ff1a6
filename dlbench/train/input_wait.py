"""How long training waited for its input, measured where the waiting happens.

On the CPU a step runs synchronously: the host's time blocked in `next_batch` is time the model did not train.

On CUDA the host only queues work. While it waits for the next batch the GPU may still be working off the steps
queued before, so the host's blocked time is not the GPU's idle time. With a loader delivering a batch every 100 ms,
a GPU step of 60 ms and 20 ms of launching, the host waits 80 ms a step and the GPU 40 ms; subtracting the host's
80 ms from the wall time leaves the 20 ms of launching, and "compute alone" comes out 3x the GPU's real rate.

So on CUDA (with a data loader) an event is recorded on the run's stream just before the host asks for a batch, and
one after it has the batch (and has queued its copy to the device). A CUDA event "is recorded after all preceding operations in
stream have been completed" (CUDA Runtime API, cudaEventRecord), and not before the host recorded it, so the first
completes when the GPU has finished the previous step, the second when the GPU could start on the new batch. The time
between them is the time the GPU sat idle for want of input (the batch's copy, queued on the same stream, included).
Both are read after the window's final synchronisation: nothing waits inside the loop.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol


class Event(Protocol):
    """What torch.cuda.Event offers once recorded: milliseconds from this event to a later one."""

    def elapsed_time(self, end: "Event") -> float: ...


class HostInputWait:
    """Synchronous devices: the host's time blocked in `next_batch` is the device's."""

    measures = "host"  # the host's blocked time, equal to the device's idle time on a synchronous device

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self._total = 0.0
        self._asked = 0.0

    def reset(self) -> None:
        self._total = 0.0

    def before(self) -> None:
        self._asked = self.clock()

    def after(self) -> None:
        self._total += self.clock() - self._asked

    def seconds(self) -> float:
        return self._total


class DeviceInputWait:
    """Asynchronous devices: the device's idle time between finishing the previous step and receiving the batch,
    from events recorded on its stream by `mark` around the hand-off."""

    measures = "device"  # the GPU's idle time waiting for the batch, from CUDA events

    def __init__(self, mark: Callable[[], Event]):
        self.mark = mark
        self._pairs: list[tuple[Event, Event]] = []
        self._asked: Event | None = None

    def reset(self) -> None:
        self._pairs = []

    def before(self) -> None:
        self._asked = self.mark()

    def after(self) -> None:
        self._pairs.append((self._asked, self.mark()))

    def seconds(self) -> float:
        """Call after the device has been synchronised (the timed window's end does it)."""
        return sum(asked.elapsed_time(received) for asked, received in self._pairs) / 1000.0


def meter_for(device, synthetic: bool = False) -> HostInputWait | DeviceInputWait:
    """Events on CUDA with a loader; the host clock otherwise. A synthetic batch already sits on the GPU and is
    handed over at once: nothing to wait for, and two events a step would only add launch cost to small models."""
    if device.type != "cuda" or synthetic:
        return HostInputWait()
    import torch

    def mark():
        event = torch.cuda.Event(enable_timing=True)
        event.record(torch.cuda.current_stream(device))  # the run's stream, as the step clock's events
        return event

    return DeviceInputWait(mark)


def compute_alone(samples: int, timed_seconds: float, waited_seconds: float) -> float | None:
    """Samples per second had the input never kept the device waiting: the window without its input-idle time."""
    computing = timed_seconds - waited_seconds
    return samples / computing if computing > 0 else None
