"""`dlbench exporter` as an operator meets it: a real process, real NVML binding (absent here), one-line errors."""

import os
import socket
import subprocess
import sys

import pytest

from prometheus_server import free_port, http_get, wait_for


def start_exporter(*args, env=None):
    environment = {k: v for k, v in os.environ.items() if k != "DLBENCH_FAKE_NVML"}
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "dlbench", "exporter", *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_without_nvml_the_exporter_serves_host_metrics_and_says_nvml_is_down():
    # the real nvidia-ml-py, on a machine with no NVIDIA driver: the degraded mode users get on CPU hosts
    port = free_port()
    process = start_exporter(env={"DLBENCH_EXPORTER_PORT": str(port), "DLBENCH_EXPORTER_INTERVAL": "0.2"})
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(f"{url}/health")[0] == 503, 30, "exporter")  # a GPU exporter without NVML
        _, body = http_get(f"{url}/metrics")
        text = body.decode()
        assert 'dlbench_exporter_nvml_up{hostname="' in text and "} 0.0" in text.split("dlbench_exporter_nvml_up{")[1]
        assert "dlbench_host_memory_total_bytes{" in text and "\ndlbench_gpu_" not in text
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0 and "host metrics only" in err and "Traceback" not in err


def test_port_in_use_is_one_line_and_nonzero():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_exporter("--port", str(port))
        _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.strip() == f"dlbench: error: cannot listen on 127.0.0.1:{port}: address already in use"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port", "99999"], "port must be 1-65535"),
        (["--port", "http"], "port must be a number"),
        (["--interval", "0"], "interval must be 0.05-3600 seconds"),
        (["--listen", "no-such-host.invalid", "--port", "1"], "not a valid address"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message):
    process = start_exporter(*args)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2 and message in err and "Traceback" not in err


def test_environment_variables_are_validated_like_flags():
    process = start_exporter(env={"DLBENCH_EXPORTER_PORT": "0x"})
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2 and "port must be a number" in err


def test_nvlink_per_link_flag_adds_per_link_series_to_the_real_process():
    # FAKED: NVML only, through the exporter's DLBENCH_FAKE_NVML hook (an H100 SXM with 18 NVLink links)
    port = free_port()
    process = start_exporter(
        "--port", str(port), "--interval", "0.2", "--nvlink-per-link", env={"DLBENCH_FAKE_NVML": "h100-sxm"}
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: b"dlbench_gpu_nvlink_link_state{" in http_get(f"{url}/metrics")[1], 30, "per-link series")
        text = http_get(f"{url}/metrics")[1].decode()
        assert text.count("dlbench_gpu_nvlink_link_state{") == 18 and "dlbench_gpu_nvlink_links_active{" in text
    finally:
        process.terminate()
        process.communicate(timeout=10)
