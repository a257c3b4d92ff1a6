"""The run keeps its GPU readings over the timed window as a time series in the result (for `dlbench report`).

Faked: NVML only (dlbench.nvml.simulated's simulated H100; no GPU here).
"""

import time
from types import SimpleNamespace

from dlbench.nvml import simulated
from dlbench.telemetry import series
from dlbench.telemetry.observers import TelemetryObserver
from dlbench.train.observers import RunInfo

GPU_RUN = RunInfo(
    run_id="r1",
    workload="resnet50",
    device="cuda:0",
    gpu_index=0,
    batch_size=64,
    sample_unit="images",
    flops_per_sample=12.3e9,
    peak_flops=989.4e12,
)


def test_timed_window_keeps_the_gpu_series_in_order_with_the_scripted_readings():
    fake = simulated.from_spec("h100-sxm")
    telemetry = TelemetryObserver(interval=0.02, nvml=fake)
    fake.gpus[0].values.update(power_mw=300_000, temperature=40, sm_mhz=1980)
    try:
        telemetry.on_start(GPU_RUN)
        time.sleep(0.1)  # samples before the window must not be in the series
        started = time.monotonic()
        telemetry.on_timed_start()
        for step in range(5):
            fake.gpus[0].values.update(
                power_mw=300_000 + 100_000 * step, temperature=40 + 5 * step, sm_mhz=1980 if step < 3 else 1500
            )
            time.sleep(0.06)
        telemetry.on_timed_end(0.3, 320)
        window = time.monotonic() - started  # 0.3 s asked; a loaded machine stretches the sleeps
        time.sleep(0.1)  # nor samples after it
    finally:
        telemetry.close()
    kept = telemetry.contribute()["series"]
    times = kept["t_seconds"]
    assert len(times) >= 6 and times == sorted(times) and times[0] < 0.05
    assert times[-1] <= window + 0.0005  # the series keeps milliseconds, rounded: 0.3048 s is 0.305
    assert set(kept) == {
        "t_seconds",
        "gpu_utilization_ratio",
        "power_watts",
        "sm_clock_hertz",
        "temperature_celsius",
        "memory_used_bytes",
    }
    assert all(len(values) == len(times) for values in kept.values())
    assert kept["power_watts"][0] == 300 and kept["power_watts"][-1] == 700
    assert kept["temperature_celsius"][-1] == 60 and 1500e6 in kept["sm_clock_hertz"]


def test_a_cpu_run_keeps_no_gpu_series():
    telemetry = TelemetryObserver(interval=0.02, nvml=simulated.from_spec("h100-sxm"))
    cpu_run = RunInfo(**{**GPU_RUN.__dict__, "device": "cpu", "gpu_index": None})
    try:
        telemetry.on_start(cpu_run)
        telemetry.on_timed_start()
        telemetry.on_timed_end(0.1, 64)
    finally:
        telemetry.close()
    assert "series" not in telemetry.contribute()


def test_a_long_run_is_thinned_to_at_most_max_points():
    recorder = series.SeriesRecorder(0, start_monotonic=100.0)
    for i in range(3 * series.MAX_POINTS + 7):
        reading = {
            "up": True,
            "utilization_ratio": 1.0,
            "power_watts": float(i),
            "sm_clock_hertz": 1.98e9,
            "temperature_celsius": 60.0,
            "memory_used_bytes": 1,
        }
        recorder(SimpleNamespace(monotonic=100.0 + i * 0.5, gpus={0: reading}))
    recorder(SimpleNamespace(monotonic=200.0, gpus={0: {"up": False}}))  # a GPU that did not answer: no point
    kept = recorder.series()
    assert len(kept["t_seconds"]) <= series.MAX_POINTS
    assert kept["t_seconds"][0] == 0.0 and kept["power_watts"][-1] > 3 * series.MAX_POINTS - 10  # spans the run
