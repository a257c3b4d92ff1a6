"""dlbench's tokens/s per GPU over torchtitan's, for one rung of benchmarks/gpu_reference.sh's side-by-side run.

torchtitan logs a line per logged step (torchtitan/components/metrics.py, MetricsProcessor.log):
    step: 90  loss:  7.12345  grad_norm:  1.2345  memory: 61.23GiB(77.41%)  tps: 5,762  tflops: 333.63  mfu: 33.72%
with ANSI colours around the fields; tps is tokens per second per device. Its benchmark reads steps 90 to 100, so
the figure here is the median tps of the logged steps from --from-step on (default 20: compilation and warm-up are
over by then).

Usage: python benchmarks/torchtitan_ratio.py DLBENCH_RESULT.json TORCHTITAN_LOG [--from-step N]
Prints one JSON object: dlbench's and torchtitan's tokens/s/GPU and their ratio (the issue's goal: within 5%).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEP_LINE = re.compile(r"step:\s*(\d+)\s.*?\btps:\s*([\d,]+)")


def torchtitan_tps(log_text: str, from_step: int) -> tuple[float, int]:
    """The median tokens/s/GPU over the logged steps >= from_step, and how many steps that was."""
    rates = []
    for line in ANSI.sub("", log_text).splitlines():
        found = STEP_LINE.search(line)
        if found and int(found.group(1)) >= from_step:
            rates.append(float(found.group(2).replace(",", "")))
    if not rates:
        raise ValueError(f"no torchtitan step line at step {from_step} or later (is this torchtitan's log?)")
    return statistics.median(rates), len(rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result")
    parser.add_argument("log")
    parser.add_argument("--from-step", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        with open(args.result, encoding="utf-8") as handle:
            result = json.load(handle)
        with open(args.log, encoding="utf-8", errors="replace") as handle:
            theirs, steps = torchtitan_tps(handle.read(), args.from_step)
    except (OSError, ValueError) as error:
        print(f"torchtitan_ratio: {error}", file=sys.stderr)
        return 2
    ours = (result.get("llm") or {}).get("tokens_per_second_per_gpu")
    if ours is None:
        print(
            f"torchtitan_ratio: {args.result} has no llm.tokens_per_second_per_gpu (status {result.get('status')})",
            file=sys.stderr,
        )
        return 2
    print(
        json.dumps(
            {
                "workload": result["workload"]["name"],
                "precision": result["config"]["precision"],
                "compile": result["config"]["compile"],
                "dlbench_tokens_per_second_per_gpu": ours,
                "torchtitan_tokens_per_second_per_gpu": theirs,
                "torchtitan_steps": steps,
                "ratio": ours / theirs,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
