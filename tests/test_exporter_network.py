"""The exporter's HTTP side under hostile or secured conditions: half-open connections, TLS and basic auth from a
Prometheus web-config file scraped by a real Prometheus, and what the Server header gives away.

Faked: NVML only (simulated GPUs). Certificates come from the real openssl, password hashes from bcrypt, the scraper
is Debian's Prometheus; everything listens on 127.0.0.1.
"""

import base64
import os
import selectors
import socket
import ssl
import subprocess
import sys
import threading
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


def closed_by_the_server(sockets: list[socket.socket]) -> list[socket.socket]:
    """Those of `sockets` the server has closed: readable with nothing sent, which is end of file."""
    with selectors.DefaultSelector() as selector:  # not select.select: no limit of 1,024 descriptors
        for s in sockets:
            selector.register(s, selectors.EVENT_READ)
        return [key.fileobj for key, _ in selector.select(timeout=0)]


def test_the_oldest_idle_connections_make_room_for_new_ones():
    """Past `max_pending` connections waiting for their request, the server shuts down the oldest, exactly as many as
    are over, and no new one. In this process and at a bound of 8, so that the threads start in milliseconds even on a
    loaded machine and the server's socket timeout (which would close them all) is seconds away."""
    from prometheus_client.registry import CollectorRegistry

    from dlbench.exporter.http import SOCKET_TIMEOUT_SECONDS, MetricsServer

    bound, over = 8, 5
    server = MetricsServer(CollectorRegistry(), "127.0.0.1", 0, max_pending=bound).start()
    sockets: list[socket.socket] = []
    try:
        baseline = threading.active_count()
        first_connected = time.monotonic()
        for _ in range(bound + over):  # connect, then say nothing
            sockets.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))

        def before_any_timeout():  # nothing the server closes before this can be its socket timeout's doing
            return first_connected + SOCKET_TIMEOUT_SECONDS - 0.5 - time.monotonic()

        wait_for(lambda: len(closed_by_the_server(sockets)) >= over, before_any_timeout(), f"{over} to be closed")
        assert before_any_timeout() > 0
        closed = closed_by_the_server(sockets)
        # the oldest by the order their threads registered in, which is the order of accept but for neighbours
        assert len(closed) == over and set(closed) <= set(sockets[: over + 2]), [sockets.index(s) for s in closed]
        wait_for(lambda: threading.active_count() <= baseline + bound, 2, f"at most {bound} connection threads")
        assert http_get(f"http://127.0.0.1:{server.port}/health")[0] == 200  # a request pushes out one more
        assert len(closed_by_the_server(sockets)) == over + 1 and before_any_timeout() > 0
    finally:
        for s in sockets:
            s.close()
        server.close()


def test_a_flood_of_half_open_connections_leaves_scrapes_answered_and_ends_at_the_socket_timeout():
    """The exporter process under more silent connections than may wait: threads stay near the bound, a scrape during
    the flood is answered, and after the socket timeout every idle connection's thread has ended."""
    from dlbench.exporter.http import MAX_PENDING_CONNECTIONS, SOCKET_TIMEOUT_SECONDS

    port = free_port()
    process = start_exporter("--port", str(port))
    url = f"http://127.0.0.1:{port}"
    sockets = []
    try:
        wait_for(lambda: http_get(f"{url}/health")[0] == 200, 30, "exporter")
        baseline = threads_of(process.pid)
        for _ in range(MAX_PENDING_CONNECTIONS + 50):  # connect, then say nothing
            sockets.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        # sampled while the server takes them in: the evicted connections' threads take a moment to end, more on a
        # loaded machine, so a margin above the bound; a server that kept all 306 fails it
        most = 0
        for _ in range(20):
            most = max(most, threads_of(process.pid))
            time.sleep(0.05)
        assert most <= baseline + MAX_PENDING_CONNECTIONS + 20, most
        assert http_get(f"{url}/metrics")[0] == 200  # during the flood: its connection pushes out an idle one
        time.sleep(SOCKET_TIMEOUT_SECONDS + 0.5)
        wait_for(lambda: threads_of(process.pid) <= baseline + 2, 10, "the idle connections' threads to end")
        assert len(closed_by_the_server(sockets)) == len(sockets)
        assert process.poll() is None
    finally:
        for s in sockets:
            s.close()
        assert "Traceback" not in stop(process)


