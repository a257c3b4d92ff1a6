"""`dlbench report`: the HTML page and the Markdown summary, and the page as a real browser shows it."""

import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dlbench.results import plots, tables
from results_support import make_result, pytest_benchmark_document, step_times, write, write_report_runs

FIGURE_IDS = [figure_id for figure_id, _, _ in plots.FIGURES]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from conftest import run_dlbench

    directory = tmp_path_factory.mktemp("report")
    write_report_runs(directory / "runs")
    html_path, md_path = directory / "report.html", directory / "report.md"
    out = run_dlbench("report", directory / "runs", "--html", html_path, "--markdown", md_path, "--title", "H100 node")
    assert out.returncode == 0, out.stderr
    return html_path, md_path


def test_html_has_environment_results_and_every_figure(report):
    page = report[0].read_text()
    for figure_id in FIGURE_IDS:
        assert re.search(rf'<figure id="figure-{figure_id}"><svg', page), figure_id
    assert "<h1>H100 node</h1>" in page and "580.95.05" in page and "NVIDIA H100 80GB HBM3" in page
    # what the numbers are: resnet50 bf16 at 85 ms a step and batch 256 is about 3,000 images/s
    assert re.search(r"<td class=num>3,0\d\d\.\d</td>", page)
    assert "<script" not in page and "src=" not in page and "@import" not in page


def test_the_environment_table_has_one_row_per_host_even_where_micro_benchmarks_record_less(report):
    """The micro-benchmarks (pytest-benchmark: hostname, no driver or torch) ran on gpu-a like the four runs."""
    page = report[0].read_text()
    environment = page[page.index("<h2>Environment</h2>") : page.index("<h2>Results</h2>")]
    assert environment.count("<tr><td>gpu-a</td>") == 1 and "<td>580.95.05</td>" in environment
    markdown = report[1].read_text()
    assert len(re.findall(r"^\| gpu-a \|", markdown, flags=re.M)) == 1


def test_a_partly_recorded_environment_folds_only_into_one_that_agrees_with_it():
    full = {"host": "gpu-a", "device": "H100", "driver": "580.95.05", "torch": "2.13.0"}
    partial = {"host": "gpu-a", "device": "H100", "driver": "", "torch": ""}
    other_host = {"host": "gpu-b", "device": "H100", "driver": "", "torch": ""}
    other_driver = {"host": "gpu-a", "device": "H100", "driver": "570.86.15", "torch": ""}

    def rows(*environments):
        results = [
            {
                "environment": {
                    "hostname": e["host"],
                    "driver_version": e["driver"] or None,
                    "torch": {"version": e["torch"] or None},
                },
                "telemetry": {"gpu": {"name": e["device"]}},
            }
            for e in environments
        ]
        return [(row["host"], row["driver"], row["torch"]) for row in tables.environment_rows(results)]

    assert rows(partial, full) == [("gpu-a", "580.95.05", "2.13.0")]
    assert rows(full, partial, other_host) == [("gpu-a", "580.95.05", "2.13.0"), ("gpu-b", "", "")]
    # a different driver on gpu-a is a different environment, kept; the partial row is folded into the full ones
    assert rows(full, other_driver, partial) == [("gpu-a", "580.95.05", "2.13.0"), ("gpu-a", "570.86.15", "")]


def test_markdown_summary_is_a_table_a_wiki_renders(report):
    text = report[1].read_text()
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| workload"))
    columns = lines[header].count("|")
    rows = lines[header + 2 : header + 8]
    assert [row.split("|")[1].strip() for row in rows] == [  # in the order of the files' paths
        "bert-base",
        "gpt2",
        "benchmarks/micro/test_compute.py::test_matmul[bf16]",
        "benchmarks/micro/test_memory.py::test_device_copy",
        "resnet50",
        "resnet50",
    ]
    assert all(row.count("|") == columns for row in rows)
    assert "| bf16, batch 16, seq 1024 |" in text


def test_markdown_alone_needs_no_matplotlib_and_can_go_to_stdout(dlbench_cli, tmp_path):
    result = write(tmp_path / "a.json", make_result(status="interrupted"))
    result_text = result.read_text()
    blocker = tmp_path / "no_matplotlib"
    blocker.mkdir()
    (blocker / "matplotlib.py").write_text("raise ImportError('blocked for this test')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    out = dlbench_cli("report", result, "--markdown", "-", env=env)
    assert out.returncode == 0 and "| resnet50 |" in out.stdout
    assert "- resnet50 (gpu-a 2026-11-30 01:00:00): interrupted: no reason recorded" in out.stdout  # which run
    out = dlbench_cli("report", result, "--html", tmp_path / "r.html", env=env)
    assert out.returncode == 2 and "pip install 'dlbench[report]'" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "r.html").exists() and result.read_text() == result_text


