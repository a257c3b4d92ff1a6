"""A real Prometheus server (Debian's `prometheus` package) for tests, on 127.0.0.1 with a generated config."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for(predicate, timeout: float, what: str, step: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except OSError as error:
            last = error
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Prometheus:
    def __init__(
        self,
        workdir: Path,
        targets: dict[str, str],
        scrape_interval: str = "500ms",
        job_settings: dict | None = None,
        scrape_configs: list[dict] | None = None,
        rule_files: list[str] | None = None,
    ):
        self.binary = shutil.which("prometheus")
        if self.binary is None:
            raise RuntimeError("prometheus is not installed; run scripts/install-test-deps.sh")
        self.port = free_port()
        self.workdir = workdir
        # job_settings: more scrape_config keys for every job (scheme, tls_config, basic_auth)
        # scrape_configs: whole scrape configs of the caller's (file_sd, relabelling), beside the static jobs
        jobs = [
            {
                "job_name": job,
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "static_configs": [{"targets": [target]}],
                **(job_settings or {}),
            }
            for job, target in targets.items()
        ]
        config = workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
                    "scrape_configs": jobs + (scrape_configs or []),
                    "rule_files": rule_files or [],
                }
            )
        )
        self.log = open(workdir / "prometheus.log", "wb")
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: http_get(f"{self.url}/-/ready")[0] == 200, 30, "prometheus to be ready")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str) -> list[dict]:
        status, body = http_get(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        answer = json.loads(body)
        assert status == 200 and answer["status"] == "success", answer
        return answer["data"]["result"]

    def wait_for_series(self, promql: str, timeout: float = 20.0, predicate=bool) -> list[dict]:
        return wait_for(
            lambda: (lambda r: r if predicate(r) else None)(self.query(promql)), timeout, f"series for {promql}"
        )

    def targets_health(self) -> dict[str, str]:
        _, body = http_get(f"{self.url}/api/v1/targets")
        return {t["labels"]["job"]: t["health"] for t in json.loads(body)["data"]["activeTargets"]}

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
