"""Input wait on an asynchronous device, against a simulated CUDA stream (there is no GPU here).

The stand-in models only what NVIDIA documents about streams and events: work issued to one stream runs in issue
order, and an event "is recorded after all preceding operations in stream have been completed" (CUDA Runtime API,
cudaEventRecord, https://docs.nvidia.com/cuda/cuda-runtime-api/group__CUDART__EVENT.html), so not before the host
recorded it either; cudaEventElapsedTime gives milliseconds between two. Host time moves when the host waits for a
batch or spends time launching; the GPU's time moves with the work queued on it.
"""

import pytest
import torch

from dlbench.train import input_wait


class SimulatedEvent:
    def __init__(self, completes_at: float):
        self.completes_at = completes_at

    def elapsed_time(self, end: "SimulatedEvent") -> float:  # milliseconds, as torch.cuda.Event.elapsed_time
        return (end.completes_at - self.completes_at) * 1000.0


class SimulatedStream:
    def __init__(self):
        self.host = 0.0  # seconds on the host's clock
        self.busy_until = 0.0  # when the GPU finishes everything queued so far

    def record(self) -> SimulatedEvent:
        return SimulatedEvent(max(self.host, self.busy_until))

    def launch_step(self, launch_seconds: float, gpu_seconds: float) -> None:
        """The host queues a step's kernels over `launch_seconds`; the GPU starts on them as soon as it is free and
        the first is queued, and cannot finish before the last one is."""
        start = max(self.busy_until, self.host)
        self.host += launch_seconds
        self.busy_until = max(start + gpu_seconds, self.host)

    def synchronize(self) -> None:
        self.host = max(self.host, self.busy_until)


def _train(loader_period: float, gpu_step: float, launch: float, steps: int = 200):
    """The runner's timed loop on the simulated stream: ask for a batch (ready every `loader_period` from a
    background loader), launch the step. Returns (GPU-idle meter, host-blocked meter, timed seconds)."""
    stream = SimulatedStream()
    device_meter = input_wait.DeviceInputWait(stream.record)
    host_meter = input_wait.HostInputWait(clock=lambda: stream.host)
    stream.synchronize()
    start = stream.host
    for step in range(1, steps + 1):
        device_meter.before()
        host_meter.before()
        stream.host = max(stream.host, step * loader_period)  # next_batch blocks until the loader has one
        device_meter.after()
        host_meter.after()
        stream.launch_step(launch, gpu_step)
    stream.synchronize()  # the window's end: every event has completed
    return device_meter, host_meter, stream.host - start


def test_input_bound_gpu_waits_what_it_idles_not_what_the_host_blocks():
    """The review's case: a batch every 100 ms, a 60 ms GPU step, 20 ms of launching. The host blocks 80 ms a step,
    the GPU idles 40 ms; compute alone is a batch per 60 ms, not a batch per 20 ms (3x too high)."""
    steps, batch = 200, 256
    device_meter, host_meter, timed = _train(0.100, 0.060, 0.020, steps)
    assert device_meter.seconds() / steps == pytest.approx(0.040, rel=0.02)
    assert host_meter.seconds() / steps == pytest.approx(0.080, rel=0.02)
    assert timed / steps == pytest.approx(0.100, rel=0.01)
    alone = input_wait.compute_alone(steps * batch, timed, device_meter.seconds())
    assert alone == pytest.approx(batch / 0.060, rel=0.02)
    assert input_wait.compute_alone(steps * batch, timed, host_meter.seconds()) == pytest.approx(
        batch / 0.020, rel=0.05
    )  # what the host's figure made of it


def test_gpu_bound_run_never_waits_for_input_though_the_host_does():
    """A batch every 50 ms, a 60 ms GPU step: the host still blocks 30 ms a step in next_batch, but the GPU always
    has queued work, so it never waits; compute alone equals the throughput."""
    steps = 200
    device_meter, host_meter, timed = _train(0.050, 0.060, 0.020, steps)
    assert device_meter.seconds() <= 0.050 + 1e-9  # the first step only: nothing was queued before it
    assert host_meter.seconds() / steps == pytest.approx(0.030, rel=0.05)
    assert input_wait.compute_alone(steps, timed, device_meter.seconds()) == pytest.approx(steps / timed, rel=0.01)


def test_synthetic_data_waits_for_nothing():
    device_meter, host_meter, _ = _train(0.0, 0.060, 0.020, 50)
    assert device_meter.seconds() == 0.0 and host_meter.seconds() == 0.0


def test_reset_drops_the_warm_up():
    stream = SimulatedStream()
    meter = input_wait.DeviceInputWait(stream.record)
    meter.before()
    stream.host = 5.0
    meter.after()
    assert meter.seconds() == pytest.approx(5.0)
    meter.reset()
    assert meter.seconds() == 0.0


def test_a_cpu_run_measures_on_the_host_and_a_gpu_run_with_events():
    assert isinstance(input_wait.meter_for(torch.device("cpu")), input_wait.HostInputWait)
    assert input_wait.meter_for(torch.device("cpu")).measures == "host"
    assert input_wait.DeviceInputWait.measures == "device"
    assert input_wait.meter_for(torch.device("cuda", 0), synthetic=True).measures == "host"  # no loader, no events
    assert input_wait.compute_alone(10, 1.0, 1.0) is None  # nothing but waiting: no compute rate to give


def test_the_summary_says_whose_wait_it_shows():
    from rich.console import Console

    from dlbench.train.report import summary_table

    def shown(measured_on: str) -> str:
        result = {
            "workload": {"name": "resnet50", "sample_unit": "images"},
            "status": "completed",
            "config": {"device": "cuda:0"},
            "metrics": {
                "input_wait_share": 0.4,
                "input_wait_measured_on": measured_on,
                "throughput": {"samples_per_second": 100.0, "compute_samples_per_second": 166.7},
            },
        }
        console = Console(record=True, width=200)
        console.print(summary_table(result))
        return console.export_text()

    assert "GPU idle waiting for input" in shown("device") and "compute alone: 166.7/s" in shown("device")
    assert "GPU idle" not in shown("host") and "waiting for input" in shown("host")


def test_on_cuda_the_events_go_on_the_runs_stream(monkeypatch):
    """The hand-off events must sit on the stream the step's work is queued on (the run's GPU, whichever is current),
    or they would time another queue."""

    class RecordedEvent:
        def __init__(self, enable_timing=False):
            assert enable_timing, "idle time needs timing-enabled events"

        def record(self, stream=None):
            self.stream = stream

    monkeypatch.setattr(torch.cuda, "Event", RecordedEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    meter = input_wait.meter_for(torch.device("cuda", 1))
    assert meter.measures == "device"
    meter.before()
    meter.after()
    assert [event.stream for event in meter._pairs[0]] == ["stream of cuda:1"] * 2