def test_results_without_series_or_samples_still_report(dlbench_cli, tmp_path):
    """Today's results (no telemetry series, no step-time samples, a CPU run without MFU) give a page that says
    which figures have no data, instead of failing."""
    cpu = make_result("cifar-cnn", keep_samples=False, telemetry={}, device="cpu", precision="fp32")
    cpu["metrics"]["mfu"] = None
    path = write(tmp_path / "cpu.json", cpu)
    out = dlbench_cli("report", path, "--html", tmp_path / "r.html")
    assert out.returncode == 0, out.stderr
    page = (tmp_path / "r.html").read_text()
    assert 'id="figure-throughput"' in page and 'id="figure-step-time"' in page
    assert 'id="no-telemetry"' in page and 'id="no-mfu"' in page


@pytest.mark.parametrize(
    "args, message",
    [
        (["--html", "{tmp}/nodir/r.html"], "does not exist"),
        ([], "say what to write"),
    ],
)
def test_bad_output_is_refused_before_reading(dlbench_cli, tmp_path, args, message):
    path = write(tmp_path / "a.json", make_result())
    out = dlbench_cli("report", path, *[a.format(tmp=tmp_path) for a in args])
    assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1


def test_report_reads_pytest_benchmark_files(dlbench_cli, tmp_path):
    path = write(tmp_path / "0001_micro.json", pytest_benchmark_document())
    out = dlbench_cli("report", path, "--markdown", "-")
    assert out.returncode == 0, out.stderr
    assert "test_matmul[bf16]" in out.stdout
    assert re.search(r"\| 2[45]\d\.\d \|", out.stdout)  # 1e12 FLOP in a median round of about 4 ms: ~250 TFLOP/s


# --- in a real browser -------------------------------------------------------------------------------------------
# Chromium's own background traffic (clock, component updater, accounts), seen even for an empty page with
# --disable-background-networking; anything else comes from the page.
CHROMIUM_OWN_HOSTS = ("google.com", "googleapis.com", "gvt1.com", "gstatic.com")


class _RecordingProxy:
    """A listening socket given to Chromium as its HTTP proxy: every request the browser makes arrives here, and
    the host of each is recorded (never answered)."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.hosts: list[str] = []
        self.server.settimeout(0.2)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    request_line = connection.recv(512).split(b"\r\n")[0].decode("latin-1")
                except OSError:
                    continue
            if not request_line:  # a socket Chromium opened to the proxy ahead of need and closed unused
                continue
            # "CONNECT host:443 HTTP/1.1" or "GET http://host/path HTTP/1.1"
            target = request_line.split(" ")[1] if " " in request_line else ""
            self.hosts.append(urlsplit(target if "://" in target else f"//{target}").hostname or "")

    def foreign_hosts(self) -> list[str]:
        return [h for h in self.hosts if not any(h == own or h.endswith("." + own) for own in CHROMIUM_OWN_HOSTS)]

    def close(self):
        self._stop.set()
        self.thread.join()
        self.server.close()


def _chromium(page: Path, profile: Path, *mode: str):
    """Open `page` in headless Chromium through a recording proxy: (process, console messages, foreign hosts)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium missing: run scripts/install-test-deps.sh (Debian package chromium)"
    proxy = _RecordingProxy()
    args = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--user-data-dir={profile / 'chromium'}",
        f"--proxy-server=http://127.0.0.1:{proxy.port}",
        "--enable-logging=stderr",
        "--v=0",
        *mode,
        page.as_uri(),
    ]
    try:
        process = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=profile)
    finally:
        proxy.close()
    # Chromium logs each console message of the page as "...:INFO:CONSOLE:<line>] "<message>", source: ..."
    console = [line for line in process.stderr.splitlines() if ":CONSOLE" in line]
    return process, console, proxy.foreign_hosts()


