"""Run observers driven through the RunObserver methods as the runner calls them.

Faked: NVML only (simulated GPU; no GPU here). The Pushgateway is Debian's real prometheus-pushgateway.
"""

import argparse
import shutil
import subprocess
import time

import pytest

from dlbench.errors import UserError
from dlbench.nvml import simulated
from dlbench.nvml.reader import NvmlReader
from dlbench.telemetry.observers import PushgatewayObserver, TelemetryObserver
from dlbench.commands.run_options import add_run_arguments, observers_from_args
from dlbench.train.observers import RunInfo
from prometheus_server import free_port, http_get, wait_for

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


def drive(observers, fake, steps=6, step_seconds=0.05, script=None):
    for o in observers:
        o.on_start(GPU_RUN)
    for o in observers:
        o.on_timed_start()
    for step in range(steps):
        if script:
            script(step, fake)
        time.sleep(step_seconds)
        for o in observers:
            o.on_step(step, step_seconds, 64, 2.5 - step * 0.1)
    for o in observers:
        o.on_timed_end(steps * step_seconds, steps * 64)


def test_summary_measures_energy_from_the_counter_over_exactly_the_window(monkeypatch):
    fake = simulated.from_spec("h100-sxm")
    telemetry = TelemetryObserver(interval=0.02, nvml=fake)

    def script(step, fake):
        gpu = fake.gpus[0]
        gpu.values.update(
            utilization_gpu=100 if step % 2 else 60,
            power_mw=500_000,
            temperature=60 + step,
            sm_mhz=1980 if step < 3 else 1500,
            clocks_event_reasons=0x4 if step >= 3 else 0,
        )
        if step == 0:
            gpu.energy_mj += 1_000_000  # 1000 J "used" by the counter before our reads must not be counted
            gpu.energy_clock = time.monotonic()

    # the counter as the run reads it (the sampler's own reads aside), in order: the window's energy is the
    # difference of the readings at its start and end (compared with those readings, not with the counter before and
    # after drive(): on a loaded machine the simulated counter keeps rising at 500 W between those and the run's reads)
    readings, read = [], NvmlReader.read_energy_joules
    monkeypatch.setattr(
        NvmlReader, "read_energy_joules", lambda self, i: readings.append(read(self, i)) or readings[-1]
    )
    try:
        # the state at the window's start (its first sample)
        fake.gpus[0].values.update(power_mw=500_000, utilization_gpu=60, sm_mhz=1980, clocks_event_reasons=0)
        drive([telemetry], fake, script=script)
    finally:
        telemetry.close()
    summary = telemetry.contribute()
    gpu = summary["gpu"]
    assert gpu["name"] == "NVIDIA H100 80GB HBM3"
    # read once at on_timed_start and once at on_timed_end; the difference includes the 1000 J jump inside the window
    assert len(readings) == 2
    assert gpu["energy_joules"] == pytest.approx(readings[1] - readings[0], abs=0.001)
    assert gpu["energy_joules"] > 1000
    assert gpu["energy_per_sample_joules"] == pytest.approx(gpu["energy_joules"] / (6 * 64), rel=1e-3)
    assert "TotalEnergyConsumption" in gpu["energy_source"]
    assert gpu["utilization_max_ratio"] == 1.0 and 0.6 <= gpu["utilization_mean_ratio"] < 1.0
    # mean power is energy over the window's time (it sees the 1000 J the sampled readings miss)
    window_seconds = telemetry._energy_end_at - telemetry._energy_start_at
    assert gpu["power_mean_watts"] == pytest.approx(gpu["energy_joules"] / window_seconds, rel=1e-3)
    assert gpu["power_mean_source"] == "energy counter"
    assert gpu["power_sampled_mean_watts"] == pytest.approx(500, rel=0.2)
    assert gpu["sample_counts"]["power_watts"] == summary["samples"] >= 3
    assert gpu["temperature_max_celsius"] == 65
    assert gpu["sm_clock_min_hertz"] == 1500e6 and 1500e6 < gpu["sm_clock_mean_hertz"] < 1980e6
    assert gpu["sm_clock_max_hertz"] == 1980e6 and gpu["power_limit_watts"] == 700
    assert 0.2 < gpu["clocks_event_fraction"]["sw_power_cap"] < 0.9
    assert gpu["clocks_event_fraction"]["hw_thermal_slowdown"] == 0
    assert any("sw_power_cap" in note for note in summary["explanations"])
    assert summary["host"]["memory_total_bytes"] > 0
    assert summary["samples"] >= 3


def test_summary_survives_a_gpu_lost_in_the_window():
    fake = simulated.from_spec("a100")
    telemetry = TelemetryObserver(interval=0.02, nvml=fake)
    try:
        drive([telemetry], fake, script=lambda step, f: setattr(f.gpus[0], "lost", step >= 3))
    finally:
        telemetry.close()
    gpu = telemetry.contribute()["gpu"]
    assert gpu["down_samples"] >= 1 and gpu["energy_joules"] is None
    assert any("stopped answering" in note for note in telemetry.contribute()["explanations"])


