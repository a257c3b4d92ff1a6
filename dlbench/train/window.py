"""How long a run warms up and how long it is timed.

Warm-up: by default until step time settles (autotuning, compilation, allocator growth and DataLoader start-up
are over), not a fixed number of steps: `torch.compile` spends its first steps compiling and cuDNN's autotuner
(`cudnn.benchmark`) tries algorithms on the first step of each shape, and how long that takes depends on the GPU.

Timed window: by default 30 s on a GPU, as the field measures (MLPerf and DeepLearningExamples time minutes, not
steps): NVML's power reading is a trailing average over about a second and telemetry samples every 0.5 s, so a
window of a fraction of a second would describe the warm-up, and the p99 of 20 steps is their maximum. On a CPU, at
least 10 steps and at least 3 s, so that a smoke workload (mnist-mlp: about a millisecond a step) times something
longer than the timer's and the scheduler's noise.

Under torchrun these limits are the job's, not each rank's: every DDP/FSDP step is a collective, so every rank must
run exactly as many steps as the others, or the first rank to stop waits in its next collective for peers still
training, until the collective timeout fails the job. Each rank's own clock and its own settle rule would disagree,
so the job decides once and shares the decision (see `planned_steps` and `more_steps`, and Run._timed_steps).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

GPU_DEFAULT_SECONDS = 30.0
CPU_DEFAULT_STEPS = 10
CPU_MIN_SECONDS = 3.0

SETTLE_STEPS = 5  # step times compared to decide that warm-up is over
SETTLE_SPREAD = 0.10  # the last SETTLE_STEPS agree within 10% of their median ...
SETTLE_DRIFT = 0.05  # ... or their median is within 5% of the SETTLE_STEPS before (noise, but no trend)
MIN_WARMUP_STEPS = 3
MAX_WARMUP_SECONDS = {"cuda": 60.0, "cpu": 10.0}  # after the first step, whose compilation has no bound


@dataclass(frozen=True)
class TimedWindow:
    """The timed loop ends once both limits that are set are reached."""

    steps: int | None
    seconds: float | None

    def done(self, steps: int, elapsed: float) -> bool:
        return (self.steps is None or steps >= self.steps) and (self.seconds is None or elapsed >= self.seconds)

    def describe(self) -> str:
        parts = [f"{self.steps} steps" if self.steps else "", f"{self.seconds:g} s" if self.seconds else ""]
        return "at least " + " and ".join(p for p in parts if p)


def settled_step_seconds(step_seconds: list[float]) -> float | None:
    """The step time warm-up ended on: the median of its last SETTLE_STEPS steps (None after no warm-up)."""
    return statistics.median(step_seconds[-SETTLE_STEPS:]) if step_seconds else None


def planned_steps(window: TimedWindow, step_seconds: float | None) -> int:
    """The steps a job agrees to time before it looks at the clock: the window's step count, or as many steps of the
    warm-up's settled step time as fill its duration, whichever is more (at least one)."""
    steps = window.steps or 1
    if window.seconds is not None and step_seconds and step_seconds > 0:
        steps = max(steps, math.ceil(window.seconds / step_seconds))
    return steps


def more_steps(window: TimedWindow, steps_done: int, elapsed: float) -> int:
    """Steps still needed once `steps_done` timed steps took `elapsed` seconds: 0 when both limits are reached, else
    enough to reach them at the rate measured so far (at least one)."""
    if window.done(steps_done, elapsed):
        return 0
    needed = (window.steps or 0) - steps_done
    if window.seconds is not None and elapsed < window.seconds and steps_done and elapsed > 0:
        needed = max(needed, math.ceil((window.seconds - elapsed) * steps_done / elapsed))
    return max(needed, 1)


def timed_window(steps: int | None, duration: float | None, on_gpu: bool) -> TimedWindow:
    if steps or duration:
        return TimedWindow(steps, duration)
    if on_gpu:
        return TimedWindow(None, GPU_DEFAULT_SECONDS)
    return TimedWindow(CPU_DEFAULT_STEPS, CPU_MIN_SECONDS)


@dataclass(frozen=True)
class Warmup:
    """A fixed number of steps (`--warmup N`), or until step times settle (the default)."""

    steps: int | None
    max_seconds: float

    @property
    def rule(self) -> str:
        if self.steps is not None:
            return f"{self.steps} step{'' if self.steps == 1 else 's'} (--warmup)"
        return (
            f"until the last {SETTLE_STEPS} step times agree within {SETTLE_SPREAD:.0%} of their median or their "
            f"median moves less than {SETTLE_DRIFT:.0%}; at least {MIN_WARMUP_STEPS} steps, at most "
            f"{self.max_seconds:g} s after the first step once {SETTLE_STEPS} more steps have run"
        )

    def finished(self, step_seconds: list[float], seconds_after_first: float) -> tuple[bool, bool | None]:
        """(stop warming up, settled); settled is None for a fixed count."""
        if self.steps is not None:
            return len(step_seconds) >= self.steps, None
        if len(step_seconds) >= MIN_WARMUP_STEPS and settled(step_seconds[1:]):
            return True, True
        # The cap waits until the rule has seen its SETTLE_STEPS steps: on a CPU a ResNet step takes seconds, and a cap
        # reached after two of them would report "not settled" for a rule that was never tried.
        return seconds_after_first >= self.max_seconds and len(step_seconds) > SETTLE_STEPS, False


def settled(step_seconds: list[float]) -> bool:
    if len(step_seconds) < SETTLE_STEPS:
        return False
    last = step_seconds[-SETTLE_STEPS:]
    middle = statistics.median(last)
    if middle > 0 and (max(last) - min(last)) / middle <= SETTLE_SPREAD:
        return True
    before = step_seconds[-2 * SETTLE_STEPS : -SETTLE_STEPS]
    return (
        len(before) == SETTLE_STEPS and middle > 0 and abs(middle - statistics.median(before)) / middle <= SETTLE_DRIFT
    )


def warmup_for(steps: int | None, device_type: str) -> Warmup:
    return Warmup(steps, MAX_WARMUP_SECONDS.get(device_type, MAX_WARMUP_SECONDS["cpu"]))