@pytest.mark.integration
def test_report_opens_in_chromium_with_every_plot_no_errors_and_no_network(report, tmp_path):
    dom, console, foreign = _chromium(report[0], tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console == [] and foreign == []
    for figure_id in FIGURE_IDS:
        assert re.search(rf'<figure id="figure-{figure_id}"><svg', dom.stdout), figure_id

    # its screenshot: tests/test_report_validate.py, on the page with the fleet table as well


@pytest.mark.integration
def test_the_browser_checks_catch_a_page_that_reaches_out(report, tmp_path):
    """The checks above can fail: one CDN script and image in the page are console errors (the page's
    Content-Security-Policy blocks them); without that policy the browser really asks the network for them."""
    original = report[0].read_text()
    extras = '<body><script src="https://cdn.jsdelivr.net/npm/chart.js"></script><img src="http://example.com/a.png">'
    page = tmp_path / "cdn.html"
    page.write_text(original.replace("<body>", extras, 1))
    _, console, _ = _chromium(page, tmp_path, "--dump-dom")
    assert any("cdn.jsdelivr.net" in m for m in console) and any("example.com" in m for m in console)
    page.write_text(
        re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", original).replace("<body>", extras, 1)
    )
    _, _, foreign = _chromium(page, tmp_path, "--dump-dom")
    assert "cdn.jsdelivr.net" in foreign and "example.com" in foreign


# --- every run shown: the review's four cifar-cnn results were one bar of their mean ------------------------------
def _review_runs(directory: Path) -> list[Path]:
    """Four cifar-cnn results on one CPU host (130 to 483 images/s, as the review's were) and two gpt2-tiny ones."""
    paths = []
    for i, rate in enumerate((275.8, 129.6, 482.7, 360.9)):
        result = make_result(
            "cifar-cnn",
            times=step_times(32e3 / rate, 0.02, count=200, seed=i),
            batch_size=32,
            precision="fp32",
            started_at=f"2026-12-06T0{i}:1{i}:00+00:00",
            telemetry={},
        )
        result["environment"].update(hostname="vm", device_name="AMD EPYC 7B13")
        paths.append(write(directory / f"cifar-{i}.json", result))
    for i in range(2):
        result = make_result(
            "gpt2-tiny",
            times=step_times(1000.0, 0.02, count=20, seed=9 + i),
            batch_size=4,
            seq_len=128,
            precision="fp32",
            started_at=f"2026-12-06T05:0{i}:00+00:00",
            telemetry={},
        )
        result["environment"].update(hostname="vm", device_name="AMD EPYC 7B13")
        paths.append(write(directory / f"gpt2-tiny-{i}.json", result))
    return paths


def test_every_run_is_its_own_bar_and_row(dlbench_cli, tmp_path):
    _review_runs(tmp_path / "runs")
    out = dlbench_cli("report", tmp_path / "runs", "--html", tmp_path / "r.html", "--markdown", "-")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| cifar-cnn |")]
    assert len(rows) == 4 and len(set(rows)) == 4  # four rows, no two alike
    # told apart by when each ran, in the order they ran (the host is in the environment table: one host here)
    assert [re.search(r"2026-12-06 0\d:\d\d:00", row).group() for row in rows] == [
        "2026-12-06 00:10:00",
        "2026-12-06 01:11:00",
        "2026-12-06 02:12:00",
        "2026-12-06 03:13:00",
    ]
    rates = [float(re.search(r"\| (\d+\.\d) \|", row).group(1)) for row in rows]
    assert rates == pytest.approx([275.8, 129.6, 482.7, 360.9], rel=0.02)
    page = (tmp_path / "r.html").read_text()
    assert page.count('id="throughput-run-') == 6  # one bar per run: four cifar-cnn, two gpt2-tiny


def test_labels_tell_runs_apart_by_host_then_time():
    a, b = make_result(started_at="2026-12-06T01:00:00+00:00"), make_result(started_at="2026-12-06T02:00:00+00:00")
    assert plots.labels([a, b]) == ["resnet50 · bf16 · 2026-12-06 01:00", "resnet50 · bf16 · 2026-12-06 02:00"]
    b["environment"]["hostname"] = "gpu-b"
    assert plots.labels([a, b]) == ["resnet50 · bf16 · gpu-a", "resnet50 · bf16 · gpu-b"]
    assert plots.labels([a, make_result("gpt2")]) == ["resnet50 · bf16", "gpt2 · bf16"]


def test_an_empty_directory_is_one_line_and_exit_2(dlbench_cli, tmp_path):
    (tmp_path / "empty").mkdir()
    out = dlbench_cli("report", tmp_path / "empty", "--html", tmp_path / "r.html", "--markdown", tmp_path / "r.md")
    assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and "holds no .json results" in out.stderr
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.md").exists()


@pytest.mark.integration
def test_every_run_is_a_bar_in_chromium(tmp_path):
    """The page of the review's six runs as a browser builds it: six bars, no console error, no network. Its
    screenshot is kept beside the test's files (DLBENCH_REPORT_RUNS_PNG names a copy) for a person to look at."""
    from conftest import run_dlbench

    _review_runs(tmp_path / "runs")
    page = tmp_path / "runs.html"
    out = run_dlbench("report", tmp_path / "runs", "--html", page)
    assert out.returncode == 0, out.stderr
    dom, console, foreign = _chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0 and console == [] and foreign == []
    assert len(re.findall(r'<g id="throughput-run-\d+"', dom.stdout)) == 6
    png = tmp_path / "runs.png"
    shot, _, _ = _chromium(page, tmp_path, "--window-size=1200,2400", f"--screenshot={png}")
    assert shot.returncode == 0 and png.stat().st_size > 0
    if os.environ.get("DLBENCH_REPORT_RUNS_PNG"):
        shutil.copy(png, os.environ["DLBENCH_REPORT_RUNS_PNG"])


def _back_to_back(directory: Path) -> list[Path]:
    """Two short CPU runs one after the other, each in its own folder as `--output a/run.json`, `b/run.json`."""
    paths = []
    for folder, second in (("a", "04"), ("b", "40")):
        result = make_result(
            "cifar-cnn",
            times=step_times(1700, 0.05, count=8, seed=ord(folder)),
            precision="fp32",
            batch_size=32,
            started_at=f"2026-12-06T10:47:{second}+00:00",
            telemetry={},
        )
        result["environment"].update(hostname="vm", device_name="AMD EPYC")
        result["metrics"]["cpu_contention"] = {
            "distorted": folder == "a",
            "other_processes_cores_mean": 1.8,
            "cores_available": 2,
            "other_processes_share": 0.92,
        }
        paths.append(write(directory / folder / "run.json", result))
    return paths


def test_two_runs_of_one_minute_in_files_of_one_name_are_told_apart(dlbench_cli, tmp_path):
    """The first thing a user does: two short runs back to back into a/run.json and b/run.json. The rows named the
    file run.json twice and the two bars were both 'vm · 2026-12-06 10:47 · run.json'."""
    paths = _back_to_back(tmp_path / "runs")
    out = dlbench_cli("report", *paths, "--markdown", "-")
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| cifar-cnn |")]
    assert "| a/run.json |" in rows[0] and "| b/run.json |" in rows[1]
    from dlbench.results.load import load_paths

    results = load_paths([str(p) for p in paths], [])
    assert plots.run_labels(results) == ["vm · 2026-12-06 10:47 · a/run.json", "vm · 2026-12-06 10:47 · b/run.json"]
    assert len(set(plots.labels(results))) == 2
    for result in results:  # results handed over without their files: the second tells them apart
        result.pop("source", None)
    assert plots.run_labels(results) == ["vm · 2026-12-06 10:47:04", "vm · 2026-12-06 10:47:40"]


def test_a_run_compare_would_distrust_is_named_in_the_report_with_the_reason(dlbench_cli, tmp_path):
    """A contended run's number is in the table like any other; the notes say it cannot be trusted, and why, as
    `dlbench compare` does before it calls the pair noisy."""
    paths = _back_to_back(tmp_path / "runs")
    out = dlbench_cli("report", *paths, "--markdown", "-")
    notes = [line for line in out.stdout.splitlines() if "not to be trusted" in line]
    assert notes == [
        "- cifar-cnn (vm 2026-12-06 10:47:04): not to be trusted for comparison: other processes kept 1.8 "
        "of its 2 CPU cores busy (92%)"
    ]


def test_a_torchrun_jobs_row_shows_what_the_job_did_beside_rank_0s_own(dlbench_cli, tmp_path):
    """`metrics` is rank 0's own (docs/results.md): a 2-GPU row showed half of the job's throughput and nothing
    else. The job's (distributed.aggregate: every rank) stands beside it; a report of single runs has no such column."""
    single = make_result(started_at="2026-11-30T01:00:00+00:00")
    job = make_result(started_at="2026-11-30T02:00:00+00:00", world_size=2)
    job["distributed"] = {"world_size": 2, "strategy": "ddp", "aggregate": {"samples_per_second": 5980.0}}
    out = dlbench_cli("report", write(tmp_path / "one.json", single), "--markdown", "-")
    assert "job samples/s" not in out.stdout
    out = dlbench_cli("report", write(tmp_path / "two.json", job), tmp_path / "one.json", "--markdown", "-")
    header = next(line for line in out.stdout.splitlines() if line.startswith("| workload |"))
    assert "| samples/s | job samples/s |" in header
    row = next(line for line in out.stdout.splitlines() if "GPUs 2" in line)
    assert "| 5,980.0 |" in row
