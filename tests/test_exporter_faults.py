"""Faults an operator meets, injected into a running `dlbench exporter` and observed through real scrapes.

Faked: NVML only (there is no GPU here). The exporter is a real process (or, where a test must shorten a timer, a
real in-process Exporter with its real HTTP server) reading the simulated NVML from a scenario file that the test
rewrites while it runs; see dlbench/nvml/simulated.py for what each fault reproduces and its source.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from prometheus_server import free_port, http_get, wait_for

pytestmark = pytest.mark.integration


def write_scenario(path, scenario):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(scenario))
    os.replace(tmp, path)  # the exporter must never read half a file


def metrics(url):
    status, body = http_get(f"{url}/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k in ("gpu", "call")))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(parsed, name, **labels):
    return parsed.get((name, tuple(sorted(labels.items()))))


def health(url):
    status, body = http_get(f"{url}/health")
    return status, json.loads(body)


@pytest.fixture
def running_exporter(tmp_path):
    processes = []

    def start(scenario, interval="0.5"):
        path = tmp_path / "scenario.json"
        write_scenario(path, scenario)
        port = free_port()
        env = {**os.environ, "DLBENCH_FAKE_NVML": str(path)}
        process = subprocess.Popen(
            [sys.executable, "-m", "dlbench", "exporter", "--port", str(port), "--interval", interval],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(f"{url}/health")[0] in (200, 503), 30, "exporter to answer")
        return url, path

    yield start
    for process in processes:
        process.terminate()
        _, err = process.communicate(timeout=10)
        assert "Traceback" not in err, err


def test_driver_loaded_after_the_exporter_started_is_picked_up(running_exporter):
    url, scenario = running_exporter({"init_error": "DRIVER_NOT_LOADED", "gpus": [{"preset": "h100-sxm"}] * 2})
    status, body = health(url)
    assert status == 503 and body["status"] == "nvml_down" and "Driver Not Loaded" in body["nvml_problem"]
    # /live, for Kubernetes' probes: the process works and retries NVML by itself; a restart would not help and an
    # unready pod would stall the DaemonSet's rolling updates
    status, body = http_get(f"{url}/live")
    assert status == 200 and json.loads(body) == {
        "status": "ok",
        "nvml_up": False,
        "last_sample_age_seconds": json.loads(body)["last_sample_age_seconds"],
    }
    parsed = metrics(url)
    assert value(parsed, "dlbench_exporter_nvml_up") == 0
    assert not [name for name, _ in parsed if name.startswith("dlbench_gpu_")]
    write_scenario(scenario, {"gpus": [{"preset": "h100-sxm"}] * 2})  # modprobe nvidia
    # retried with backoff (1 s, 2 s, 4 s ...): it must come up by itself
    wait_for(lambda: health(url)[0] == 200, 40, "/health to recover once NVML initialises")
    # /metrics serves the sample rendered after the one in which NVML came up
    parsed = wait_for(
        lambda: (lambda p: p if value(p, "dlbench_exporter_nvml_up") == 1 else None)(metrics(url)),
        10,
        "the GPUs on /metrics",
    )
    assert value(parsed, "dlbench_exporter_nvml_up") == 1 and value(parsed, "dlbench_exporter_gpus") == 2
    assert value(parsed, "dlbench_gpu_up", gpu="1") == 1 and value(parsed, "dlbench_gpu_power_watts", gpu="1") == 70


def test_driver_unloaded_while_running_turns_health_red_and_comes_back(running_exporter):
    url, scenario = running_exporter({"gpus": [{"preset": "a100"}]})
    wait_for(lambda: health(url)[0] == 200, 10, "healthy exporter")
    write_scenario(
        scenario,
        {
            "init_error": "DRIVER_NOT_LOADED",
            "gpus": [{"preset": "a100", "faults": {"nvmlDeviceGetUtilizationRates": "UNINITIALIZED"}}],
        },
    )
    wait_for(lambda: health(url)[0] == 503, 10, "/health to fail while NVML is down")
    assert value(metrics(url), "dlbench_exporter_nvml_up") == 0
    write_scenario(scenario, {"gpus": [{"preset": "a100"}]})
    wait_for(lambda: health(url)[0] == 200, 40, "/health to recover")


def test_one_failing_query_leaves_the_gpu_up_and_is_counted(running_exporter):
    url, scenario = running_exporter({"gpus": [{"preset": "h100-sxm"}, {"preset": "a100"}]})
    write_scenario(
        scenario,
        {"gpus": [{"preset": "h100-sxm", "faults": {"nvmlDeviceGetPcieReplayCounter": "UNKNOWN"}}, {"preset": "a100"}]},
    )
    wait_for(
        lambda: (
            (value(metrics(url), "dlbench_exporter_nvml_errors_total", call="nvmlDeviceGetPcieReplayCounter") or 0) >= 2
        ),
        10,
        "the failing call to be counted",
    )
    parsed = metrics(url)
    assert value(parsed, "dlbench_gpu_up", gpu="0") == 1
    assert value(parsed, "dlbench_gpu_pcie_replay_errors_total", gpu="0") is None  # that series only is dropped
    assert value(parsed, "dlbench_gpu_pcie_replay_errors_total", gpu="1") == 0
    assert value(parsed, "dlbench_gpu_temperature_celsius", gpu="0") == 35
    assert 0 < value(parsed, "dlbench_gpu_query_error_ratio", gpu="0") < 0.2  # one query of many
    assert value(parsed, "dlbench_gpu_query_error_ratio", gpu="1") == 0
    assert health(url)[0] == 200


def test_a_gpu_failing_every_query_is_down_and_shown_unreadable(running_exporter):
    """UNKNOWN (or TIMEOUT, NO_PERMISSION) from every call: NVML does not call the GPU lost, but it gives no data, so
    it must not look healthy (up 1 with only its static series left)."""
    url, scenario = running_exporter({"gpus": [{"preset": "h100-sxm"}, {"preset": "a100"}]})
    wait_for(lambda: value(metrics(url), "dlbench_gpu_up", gpu="0") == 1, 10, "GPU 0 up")
    write_scenario(scenario, {"gpus": [{"preset": "h100-sxm", "faults": {"*": "UNKNOWN"}}, {"preset": "a100"}]})
    parsed = wait_for(
        lambda: (lambda p: p if value(p, "dlbench_gpu_up", gpu="0") == 0 else None)(metrics(url)),
        10,
        "GPU 0 to be reported down",
    )
    assert value(parsed, "dlbench_gpu_query_error_ratio", gpu="0") == 1
    assert value(parsed, "dlbench_gpu_read_late", gpu="0") == 0  # not a hang: it answers, with errors
    assert (
        value(parsed, "dlbench_gpu_up", gpu="1") == 1 and value(parsed, "dlbench_gpu_query_error_ratio", gpu="1") == 0
    )
    status, body = health(url)
    assert status == 200 and body["gpus_unreadable"] == 1 and body["gpus_up"] == 1
    write_scenario(scenario, {"gpus": [{"preset": "h100-sxm"}, {"preset": "a100"}]})
    wait_for(lambda: value(metrics(url), "dlbench_gpu_up", gpu="0") == 1, 10, "GPU 0 up again")
    assert health(url)[1]["gpus_unreadable"] == 0


def test_a_permanent_minor_error_does_not_make_the_exporter_stale(running_exporter):
    url, _ = running_exporter(
        {"gpus": [{"preset": "h100-sxm", "faults": {"nvmlDeviceGetTotalEnergyConsumption": "NO_PERMISSION"}}]}
    )
    first = value(metrics(url), "dlbench_exporter_last_sample_timestamp_seconds")
    time.sleep(1.2)
    parsed = metrics(url)
    assert value(parsed, "dlbench_exporter_last_sample_timestamp_seconds") > first  # the sample is fresh
    assert value(parsed, "dlbench_gpu_up", gpu="0") == 1
    assert value(parsed, "dlbench_gpu_energy_joules_total", gpu="0") is None
    assert value(parsed, "dlbench_exporter_nvml_errors_total", call="nvmlDeviceGetTotalEnergyConsumption") >= 2


def test_a_hung_gpu_is_marked_late_within_an_interval_and_the_others_stay_fresh(running_exporter):
    gpus = [{"preset": "h100-sxm", "values": {"power_mw": 100_000}}, {"preset": "h100-sxm"}]
    url, scenario = running_exporter({"gpus": gpus}, interval="1")
    wait_for(lambda: health(url)[0] == 200, 10, "healthy exporter")
    write_scenario(
        scenario,
        {
            "gpus": [
                {"preset": "h100-sxm", "values": {"power_mw": 100_000}},
                {"preset": "h100-sxm", "faults": {"nvmlDeviceGetPowerUsage": "HANG"}},
            ]
        },
    )
    hung_at = time.monotonic()
    wait_for(lambda: value(metrics(url), "dlbench_gpu_read_late", gpu="1") == 1, 10, "GPU 1 to be marked late")
    # next sample after the hang (<= 1 interval) plus that sample's deadline (0.8 interval), plus the poll step
    assert time.monotonic() - hung_at < 2 * 1.0 + 0.5
    parsed = metrics(url)
    assert value(parsed, "dlbench_gpu_up", gpu="1") == 0
    assert value(parsed, "dlbench_gpu_power_watts", gpu="1") is None  # no frozen sample served as current
    # GPU 0 keeps being read: a change of its power shows while GPU 1 hangs
    write_scenario(
        scenario,
        {
            "gpus": [
                {"preset": "h100-sxm", "values": {"power_mw": 222_000}},
                {"preset": "h100-sxm", "faults": {"nvmlDeviceGetPowerUsage": "HANG"}},
            ]
        },
    )
    wait_for(lambda: value(metrics(url), "dlbench_gpu_power_watts", gpu="0") == 222, 10, "GPU 0 to stay fresh")
    parsed = metrics(url)
    assert value(parsed, "dlbench_gpu_read_late", gpu="0") == 0
    assert time.time() - value(parsed, "dlbench_exporter_last_sample_timestamp_seconds") < 3
    assert health(url)[1]["gpus_late"] == 1
    write_scenario(scenario, {"gpus": gpus})  # the call returns
    wait_for(lambda: value(metrics(url), "dlbench_gpu_up", gpu="1") == 1, 10, "GPU 1 to come back")


def test_power_limit_and_unsupported_calls_follow_the_gpu(monkeypatch):
    from dlbench.nvml import calls, simulated
    from dlbench.exporter.server import Exporter

    monkeypatch.setattr(calls, "UNSUPPORTED_RETRY_SECONDS", 1.0)
    fake = simulated.from_spec("h100-sxm")
    fake.gpus[0].faults = {"nvmlDeviceGetTotalEccErrors": "NOT_SUPPORTED"}  # MIG being enabled, say
    exporter = Exporter("127.0.0.1", 0, interval=0.2, nvml=fake).start()
    url = f"http://127.0.0.1:{exporter.server.port}"
    try:
        parsed = metrics(url)
        assert value(parsed, "dlbench_gpu_power_limit_watts", gpu="0") == 700
        assert not [n for n, _ in parsed if n.startswith("dlbench_gpu_ecc_errors")]
        fake.gpus[0].values["power_limit_mw"] = 450_000  # nvidia-smi -pl 450
        fake.gpus[0].faults = {}
        wait_for(lambda: value(metrics(url), "dlbench_gpu_power_limit_watts", gpu="0") == 450, 5, "the new limit")
        wait_for(
            lambda: [n for n, _ in metrics(url) if n.startswith("dlbench_gpu_ecc_errors")],
            5,
            "ECC counters once supported again",
        )
    finally:
        exporter.close()


def test_exporter_reports_its_own_restarts_and_the_hostname_it_is_given(tmp_path):
    port = free_port()
    env = {**os.environ, "DLBENCH_FAKE_NVML": "a100", "NODE_NAME": "gpu-node-7"}
    process = subprocess.Popen(
        [sys.executable, "-m", "dlbench", "exporter", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_get(f"{url}/health")[0] == 200, 30, "exporter")
        text = http_get(f"{url}/metrics")[1].decode()
        assert 'dlbench_gpu_up{gpu="0",hostname="gpu-node-7"' in text
        start = next(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "process_start_time_seconds"
        )
        assert abs(start - time.time()) < 60
    finally:
        process.terminate()
        process.communicate(timeout=10)
    process = subprocess.Popen(
        [sys.executable, "-m", "dlbench", "exporter", "--port", str(port), "--hostname", "override"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: http_get(f"{url}/health")[0] == 200, 30, "exporter")
        with urllib.request.urlopen(f"{url}/metrics") as response:
            assert 'hostname="override"' in response.read().decode()
    finally:
        process.terminate()
        process.communicate(timeout=10)