def test_cpu_run_has_host_summary_and_no_gpu():
    telemetry = TelemetryObserver(interval=0.02)
    info = RunInfo("r2", "mnist-mlp", "cpu", None, 128, "images", None, None)
    try:
        telemetry.on_start(info)
        telemetry.on_timed_start()
        time.sleep(0.1)
        telemetry.on_timed_end(0.1, 1280)
    finally:
        telemetry.close()
    summary = telemetry.contribute()
    assert summary["gpu"] is None and summary["host"]["cpu_utilization_mean_ratio"] is not None
    assert not telemetry.sampler.alive


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    return parser.parse_args(argv)


def test_run_arguments_build_the_observers_and_reject_bad_input():
    kinds = [type(o).__name__ for o in observers_from_args(parse())]
    assert kinds == ["TelemetryObserver"]
    assert observers_from_args(parse("--no-telemetry")) == []
    port = free_port()
    observers = observers_from_args(parse("--metrics-port", str(port), "--pushgateway", "http://pg:9091"))
    try:
        assert [type(o).__name__ for o in observers] == [
            "TelemetryObserver",
            "LiveMetricsObserver",
            "PushgatewayObserver",
        ]
        with pytest.raises(UserError, match="address already in use"):
            observers_from_args(parse("--metrics-port", str(port)))  # taken: fails before the run starts
    finally:
        for o in observers:
            o.close()
    with pytest.raises(UserError, match="http"):
        observers_from_args(parse("--pushgateway", "ftp://pg:9091"))
    with pytest.raises(SystemExit):
        parse("--metrics-port", "70000")


def _pushed_values(text: str, *names: str) -> dict:
    """The value of each named series in a Pushgateway's exposition (one series per name here)."""
    return {
        name: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        for name in names
        if line.startswith(name + "{")
    }


@pytest.mark.integration
def test_end_of_run_summary_reaches_a_real_pushgateway(tmp_path):
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        pytest.fail("prometheus-pushgateway is not installed; run scripts/install-test-deps.sh")
    port = free_port()
    gateway = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", f"--persistence.file={tmp_path / 'pg'}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    fake = simulated.from_spec("h100-sxm")
    telemetry = TelemetryObserver(interval=0.02, nvml=fake)
    push = PushgatewayObserver(f"http://127.0.0.1:{port}", telemetry=telemetry)
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/-/ready")[0] == 200, 20, "pushgateway")
        fake.gpus[0].values.update(power_mw=400_000, utilization_gpu=90)
        drive([telemetry, push], fake)
        result = {"status": "completed", "telemetry": telemetry.contribute()}
        push.on_finish(result)
        assert push.pushed
        _, body = http_get(f"http://127.0.0.1:{port}/metrics")
        text = body.decode()
        assert "dlbench_run_info{" in text and 'status="completed"' in text and 'run_id="r1"' in text
        line = next(l for l in text.splitlines() if l.startswith("dlbench_run_samples_per_second{"))
        assert 'job="dlbench_run"' in line and 'workload="resnet50"' in line
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(64 / 0.05)
        assert "dlbench_run_energy_joules{" in text and "dlbench_run_mfu_ratio{" in text
        pushed = _pushed_values(text, "dlbench_run_job_samples_per_second", "dlbench_run_world_size")
        assert pushed == {"dlbench_run_job_samples_per_second": pytest.approx(64 / 0.05), "dlbench_run_world_size": 1}
        # rank 0 of a 2-rank job: the job's aggregate beside rank 0's own figure (the next push replaces this one)
        push.on_finish(dict(result, distributed={"world_size": 2, "aggregate": {"samples_per_second": 2500.0}}))
        text = http_get(f"http://127.0.0.1:{port}/metrics")[1].decode()
        pushed = _pushed_values(
            text, "dlbench_run_samples_per_second", "dlbench_run_job_samples_per_second", "dlbench_run_world_size"
        )
        assert pushed == {
            "dlbench_run_samples_per_second": pytest.approx(64 / 0.05),
            "dlbench_run_job_samples_per_second": 2500.0,
            "dlbench_run_world_size": 2,
        }
    finally:
        telemetry.close()
        gateway.terminate()
        gateway.wait(timeout=10)


def test_push_failure_warns_and_does_not_fail_the_run(capsys):
    push = PushgatewayObserver(f"http://127.0.0.1:{free_port()}", timeout=2)
    push.on_start(GPU_RUN)
    push.on_timed_end(1.0, 64)
    push.on_finish({"status": "failed"})
    assert not push.pushed
    assert "could not push the run summary" in capsys.readouterr().err


def test_a_busy_host_cpu_is_blamed_only_when_a_gpu_does_the_training():
    from dlbench.telemetry.observers import explain

    busy_host = {"cpu_utilization_mean_ratio": 0.97}
    assert explain({"device": "cpu", "gpu": None, "host": busy_host}) == []
    notes = explain({"device": "cuda:0", "gpu": None, "host": busy_host})
    assert len(notes) == 1 and "host CPU was 97% busy" in notes[0]
