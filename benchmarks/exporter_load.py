"""Load on the exporter's HTTP side, on loopback, bounded in time and connections; prints figures, asserts nothing.

1. Half-open connections: 200 clients connect and say nothing. Threads held and whether a scrape gets through, during
   the flood and after the socket timeout.
2. Concurrent scrapes: 8 clients scrape /metrics of an exporter with 8 simulated GPUs, 100 times each.
3. The same with basic auth (bcrypt hash, cost 10) over TLS, against plain HTTP in the same run (ratio).

    .venv/bin/python benchmarks/exporter_load.py [--half-open 200] [--clients 8] [--scrapes 100]
Everything listens on 127.0.0.1 and stops by itself (the whole run takes about 20 s).
"""

from __future__ import annotations

import argparse
import base64
import socket
import ssl
import tempfile
import threading
import time
import urllib.request
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tls_support: certificate and web config

from tls_support import self_signed_web_config  # noqa: E402


def percentile(values, q):
    values = sorted(values)
    return values[max(0, int(len(values) * q) - 1)] * 1e3 if values else float("nan")


def exporter(web_config=None):
    from dlbench.telemetry import fake_nvml
    from dlbench.telemetry.exporter import Exporter

    return Exporter(
        "127.0.0.1", 0, interval=1.0, nvml=fake_nvml.from_spec("h100-sxm*8"), hostname="bench", web_config=web_config
    ).start()


def half_open(count: int) -> None:
    from dlbench.telemetry.http import MAX_PENDING_CONNECTIONS, SOCKET_TIMEOUT_SECONDS

    server = exporter()
    url = f"http://127.0.0.1:{server.server.port}/metrics"
    try:
        baseline = threading.active_count()
        sockets = [socket.create_connection(("127.0.0.1", server.server.port), timeout=5) for _ in range(count)]
        time.sleep(0.5)
        during = threading.active_count()
        try:
            urllib.request.urlopen(url, timeout=2).read()
            scrape_during = "answered"
        except OSError as error:
            scrape_during = f"refused ({type(error).__name__})"
        time.sleep(SOCKET_TIMEOUT_SECONDS + 0.5)
        after = threading.active_count()
        t0 = time.perf_counter()
        urllib.request.urlopen(url, timeout=5).read()
        recovered_ms = (time.perf_counter() - t0) * 1e3
        for s in sockets:
            s.close()
        print(
            f"half-open: {count} silent connections; threads {baseline} before, {during} during (at most "
            f"{MAX_PENDING_CONNECTIONS} wait), {after} after the {SOCKET_TIMEOUT_SECONDS:g} s socket timeout; a scrape "
            f"during the flood was {scrape_during}, after it answered in {recovered_ms:.1f} ms; "
            f"{server.server.server.evicted_connections} idle connections closed to make room"
        )
    finally:
        server.close()


def scrape(url: str, clients: int, scrapes: int, headers: dict, context=None) -> tuple[list[float], int]:
    times, errors, lock = [], [0], threading.Lock()
    request = urllib.request.Request(url, headers=headers)

    def client():
        for _ in range(scrapes):
            t0 = time.perf_counter()
            try:
                urllib.request.urlopen(request, timeout=10, context=context).read()
            except OSError:
                with lock:
                    errors[0] += 1
                continue
            with lock:
                times.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, errors[0]


def concurrent(clients: int, scrapes: int) -> None:
    from dlbench.telemetry.http import PROMETHEUS_ACCEPT
    from dlbench.telemetry.web_config import load_web_config

    accept = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
    plain = exporter()
    try:
        times, errors = scrape(f"http://127.0.0.1:{plain.server.port}/metrics", clients, scrapes, accept)
    finally:
        plain.close()
    print(
        f"concurrent scrapes, plain HTTP: {clients} clients x {scrapes}, 8 GPUs: p50 {percentile(times, .5):.2f} "
        f"ms, p99 {percentile(times, .99):.2f} ms, errors {errors}"
    )
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        web_config = self_signed_web_config(folder, "prometheus", "secret")
        secured = exporter(load_web_config(str(web_config)))
        context = ssl.create_default_context(cafile=str(folder / "server.crt"))
        auth = {**accept, "Authorization": "Basic " + base64.b64encode(b"prometheus:secret").decode()}
        try:
            tls_times, tls_errors = scrape(
                f"https://127.0.0.1:{secured.server.port}/metrics", clients, scrapes, auth, context
            )
        finally:
            secured.close()
    print(
        f"concurrent scrapes, TLS + basic auth: p50 {percentile(tls_times, .5):.2f} ms, p99 "
        f"{percentile(tls_times, .99):.2f} ms, errors {tls_errors}; p99 ratio TLS+auth / plain = "
        f"{percentile(tls_times, .99) / percentile(times, .99):.2f} (bcrypt is checked once per credential, "
        "then remembered; each new TLS connection pays a handshake)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half-open", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--scrapes", type=int, default=100)
    args = parser.parse_args()
    half_open(args.half_open)
    concurrent(args.clients, args.scrapes)


if __name__ == "__main__":
    main()