def test_idle_connections_take_no_slot_while_prometheus_scrapes():
    """One client holding 40 idle connections open (re-opening those the server drops) must not lock Prometheus out:
    a slot is a request in flight, not a socket (promhttp's MaxRequestsInFlight)."""
    from dlbench.exporter.http import MAX_REQUESTS_IN_FLIGHT, PROMETHEUS_ACCEPT, SOCKET_TIMEOUT_SECONDS

    idle = MAX_REQUESTS_IN_FLIGHT + 8
    port = free_port()
    process = start_exporter("--port", str(port))
    url = f"http://127.0.0.1:{port}"
    stop_holding = threading.Event()
    held: list[socket.socket] = []

    def hold():
        while not stop_holding.is_set():
            for i, s in enumerate(held):
                try:
                    s.setblocking(False)
                    dropped = s.recv(1) == b""
                except BlockingIOError:
                    dropped = False
                except OSError:
                    dropped = True
                if dropped:
                    s.close()
                    try:
                        held[i] = socket.create_connection(("127.0.0.1", port), timeout=5)
                    except OSError:
                        pass  # the closed one is seen as dropped again on the next pass, and replaced then
            stop_holding.wait(0.05)

    try:
        wait_for(lambda: http_get(f"{url}/health")[0] == 200, 30, "exporter")
        held.extend(socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(idle))
        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        request = urllib.request.Request(
            f"{url}/metrics", headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
        )
        answered, failed = 0, []
        deadline = time.monotonic() + SOCKET_TIMEOUT_SECONDS * 2  # across the server dropping and re-opening them
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200 and response.read()
                answered += 1
            except OSError as error:
                failed.append(repr(error))
            time.sleep(0.2)
        assert not failed, f"{len(failed)} of {answered + len(failed)} scrapes failed: {failed[:3]}"
        assert answered >= 20
    finally:
        stop_holding.set()
        for s in held:
            s.close()
        assert "Traceback" not in stop(process)


def test_requests_beyond_the_cap_in_flight_get_503():
    """Requests whose headers have arrived are what is capped: past MAX_REQUESTS_IN_FLIGHT answers 503 at once, and the
    requests in flight are answered when they finish."""
    from prometheus_client.registry import CollectorRegistry

    from dlbench.exporter.http import MAX_REQUESTS_IN_FLIGHT, MetricsServer

    release, entered, lock = threading.Event(), [0], threading.Lock()

    def slow_health():  # a request that stays in flight until the test lets it go
        with lock:
            entered[0] += 1
        release.wait(30)
        return 200, {"status": "ok"}

    server = MetricsServer(CollectorRegistry(), "127.0.0.1", 0, health=slow_health).start()
    url = f"http://127.0.0.1:{server.port}/health"
    statuses: list[int] = []

    def ask():
        statuses.append(http_get(url, timeout=30)[0])

    try:
        in_flight = [threading.Thread(target=ask) for _ in range(MAX_REQUESTS_IN_FLIGHT)]
        for thread in in_flight:
            thread.start()
        wait_for(lambda: entered[0] == MAX_REQUESTS_IN_FLIGHT, 20, "the requests to be in flight")
        started = time.monotonic()
        for _ in range(3):
            status, body = http_get(url, timeout=10)
            assert status == 503, (status, body[:200])
            assert b"too many requests in flight" in body
        assert time.monotonic() - started < 5  # answered at once, not after the others
        release.set()
        for thread in in_flight:
            thread.join(30)
        assert statuses == [200] * MAX_REQUESTS_IN_FLIGHT
        assert http_get(url)[0] == 200  # slots are given back
    finally:
        release.set()
        server.close()


