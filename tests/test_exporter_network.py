"""The exporter's HTTP side under hostile or secured conditions: half-open connections, TLS and basic auth from a
Prometheus web-config file scraped by a real Prometheus, and what the Server header gives away.

Faked: NVML only (simulated GPUs). Certificates come from the real openssl, password hashes from bcrypt, the scraper
is Debian's Prometheus; everything listens on 127.0.0.1.
"""

import base64
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

import pytest

from prometheus_server import Prometheus, free_port, http_get, wait_for
from tls_support import self_signed_web_config

pytestmark = pytest.mark.integration


def start_exporter(*args, env=None):
    environment = {**os.environ, "DLBENCH_FAKE_NVML": "h100-sxm*2", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "dlbench", "exporter", "--interval", "0.5", *args],
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process):
    process.terminate()
    _, err = process.communicate(timeout=10)
    return err


def threads_of(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_server_header_names_no_python_version():
    port = free_port()
    process = start_exporter("--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(f"{url}/health")[0] == 200, 30, "exporter")
        with urllib.request.urlopen(f"{url}/metrics") as response:
            assert response.headers["Server"] == "dlbench"
        # an error http.server writes itself (414, request line too long) must not tell either
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n")
            answer = raw.recv(4096).decode(errors="replace")
        assert answer.startswith("HTTP/1.") and "414" in answer.splitlines()[0], answer[:200]
        assert "Server: dlbench\r\n" in answer and "Python" not in answer and "WSGIServer" not in answer
    finally:
        stop(process)


def test_half_open_connections_are_capped_and_dropped_after_the_socket_timeout():
    from dlbench.telemetry.http import MAX_CONNECTIONS, SOCKET_TIMEOUT_SECONDS

    port = free_port()
    process = start_exporter("--port", str(port))
    url = f"http://127.0.0.1:{port}"
    sockets = []
    try:
        wait_for(lambda: http_get(f"{url}/health")[0] == 200, 30, "exporter")
        baseline = threads_of(process.pid)
        for _ in range(200):  # connect, then say nothing
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        assert threads_of(process.pid) <= baseline + MAX_CONNECTIONS
        # after the timeout the server has let them all go and scrapes are answered again
        time.sleep(SOCKET_TIMEOUT_SECONDS + 0.5)
        wait_for(lambda: http_get(f"{url}/metrics")[0] == 200, 10, "a scrape after the half-open ones expire")
        assert threads_of(process.pid) <= baseline + 2
        assert process.poll() is None
    finally:
        for s in sockets:
            s.close()
        assert "Traceback" not in stop(process)


def test_a_client_trickling_its_request_is_dropped_at_the_deadline():
    """One header byte every second never trips a per-read timeout; the whole request still gets only its 5 s."""
    from dlbench.telemetry.http import SOCKET_TIMEOUT_SECONDS

    port = free_port()
    process = start_exporter("--port", str(port))
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/health")[0] == 200, 30, "exporter")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            slow.sendall(b"GET /metrics HTTP/1.1\r\n")
            started, closed = time.monotonic(), False
            while time.monotonic() - started < SOCKET_TIMEOUT_SECONDS + 4:
                try:
                    slow.sendall(b"X")
                    time.sleep(1.0)
                except OSError:  # reset or broken pipe: the server has closed it
                    closed = True
                    break
            assert closed, "a trickling client kept its connection past the request deadline"
            assert time.monotonic() - started < SOCKET_TIMEOUT_SECONDS + 3
    finally:
        assert "Traceback" not in stop(process)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    self_signed_web_config(folder, "prometheus", "scrape-secret")
    return folder


def test_a_client_trickling_its_tls_handshake_is_dropped_at_the_deadline(tls_files):
    """A real ClientHello sent one byte a second: the handshake, like the request, gets 5 s in all."""
    from dlbench.telemetry.http import SOCKET_TIMEOUT_SECONDS

    client = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO())
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()
    port = free_port()
    process = start_exporter("--port", str(port), "--web-config-file", str(tls_files / "web.yml"))
    try:
        context = ssl.create_default_context(cafile=str(tls_files / "server.crt"))
        wait_for(lambda: _tls_port_open(context, port), 30, "exporter")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as slow:
            started, closed = time.monotonic(), False
            for byte in hello[: int(SOCKET_TIMEOUT_SECONDS) + 4]:
                try:
                    slow.sendall(bytes([byte]))
                    time.sleep(1.0)
                except OSError:  # reset or broken pipe: the server has closed it
                    closed = True
                    break
            assert closed, "a trickling TLS client kept its connection past the deadline"
            assert time.monotonic() - started < SOCKET_TIMEOUT_SECONDS + 3
    finally:
        assert "Traceback" not in stop(process)


def _tls_port_open(context, port) -> bool:
    try:
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1"):
            return True
    except OSError:
        return False


def test_prometheus_scrapes_over_tls_with_basic_auth_and_others_are_refused(tls_files, tmp_path):
    port = free_port()
    process = start_exporter("--port", str(port), "--web-config-file", str(tls_files / "web.yml"))
    context = ssl.create_default_context(cafile=str(tls_files / "server.crt"))
    url = f"https://127.0.0.1:{port}"

    def get(path, user=None, password=None):
        headers = {}
        if user is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url + path, headers=headers), context=context, timeout=5
            ) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    prometheus = None
    try:
        wait_for(lambda: get("/health", "prometheus", "scrape-secret") == 200, 30, "exporter over TLS")
        assert get("/metrics") == 401
        assert get("/metrics", "prometheus", "wrong") == 401
        assert get("/metrics", "nobody", "scrape-secret") == 401
        with pytest.raises(OSError):  # plain HTTP to the TLS port gets no metrics
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        prometheus = Prometheus(
            tmp_path,
            {"dlbench": f"127.0.0.1:{port}"},
            job_settings={
                "scheme": "https",
                "tls_config": {"ca_file": str(tls_files / "server.crt")},
                "basic_auth": {"username": "prometheus", "password": "scrape-secret"},
            },
        )
        series = prometheus.wait_for_series("dlbench_gpu_up == 1", predicate=lambda r: len(r) == 2)
        assert {s["metric"]["gpu"] for s in series} == {"0", "1"}
        assert prometheus.targets_health() == {"dlbench": "up"}
    finally:
        if prometheus:
            prometheus.close()
        err = stop(process)
    assert "https://127.0.0.1" in err and "warning" not in err


