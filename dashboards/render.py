#!/usr/bin/env python3
"""Draw the dashboards' panels to PNG from a running Prometheus, without Grafana.

python dashboards/render.py --prometheus http://127.0.0.1:9090 --out /tmp/panels [--since 1h] [--var hostname=gpu07]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dlbench_dashboards import prom, queries  # noqa: E402


def _duration(text: str) -> float:
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if not match:
        raise argparse.ArgumentTypeError(f"a duration such as 30m or 6h, not {text!r}")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090", help="Prometheus base URL")
    parser.add_argument("--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--since", type=_duration, default=3600, help="time range ending now (default 1h)")
    parser.add_argument("--scrape-interval", type=_duration, default=15, help="for $__rate_interval (default 15s)")
    parser.add_argument("--dashboard", action="append", help="file name in grafana/dashboards (default: all)")
    parser.add_argument("--var", type=_assignment, action="append", default=[], help="template variable, NAME=VALUE")
    args = parser.parse_args(argv)

    from dlbench_dashboards import render

    boards = queries.dashboards()
    names = args.dashboard or sorted(boards)
    unknown = [n for n in names if n not in boards]
    if unknown:
        print(
            f"render.py: error: unknown dashboard {unknown[0]!r} (known: {', '.join(sorted(boards))})", file=sys.stderr
        )
        return 2
    end = time.time()
    client = prom.Prometheus(args.prometheus)
    try:
        for name in names:
            path, drawn = render.render_dashboard(
                boards[name], name, client, end - args.since, end, args.out, args.scrape_interval, dict(args.var)
            )
            print(f"{path}: {drawn} panels")
    except prom.PrometheusError as error:
        print(f"render.py: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