def test_a_client_trickling_its_request_is_dropped_at_the_deadline():
    """One header byte every second never trips a per-read timeout; the whole request still gets only its 5 s."""
    from dlbench.exporter.http import SOCKET_TIMEOUT_SECONDS

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
    from dlbench.exporter.http import SOCKET_TIMEOUT_SECONDS

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
        (
            "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n",
            "client_auth_type must be one of",
        ),
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
    from dlbench.exporter.server import exposure_warning

    assert (exposure_warning(listen, tls) is not None) == warns


def test_bcrypt_checks_run_one_at_a_time_and_outcomes_are_remembered(tmp_path, monkeypatch):
    """As exporter-toolkit (web/handler.go bcryptMtx, web/cache.go): a burst of wrong passwords from many clients is
    checked one at a time, and a credential already checked, right or wrong, is not checked again."""
    import bcrypt

    from dlbench.exporter.web_config import load_web_config

    config = load_web_config(str(self_signed_web_config(tmp_path, "prometheus", "secret")))
    real_checkpw, running, most, calls, lock = bcrypt.checkpw, [0], [0], [0], threading.Lock()

    def observed_checkpw(password, hashed):  # the real check, counted: how many run at once
        with lock:
            running[0] += 1
            calls[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return real_checkpw(password, hashed)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(bcrypt, "checkpw", observed_checkpw)

    def header(user, password):
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    results = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(config.authorized(header("prometheus", f"guess{i}"))))
        for i in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [False] * 16
    assert most[0] == 1, f"{most[0]} bcrypt checks ran at once"
    assert calls[0] == 16
    for _ in range(5):  # the same wrong password again, the right one twice, an unknown user twice
        assert not config.authorized(header("prometheus", "guess0"))
    assert config.authorized(header("prometheus", "secret")) and config.authorized(header("prometheus", "secret"))
    assert not config.authorized(header("mallory", "secret")) and not config.authorized(header("mallory", "secret"))
    assert calls[0] == 16 + 2  # one check for the right password, one for the unknown user


def test_wrong_passwords_take_no_slot_from_a_scraper_with_the_right_one(tmp_path):
    """exporter-toolkit checks basic auth in a wrapper around the handler (web/handler.go), outside promhttp's
    MaxRequestsInFlight: a flood of requests with wrong passwords, each a bcrypt check run one at a time, must not
    hold the request slots that Prometheus, whose password was checked once already, needs for its scrapes."""
    import bcrypt

    from dlbench.exporter.http import MAX_REQUESTS_IN_FLIGHT

    hashed = bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(rounds=10)).decode()  # exporter-toolkit's docs' cost
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    port = free_port()
    process = start_exporter("--port", str(port), "--web-config-file", str(tmp_path / "web.yml"))

    def get(password: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/metrics",
            headers={"Authorization": "Basic " + base64.b64encode(f"prometheus:{password}".encode()).decode()},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0

    stop_flood, flood_answers = threading.Event(), []

    def flood(worker: int) -> None:
        attempt = 0
        while not stop_flood.is_set():
            attempt += 1
            flood_answers.append(get(f"guess-{worker}-{attempt}"))

    try:
        wait_for(lambda: get("scrape-secret") == 200, 30, "the exporter")  # Prometheus's password, checked once
        flooders = [threading.Thread(target=flood, args=(i,)) for i in range(MAX_REQUESTS_IN_FLIGHT + 8)]
        for thread in flooders:
            thread.start()
        wait_for(lambda: len(flood_answers) >= 20, 60, "the flood to be answered")
        scrapes = []
        for _ in range(20):
            scrapes.append(get("scrape-secret"))
            time.sleep(0.1)
        stop_flood.set()
        for thread in flooders:
            thread.join(timeout=30)
        assert scrapes == [200] * 20
        assert 200 not in flood_answers and set(flood_answers) <= {401, 503}
    finally:
        stop_flood.set()
        assert "Traceback" not in stop(process)
