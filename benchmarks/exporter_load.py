"""Load on the exporter's HTTP side, on loopback, bounded in time and connections; prints figures, asserts nothing.

1. Half-open connections: 200 clients connect and say nothing. Threads held and whether a scrape gets through, during
   the flood and after the socket timeout.
2. Concurrent scrapes: 8 clients scrape /metrics of an exporter with 8 simulated GPUs, 100 times each.
3. The same with basic auth (bcrypt hash, cost 10) over TLS, against plain HTTP in the same run (ratio).
4. Scrape latency and memory of a `dlbench exporter --dcgm-compat` process as Prometheus scrapes it (its Accept
   header, gzip; 500 sequential scrapes): 8 H100s with 4 processes each, and 8 H100s split into 7 MIG instances each
   (1g.10gb). With --baseline-tree (another checkout, e.g. `git archive main | tar -x -C /tmp/base`), the same
   scenarios run against that tree's code too, interleaved, and the ratios are printed (this tree / baseline).

    .venv/bin/python benchmarks/exporter_load.py [--half-open 200] [--clients 8] [--scrapes 100] \
        [--baseline-tree DIR] [--only latency]
Everything listens on 127.0.0.1 and stops by itself (the whole run takes about a minute).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import subprocess
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
    from dlbench.nvml import simulated
    from dlbench.exporter.server import Exporter

    return Exporter(
        "127.0.0.1", 0, interval=1.0, nvml=simulated.from_spec("h100-sxm*8"), hostname="bench", web_config=web_config
    ).start()


def half_open(count: int) -> None:
    from dlbench.exporter.http import MAX_PENDING_CONNECTIONS, SOCKET_TIMEOUT_SECONDS

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
    from dlbench.exporter.http import PROMETHEUS_ACCEPT
    from dlbench.exporter.web_config import load_web_config

    accept = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
    plain = exporter()
    try:
        times, errors = scrape(f"http://127.0.0.1:{plain.server.port}/metrics", clients, scrapes, accept)
    finally:
        plain.close()
    print(
        f"concurrent scrapes, plain HTTP: {clients} clients x {scrapes}, 8 GPUs: p50 {percentile(times, 0.5):.2f} "
        f"ms, p99 {percentile(times, 0.99):.2f} ms, errors {errors}"
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
        f"concurrent scrapes, TLS + basic auth: p50 {percentile(tls_times, 0.5):.2f} ms, p99 "
        f"{percentile(tls_times, 0.99):.2f} ms, errors {tls_errors}; p99 ratio TLS+auth / plain = "
        f"{percentile(tls_times, 0.99) / percentile(times, 0.99):.2f} (bcrypt is checked once per credential, "
        "then remembered; each new TLS connection pays a handshake)"
    )


# 8 x 7 MIG instances: an H100 80GB split into seven 1g.10gb GPU instances (NVIDIA MIG user guide, H100 profiles:
# 1g.10gb, up to 7 instances; GPU instance ids 7-13 as its listings show for seven 1g instances). Defined here, at the
# start of the exporter process, so that the scenario runs on a tree whose simulated NVML lacks the preset.
_LAUNCHER = """
import sys
try:  # a baseline tree from before the regrouping into dlbench/nvml (the old path first: an editable install of
    # the newer tree would otherwise answer dlbench.nvml for the baseline too)
    from dlbench.telemetry import fake_nvml as simulated
except ImportError:
    from dlbench.nvml import simulated
