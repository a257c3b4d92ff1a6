"""A real Prometheus scrapes a running `dlbench exporter` and a live training run; we ask its HTTP API.

Faked: NVML only — the exporter subprocess runs with DLBENCH_FAKE_NVML pointing at a scenario file (no GPU here),
which the test rewrites to inject faults and lose a GPU while the exporter runs. Prometheus, the exporter process,
HTTP, prometheus_client and the torch training loop are real.
"""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from prometheus_server import Prometheus, free_port, http_get, wait_for

pytestmark = pytest.mark.integration


def write_scenario(path, gpus):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"gpus": gpus}))
    os.replace(tmp, path)  # the exporter must never read half a file


@pytest.fixture
def exporter(tmp_path):
    scenario = tmp_path / "scenario.json"
    write_scenario(
        scenario,
        [
            {"preset": "h100-sxm", "values": {"utilization_gpu": 93, "power_mw": 650_000, "sm_mhz": 1980}},
            {"preset": "rtx4090", "values": {"utilization_gpu": 40}},
            {"preset": "a100"},
        ],
    )
    port = free_port()
    env = {**os.environ, "DLBENCH_FAKE_NVML": str(scenario), "DLBENCH_EXPORTER_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "dlbench", "exporter", "--interval", "0.2", "--dcgm-compat"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_get(f"{url}/health")[0] == 200, 30, "exporter /health")
        yield process, url, port, scenario
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_prometheus_scrapes_the_exporter_and_a_lost_gpu_leaves_it_serving(exporter, tmp_path):
    process, url, port, scenario = exporter
    prometheus = Prometheus(tmp_path, {"dlbench": f"127.0.0.1:{port}"})
    try:
        info = prometheus.wait_for_series("dlbench_gpu_info", predicate=lambda r: len(r) == 3)
        by_gpu = {s["metric"]["gpu"]: s["metric"] for s in info}
        assert by_gpu["0"]["name"] == "NVIDIA H100 80GB HBM3" and by_gpu["1"]["name"] == "NVIDIA GeForce RTX 4090"
        for labels in by_gpu.values():
            assert {"uuid", "pci_bus_id", "hostname", "driver_version", "cuda_driver_version"} <= set(labels)
            assert labels["job"] == "dlbench"
        utilization = {
            s["metric"]["gpu"]: float(s["value"][1]) for s in prometheus.query("dlbench_gpu_utilization_ratio")
        }
        assert utilization == {"0": 0.93, "1": 0.40, "2": 0.0}
        # the consumer card has no HBM sensor: absent, not zero
        assert {s["metric"]["gpu"] for s in prometheus.query("dlbench_gpu_memory_temperature_celsius")} == {"0", "2"}
        watts = prometheus.query('dlbench_gpu_power_watts{gpu="0"}')
        assert float(watts[0]["value"][1]) == 650.0
        # the energy counter grows between scrapes (650 W for the first GPU)
        rate = prometheus.wait_for_series('irate(dlbench_gpu_energy_joules_total{gpu="0"}[3s])')  # last two scrapes
        assert 400 < float(rate[0]["value"][1]) < 900
        assert prometheus.query('DCGM_FI_DEV_GPU_UTIL{gpu="0"}')[0]["metric"]["modelName"] == "NVIDIA H100 80GB HBM3"
        assert float(prometheus.query("dlbench_exporter_nvml_up")[0]["value"][1]) == 1
        # --dcgm-compat's DCGM counters reach Prometheus typed counter, as dcgm-exporter's default-counters.csv has them
        # (the text format: OpenMetrics would need _total), and rate() works on them
        _, body = http_get(f"{prometheus.url}/api/v1/metadata?metric=DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION")
        assert json.loads(body)["data"]["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"][0]["type"] == "counter"
        _, body = http_get(f"{prometheus.url}/api/v1/metadata?metric=DCGM_FI_DEV_GPU_UTIL")
        assert json.loads(body)["data"]["DCGM_FI_DEV_GPU_UTIL"][0]["type"] == "gauge"
        rate = prometheus.wait_for_series('irate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu="0"}[3s])')  # mJ/s
        assert 400_000 < float(rate[0]["value"][1]) < 900_000

        # faults while running: a failing call on GPU 0, then GPU 1 falls off the bus with XID 79
        write_scenario(
            scenario,
            [
                {
                    "preset": "h100-sxm",
                    "values": {"utilization_gpu": 93, "power_mw": 650_000},
                    "faults": {"nvmlDeviceGetTemperature": "TIMEOUT"},
                },
                {"preset": "rtx4090", "lost": True, "xid": [79]},
                {"preset": "a100"},
            ],
        )
        down = prometheus.wait_for_series('dlbench_gpu_up{gpu="1"} == 0')
        assert down[0]["metric"]["uuid"] == by_gpu["1"]["uuid"]
        prometheus.wait_for_series('dlbench_gpu_xid_errors_total{gpu="1",xid="79",xid_class="critical"} == 1')
        prometheus.wait_for_series(
            'DCGM_FI_DEV_XID_ERRORS{gpu="1",err_code="79",err_msg="GPU has fallen off the bus"} == 79'
        )
        prometheus.wait_for_series('dlbench_exporter_nvml_errors_total{call="nvmlDeviceGetTemperature"} > 0')
        prometheus.wait_for_series('dlbench_gpu_up{gpu="1"} == 0 and on() absent(dlbench_gpu_power_watts{gpu="1"})')
        assert float(prometheus.query('dlbench_gpu_up{gpu="2"}')[0]["value"][1]) == 1
        assert float(prometheus.query('up{job="dlbench"}')[0]["value"][1]) == 1
        assert prometheus.targets_health() == {"dlbench": "up"}
        status, body = http_get(f"{url}/health")
        assert status == 200 and json.loads(body)["gpus_up"] == 2
        assert process.poll() is None
    finally:
        prometheus.close()


def test_scrapes_never_take_the_exporter_down(exporter):
    process, url, _, scenario = exporter
    errors = []

    def hammer():
        for _ in range(40):
            status, body = http_get(f"{url}/metrics")
            if status != 200 or b"dlbench_gpu_up" not in body:
                errors.append(status)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    # GPUs disappear and return while the scrapes run
    for lost in (True, False, True):
        write_scenario(
            scenario, [{"preset": "h100-sxm", "lost": lost}, {"preset": "rtx4090", "lost": lost}, {"preset": "a100"}]
        )
        time.sleep(0.3)
    for thread in threads:
        thread.join()
    assert errors == []
    assert http_get(f"{url}/nope")[0] == 404
    assert process.poll() is None


def test_live_training_run_is_scraped_with_run_labels(tmp_path):
    import torch

    from dlbench.telemetry.observers import LiveMetricsObserver, TelemetryObserver
    from dlbench.train.observers import RunInfo

    port = free_port()
    telemetry = TelemetryObserver(interval=0.2)
    live = LiveMetricsObserver(port, telemetry=telemetry, precision="fp32", loss_read_interval=0.1)
    info = RunInfo(
        run_id="run-live-1",
        workload="mnist-mlp",
        device="cpu",
        gpu_index=None,
        batch_size=32,
        sample_unit="images",
        flops_per_sample=None,
        peak_flops=None,
    )
    prometheus = Prometheus(tmp_path, {"dlbench_run": f"127.0.0.1:{port}"})
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    inputs, labels = torch.randn(32, 784), torch.randint(0, 10, (32,))
    observers = [telemetry, live]
    try:
        for o in observers:
            o.on_start(info)
        for o in observers:
            o.on_timed_start()
        step, started = 0, time.perf_counter()

        def scraped() -> bool:  # what the assertions below read has reached Prometheus
            return bool(
                prometheus.query('dlbench_train_steps_total{run_id="run-live-1"} > 100')
                and prometheus.query('dlbench_train_step_seconds_count{run_id="run-live-1"} > 100')
                and prometheus.query('dlbench_host_cpu_utilization_ratio{job="dlbench_run"}')
            )

        # Train until Prometheus has scraped more than 100 steps. The bound only keeps a broken run from waiting
        # forever: on a loaded 2-core machine 100 steps and their scrape took more than 20 s.
        deadline = time.monotonic() + 300
        while not (step >= 100 and step % 10 == 0 and scraped()):
            assert time.monotonic() < deadline, f"Prometheus did not see 100 of the {step} steps within 300 s"
            t0 = time.perf_counter()
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(inputs), labels)
            loss.backward()
            optimizer.step()
            step += 1
            for o in observers:
                o.on_step(step, time.perf_counter() - t0, 32, loss)
            time.sleep(0.005)
        for o in observers:
            o.on_timed_end(time.perf_counter() - started, step * 32)
        steps = prometheus.query('dlbench_train_steps_total{run_id="run-live-1",workload="mnist-mlp"}')
        assert steps and float(steps[0]["value"][1]) > 100
        assert steps[0]["metric"]["hostname"]
        rate = prometheus.query('dlbench_train_samples_per_second{workload="mnist-mlp"}')
        assert float(rate[0]["value"][1]) > 0
        histogram = prometheus.query('dlbench_train_step_seconds_count{run_id="run-live-1"}')
        assert float(histogram[0]["value"][1]) > 100
        assert prometheus.query('dlbench_train_step_seconds_bucket{le="+Inf",run_id="run-live-1"}')
        loss = float(prometheus.query('dlbench_train_loss{run_id="run-live-1"}')[0]["value"][1])
        assert 0 < loss < 10
        meta = prometheus.query("dlbench_train_info")[0]["metric"]
        assert (meta["device"], meta["precision"], meta["batch_size"]) == ("cpu", "fp32", "32")
        assert prometheus.query("dlbench_train_mfu_ratio") == []  # CPU: no peak, so no MFU
        assert prometheus.query('dlbench_host_cpu_utilization_ratio{job="dlbench_run"}')  # the run's host readings
        summary = telemetry.contribute()
        assert summary["gpu"] is None and summary["samples"] >= 2
        assert summary["host"]["cpu_utilization_mean_ratio"] is not None
    finally:
        for o in observers:
            o.close()
        prometheus.close()