def test_unusable_tls_settings_fail_before_serving(tmp_path):
    bad = tmp_path / "web.yml"
    bad.write_text("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n")
    process = start_exporter("--port", str(free_port()), "--web-config-file", str(bad))
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2 and err.count("\n") == 1 and "cannot load cert_file/key_file" in err
    bad.write_text("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n")
    process = start_exporter("--port", str(free_port()), "--web-config-file", str(bad))
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2 and "cipher_suites is not supported" in err


@pytest.mark.parametrize(
    "content, message",
    [
        ("basic_auth_users:\n  prometheus: plaintext\n", "must be a bcrypt hash"),
        # a truncated hash and one with cost 99: the bcrypt package raises ValueError on each at check time, which
        # made every scrape a 500 with a traceback instead of failing at start
        ("basic_auth_users:\n  prometheus: $2y$10$truncated\n", "must be a bcrypt hash"),
        ("basic_auth_users:\n  prometheus: $2y$99$" + "a" * 53 + "\n", "must be a bcrypt hash"),
        ("tls_server_config: [\n", "not valid YAML"),
        ("http_server_config:\n  http2: true\n", "http_server_config is not supported"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
         "client_auth_type must be one of"),
    ],
)
def test_bad_web_config_is_one_line_and_exit_2(tmp_path, content, message):
    config = tmp_path / "web.yml"
    config.write_text(content)
    process = start_exporter("--port", str(free_port()), "--web-config-file", str(config))
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "listen, tls, warns",
    [
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("0.0.0.0", False, True),
        ("10.0.0.5", False, True),
        ("0.0.0.0", True, False),
    ],
)
def test_listening_beyond_loopback_warns_unless_tls_is_on(listen, tls, warns):
    from dlbench.telemetry.exporter import exposure_warning

    assert (exposure_warning(listen, tls) is not None) == warns
