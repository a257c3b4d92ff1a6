"""`dlbench report` on `dlbench validate` reports: the fleet table (hosts x check families, with verdicts) and each
GPU against the fleet median of its model, outliers named, in the HTML page and the Markdown summary."""

import os
import re
import shutil

import pytest

from results_support import write_report_runs
from test_report import _chromium
from test_validate_summarize import _report, _write

from dlbench.checks import PASS, WARN

H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory):
    """Three H100 hosts through the validate report writer; node3's two GPUs run 10% below the others."""
    directory = tmp_path_factory.mktemp("fleet")
    _write(
        directory,
        [
            _report("node1", {"0": 780.0, "1": 781.0}),
            _report("node2", {"0": 779.0, "1": 780.0}),
            _report("node3", {"0": 702.0, "1": 703.0}, verdict=WARN),
        ],
    )
    return directory


@pytest.fixture(scope="module")
def fleet_report(fleet_dir, tmp_path_factory):
    from conftest import run_dlbench

    out_dir = tmp_path_factory.mktemp("fleet-report")
    html_path, md_path = out_dir / "fleet.html", out_dir / "fleet.md"
    done = run_dlbench("report", fleet_dir, "--html", html_path, "--markdown", md_path)
    assert done.returncode == 0, done.stderr
    return html_path.read_text(), md_path.read_text()


def test_html_names_each_hosts_verdicts_and_the_outlier_gpus(fleet_report):
    page = fleet_report[0]
    rows = re.findall(r"<tr><td>(node\d)</td><td>([^<]*)</td><td>(\w+)</td><td>(\w+)</td><td>(\w+)</td></tr>", page)
    # columns: host, GPU model, host verdict, then one per check family (compute, stack) with its worst verdict
    assert rows == [
        ("node1", H100, PASS, PASS, PASS),
        ("node2", H100, PASS, PASS, PASS),
        ("node3", H100, WARN, WARN, PASS),
    ]
    assert "<th>compute</th><th>stack</th>" in page
    for gpu, value in (("0", "702"), ("1", "703")):
        assert f"<li>outlier node3 GPU {gpu} ({H100}): compute.matmul_bf16 {value}, " in page
    # median of 779..781 and 702, 703 is 779.5: node3 GPU 0 is 9.9% below it and flagged, node1 GPU 0 is not
    assert re.search(
        r"<td>node3</td><td>0</td><td>[^<]+</td><td>compute.matmul_bf16</td><td class=num>702</td>"
        r"<td class=num>779.5</td><td class=num>-9.9%</td><td>OUTLIER</td>",
        page,
    )
    assert re.search(r"<td>node1</td><td>0</td>.*?<td class=num>\+0.1%</td><td></td></tr>", page)
    assert "<h2>Results</h2>" not in page  # no run result given: no empty results section


def test_html_leads_with_hosts_counted_by_verdict_per_family_and_the_version_groups(fleet_report):
    page = fleet_report[0]
    lead = page[page.index("Hosts by their worst verdict") : page.index("<h3>Every host</h3>")]
    # columns FAIL, WARN, PASS, INFO, SKIP: node3 warns in compute, node1 and node2 pass
    assert "<tr><td>compute</td><td>0</td><td>1</td><td>2</td><td>0</td><td>0</td></tr>" in lead
    assert "Every host carries the same versions." in lead


def test_markdown_names_each_hosts_verdicts_and_the_outlier_gpus(fleet_report):
    text = fleet_report[1]
    assert "| host | GPU model | verdict | compute | stack |" in text
    assert f"| node3 | {H100} | WARN | WARN | PASS |" in text and f"| node1 | {H100} | PASS | PASS | PASS |" in text
    assert f"| node3 | 1 | {H100} | compute.matmul_bf16 | 703 | 779.5 | -9.8% | OUTLIER |" in text
    assert f"- **outlier node3 GPU 0 ({H100}): compute.matmul_bf16 702, 9.9% below the fleet median 779.5**" in text
    assert "outlier node1" not in text and "outlier node2" not in text


def test_a_wider_outlier_threshold_names_no_one(fleet_dir, dlbench_cli):
    done = dlbench_cli("report", fleet_dir, "--markdown", "-", "--outlier", "0.15")
    assert done.returncode == 0, done.stderr
    assert "OUTLIER" not in done.stdout and "No outlier." in done.stdout


def test_run_results_and_validate_reports_together_render_both(fleet_dir, dlbench_cli, tmp_path):
    write_report_runs(tmp_path / "runs")
    done = dlbench_cli("report", tmp_path / "runs", fleet_dir, "--markdown", "-")
    assert done.returncode == 0, done.stderr
    assert "6 result(s), 3 validation report(s)" in done.stdout
    assert "## Results" in done.stdout and "| resnet50 |" in done.stdout
    assert "## Fleet validation" in done.stdout and "outlier node3 GPU 1" in done.stdout


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda report: report.update(schema_version=99), "report schema_version 99"),
        (lambda report: report.pop("checks"), "not a complete dlbench validate report (no list of checks)"),
    ],
)
def test_a_bad_validate_report_is_one_line_and_exit_2(fleet_dir, dlbench_cli, tmp_path, damage, message):
    bad = _report("node9", {"0": 780.0})
    damage(bad)
    _write(tmp_path, [bad])
    html_path = tmp_path / "out.html"
    done = dlbench_cli("report", fleet_dir, tmp_path / "node9.json", "--html", html_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert f"{tmp_path / 'node9.json'}: {message}" in line
    assert not html_path.exists()  # nothing half-written


@pytest.mark.integration
def test_fleet_page_opens_in_chromium_with_no_errors_and_no_network(fleet_dir, tmp_path):
    from conftest import run_dlbench

    write_report_runs(tmp_path / "runs")
    page = tmp_path / "mixed.html"
    assert run_dlbench("report", tmp_path / "runs", fleet_dir, "--html", page, "--title", "H100 node").returncode == 0
    dom, console, foreign = _chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console == [] and foreign == []
    assert '<h2 id="fleet">Fleet validation</h2>' in dom.stdout and "outlier node3 GPU 0" in dom.stdout
    assert '<figure id="figure-' in dom.stdout  # the run results' figures are still drawn beside the fleet

    # The screenshot: the whole page (about 3,000 pixels high at this width), as docs/report.png shows it
    png = tmp_path / "report.png"
    shot, console, _ = _chromium(page, tmp_path, "--window-size=1200,3050", f"--screenshot={png}")
    assert shot.returncode == 0 and png.stat().st_size > 0, shot.stderr[-2000:]
    assert console == []
    from PIL import Image

    with Image.open(png) as image:
        assert image.size == (1200, 3050)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colours) > 200  # text, the figures, their colours: a blank or broken page has a handful
    if os.environ.get("DLBENCH_REPORT_PNG"):  # how docs/report.png is made
        shutil.copy(png, os.environ["DLBENCH_REPORT_PNG"])


def test_compare_refuses_a_validate_report_with_one_line(fleet_dir, dlbench_cli):
    done = dlbench_cli("compare", fleet_dir / "node1.json", fleet_dir / "node2.json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "node1.json: a dlbench validate report, not a run result" in line