spec = dict(simulated.PRESETS["h100-mig"])
spec["mig"] = [("1g.10gb", 7 + i, 9728) for i in range(7)]
simulated.PRESETS.setdefault("h100-mig7", spec)
from dlbench.cli import main
sys.exit(main(sys.argv[1:]))
"""
SCENARIOS = {
    "8 x H100, 4 processes each": [
        {
            "preset": "h100-sxm",
            "values": {
                "utilization_gpu": 93,
                "memory_used": 60 * 2**30,
                "power_mw": 640_000,
                "processes": [[4000 + 10 * g + p, 12 * 2**30, 20] for p in range(4)],
            },
        }
        for g in range(8)
    ],
    "8 x H100 x 7 MIG (1g.10gb)": [
        {
            "preset": "h100-mig7",
            "values": {
                "mig_memory_used": [5 * 2**30] * 7,
                "mig_processes": {str(i): [[5000 + 10 * g + i, 4 * 2**30]] for i in range(7)},
                "mig_gpm": {str(7 + i): {"SM_UTIL": 60.0} for i in range(7)},
            },
        }
        for g in range(8)
    ],
}


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def scrape_latency(tree: Path, gpus: list, scrapes: int, folder: Path) -> dict:
    """p50/p99/max scrape latency (ms), series served and RSS (bytes) of a --dcgm-compat exporter run from `tree`."""
    from prometheus_server import free_port, http_get, wait_for

    from dlbench.exporter.http import PROMETHEUS_ACCEPT

    scenario = folder / f"scenario-{abs(hash((str(tree), len(gpus), json.dumps(gpus))))}.json"
    scenario.write_text(json.dumps({"gpus": gpus}))
    port = free_port()
    env = {**os.environ, "DLBENCH_FAKE_NVML": str(scenario), "PYTHONPATH": str(tree)}
    process = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, "exporter", "--port", str(port), "--interval", "5", "--dcgm-compat"],
        env=env,
        cwd=str(tree),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for(lambda: http_get(url)[0] == 200, 60, "the exporter")
        time.sleep(6)  # a second sample: GPM figures, the formats Prometheus asks for rendered ahead
        request = urllib.request.Request(url, headers={"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"})
        times = []
        for _ in range(scrapes):
            t0 = time.perf_counter()
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
            times.append(time.perf_counter() - t0)
        body = http_get(url)[1].decode()
        series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
        return {
            "p50": percentile(times, 0.5),
            "p99": percentile(times, 0.99),
            "max": max(times) * 1e3,
            "series": series,
            "rss": _rss_bytes(process.pid),
        }
    finally:
        process.terminate()
        process.communicate(timeout=10)


def latency(scrapes: int, baseline: Path | None, rounds: int) -> None:
    here = Path(__file__).resolve().parents[1]
    trees = {"this tree": here, **({"baseline": baseline.resolve()} if baseline else {})}
    with tempfile.TemporaryDirectory() as folder:
        for name, gpus in SCENARIOS.items():
            results: dict[str, list[dict]] = {tree: [] for tree in trees}
            for _ in range(rounds):  # interleaved, so that load from other work hits both alike
                for tree, path in trees.items():
                    results[tree].append(scrape_latency(path, gpus, scrapes, Path(folder)))
            best = {
                tree: {key: min(r[key] for r in runs) if key != "series" else runs[0][key] for key in runs[0]}
                for tree, runs in results.items()
            }
            for tree, figures in best.items():
                print(
                    f"{name}, --dcgm-compat, {tree}: {figures['series']} series, scrape p50 {figures['p50']:.2f} ms, "
                    f"p99 {figures['p99']:.2f} ms, max {figures['max']:.2f} ms (best of {rounds} runs of "
                    f"{scrapes}), RSS {figures['rss'] / 2**20:.1f} MiB"
                )
            if baseline:
                mine, base = best["this tree"], best["baseline"]
                print(
                    f"{name}: ratio this tree / baseline: p50 {mine['p50'] / base['p50']:.2f}, p99 "
                    f"{mine['p99'] / base['p99']:.2f}, RSS {mine['rss'] / base['rss']:.2f}, series "
                    f"{mine['series'] / base['series']:.2f}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half-open", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--scrapes", type=int, default=100)
    parser.add_argument("--latency-scrapes", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each latency scenario (the best is kept)")
    parser.add_argument("--baseline-tree", type=Path, help="another checkout to compare the latency scenarios with")
    parser.add_argument("--only", choices=("latency",), help="run only the latency and memory scenarios")
    args = parser.parse_args()
    if args.only != "latency":
        half_open(args.half_open)
        concurrent(args.clients, args.scrapes)
    latency(args.latency_scrapes, args.baseline_tree, args.rounds)


if __name__ == "__main__":
    main()
