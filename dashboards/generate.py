#!/usr/bin/env python3
"""Write the dashboards' JSON from code: `python dashboards/generate.py` (or `--check` to fail on drift).

The JSON files are committed so Grafana can load them without Python; a test runs `--check`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

try:
    from dlbench_dashboards import fleet, node, training
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
except ImportError as error:  # the SDK is a development tool, in the `test` extra only
    sys.exit(f"generate.py: error: {error.name} is missing: pip install -c constraints.txt -e '.[test]'")

OUTPUT_DIR = HERE / "grafana" / "dashboards"
DASHBOARDS = {
    "gpu-fleet-overview.json": fleet.build,
    "gpu-node-detail.json": node.build,
    "training-run.json": training.build,
}


def render(build) -> str:
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from the code")
    args = parser.parse_args(argv)
    stale = []
    for filename, build in DASHBOARDS.items():
        path = OUTPUT_DIR / filename
        text = render(build)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(filename)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text)
        tmp.replace(path)  # atomic: Grafana's provisioner may be reading the folder
    if stale:
        print(f"generate.py: out of date: {', '.join(stale)} (run python dashboards/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
