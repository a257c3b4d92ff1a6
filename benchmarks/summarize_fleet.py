"""How long does `dlbench validate summarize` take on a large fleet? 10,000 reports, against reading them alone.

The reports are written by the validate report writer (Report / CheckResult -> JSON, as `dlbench validate --json`
writes them) with what an 8-GPU host's report holds: about 45 checks, figures for each GPU, and a temperature,
clock and power series of 60 samples per GPU. Some hosts fail a check, one GPU in 200 is slow, one host in 500
has another VBIOS. Baseline: reading and parsing the same files (json.loads of each), which any summary must do;
the target is summarize under 5 s for 10,000 reports, and the ratio says what the summary adds on top of reading.
Rounds alternate (ABAB...) so drift of the machine hits both alike; the median of the rounds is reported.
With --compare-with FILE (an earlier summarize.py, e.g. `git show main:dlbench/validate/summarize.py`), that version
runs in the same rounds on the same files (ABCABC...), and the ratio before/after is reported beside the figures.
Each summary's CPU seconds, of the main process and of its workers, are reported too: on a machine shared with other
work they say what a summary costs, and what it would take on N free cores (the workers' share divided by N).

    python benchmarks/summarize_fleet.py --reports 10000 --rounds 3
    git show main:dlbench/validate/summarize.py > /tmp/summarize_before.py
    python benchmarks/summarize_fleet.py --reports 1000 --compare-with /tmp/summarize_before.py
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dlbench import atomic
from dlbench.validate import summarize
from dlbench.checks import FAIL, INFO, PASS, CheckResult
from dlbench.validate.report import Report

GPUS = 8
FAMILIES = {
    "stack": 8,
    "inventory": 8,
    "power": 1,
    "compute": 6,
    "memory": 6,
    "interconnect": 3,
    "link": 1,
    "fabric": 3,
    "health": 9,
}
TARGET_SECONDS = 5.0


def host_report(n: int) -> dict:
    vbios = "96.00.74.00.0B" if n % 500 == 7 else "96.00.99.00.01"
    report = Report(
        {
            "hostname": f"gpu{n:05d}",
            "driver_version": "580.95.05",
            "os": "Linux-6.8.0-45-generic-x86_64-with-glibc2.39",
            "torch": {"version": "2.9.0", "cuda": "13.0", "cudnn": "9.13.0"},
            "gpus": [
                {
                    "index": i,
                    "name": "NVIDIA H100 80GB HBM3",
                    "vbios": vbios,
                    "uuid": f"GPU-{n:08x}-{i:04x}",
                    "pci_bus_id": f"0000:{0x18 + i:02x}:00.0",
                    "memory_total_bytes": 85520809984,
                }
                for i in range(GPUS)
            ],
        },
        {"level": "quick"},
    )
    for family, count in FAMILIES.items():
        for k in range(count):
            rate = family in ("compute", "memory", "interconnect")
            per_gpu = {str(i): 780.0 - (60.0 if (n % 200 == 3 and i == 5) else 0.0) + k for i in range(GPUS)}
            verdict = FAIL if (family == "health" and k == 0 and n % 97 == 0) else PASS if rate else INFO
            report.add(
                CheckResult(
                    f"{family}.check_{k}",
                    f"{family} check {k}",
                    verdict,
                    min(per_gpu.values()),
                    "TFLOP/s" if rate else "",
                    expected=">= 715 TFLOP/s",
                    source="published reference",
                    per_gpu=per_gpu,
                    detail="GPU 2: 2 uncorrectable" if verdict == FAIL else "",
                )
            )
    series = {
        str(i): [
            {
                "check": "compute.matmul_bf16",
                "t": float(t),
                "temperature_celsius": 60.0 + t / 10,
                "sm_clock_mhz": 1980.0,
                "power_watts": 650.0,
            }
            for t in range(60)
        ]
        for i in range(GPUS)
    }
    report.add(
        CheckResult(
            "health.temperature", "highest GPU temperature under load", INFO, 66.0, "°C", data={"series": series}
        )
    )
    report.finished = report.started + 240
    return report.to_dict()


def write_fleet(folder: Path, count: int) -> int:
    total = 0
    for n in range(count):
        path = folder / f"gpu{n:05d}.json"
        atomic.write_json(path, host_report(n))
        total += path.stat().st_size
    return total


def read_only(folder: Path) -> float:
    start = time.perf_counter()
    for path in sorted(folder.rglob("*.json")):
        json.loads(path.read_text())
    return time.perf_counter() - start


def summarize_once(folder: Path, out: Path, module=summarize) -> tuple[float, int, float, float]:
    """Seconds, exit code, and the CPU seconds of this process and of its worker processes (reaped when the summary
    ends): on a shared machine the wall time says how loaded it was, the CPU seconds what the summary costs."""
    start, before = time.perf_counter(), os.times()
    with contextlib.redirect_stdout(io.StringIO()):
        code = module.main(folder, 0.05, out / "summary.json", out / "matrix.csv")
    seconds, after = time.perf_counter() - start, os.times()
    main_cpu = after.user - before.user + after.system - before.system
    workers_cpu = after.children_user - before.children_user + after.children_system - before.children_system
    return seconds, code, main_cpu, workers_cpu


def median(rounds: list[tuple], field: int) -> float:
    """The median over the rounds of one field of `summarize_once`'s answer."""
    return round(statistics.median(answer[field] for answer in rounds), 3)


