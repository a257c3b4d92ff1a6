"""`dlbench convert`: pytest-benchmark JSON to dlbench results, and dlbench results to pytest-benchmark JSON.

dlbench convert .benchmarks/Linux-CPython-3.12-64bit/0001_x.json --to dlbench --output runs/micro/
dlbench convert runs/*.json --to pytest-benchmark --output .benchmarks/Linux-CPython-3.12-64bit/0002_runs.json
"""

from __future__ import annotations

import re
from pathlib import Path

from dlbench.errors import UserError


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", help="result JSON, pytest-benchmark JSON, or directories of them")
    parser.add_argument(
        "--to",
        required=True,
        choices=("dlbench", "pytest-benchmark"),
        help="dlbench: one result file per benchmark, in the --output directory; pytest-benchmark: "
        "one file that pytest --benchmark-compare reads",
    )
    parser.add_argument("--output", required=True, metavar="PATH", help="a directory (--to dlbench) or a file")


def _file_name(result: dict) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(result["run_id"])).strip("_")[:150] + ".json"


def run(args) -> int:
    from dlbench.atomic import check_writable, write_json
    from dlbench.results import pytest_benchmark
    from dlbench.results.load import load_paths

    output = Path(args.output)
    if args.to == "dlbench":
        if not output.is_dir():
            raise UserError(f"--output {output}: not a directory (--to dlbench writes one file per benchmark)")
        check_writable(output / ".dlbench-convert")
    else:
        check_writable(output)
    results = load_paths(args.inputs)
    if args.to == "dlbench":
        for result in results:
            write_json(output / _file_name(result), result)
        print(f"wrote {len(results)} result(s) to {output}")
        return 0
    document, left_out = pytest_benchmark.from_results(results)
    if not document["benchmarks"]:
        raise UserError("no result kept its step-time samples (metrics.step_times_seconds): nothing to convert")
    write_json(output, document)
    for run_id in left_out:
        print(f"left out {run_id}: the result has no step-time samples")
    print(f"wrote {len(document['benchmarks'])} benchmark(s) to {output}")
    return 0