def load_module(path: Path):
    """Another version of summarize.py, imported under its own name so both run in one process."""
    spec = importlib.util.spec_from_file_location("summarize_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its worker processes find its functions by this name
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare-with", type=Path, metavar="FILE", help="an earlier summarize.py to run beside")
    args = parser.parse_args()
    before = load_module(args.compare_with) if args.compare_with else None
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "reports", Path(tmp) / "out"
        folder.mkdir()
        out.mkdir()
        written = write_fleet(folder, args.reports)
        baseline, measured, earlier = [], [], []
        for _ in range(args.rounds):
            baseline.append(read_only(folder))
            if before is not None:
                earlier.append(summarize_once(folder, out, before))
                previous = (out / "summary.json").read_bytes()
            measured.append(summarize_once(folder, out))
            if before is not None and (out / "summary.json").read_bytes() != previous:
                raise SystemExit("the two versions wrote different summaries")
        summary = json.loads((out / "summary.json").read_text())
    result = {
        "reports": args.reports,
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "mean_report_kib": round(written / args.reports / 1024, 1),
        "read_and_parse_seconds": round(statistics.median(baseline), 3),
        "summarize_seconds": median(measured, 0),
        "summarize_cpu_seconds": {"main": median(measured, 2), "workers": median(measured, 3)},
        "ratio_summarize_to_read": round(median(measured, 0) / statistics.median(baseline), 2),
        **(
            {
                "before_seconds": median(earlier, 0),
                "before_cpu_seconds": {"main": median(earlier, 2), "workers": median(earlier, 3)},
                "ratio_before_to_after": round(median(earlier, 0) / median(measured, 0), 2),
                "ratio_before_to_after_cpu": round(
                    (median(earlier, 2) + median(earlier, 3)) / (median(measured, 2) + median(measured, 3)), 2
                ),
            }
            if earlier
            else {}
        ),
        "target_seconds": TARGET_SECONDS,
        "within_target": median(measured, 0) < TARGET_SECONDS,
        "exit_code": measured[-1][1],
        "failed_hosts": summary["host_verdicts"]["FAIL"],
        "outliers": len(summary["outliers"]),
        "vbios_differing": summary["versions"]["VBIOS"]["differing"]
        and sum(len(h) for h in summary["versions"]["VBIOS"]["differing"].values()),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
