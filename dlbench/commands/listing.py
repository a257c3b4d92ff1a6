"""`dlbench list`: the workloads, their sample unit and size."""

from __future__ import annotations

import json

from dlbench.workloads import WORKLOADS


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the list as JSON")


def run(args) -> int:
    rows = [
        {
            "name": w.name,
            "task": w.task,
            "sample_unit": w.sample_unit,
            "parameters": w.parameters,
            "input": f"{w.channels}x{w.image_size}x{w.image_size}" if w.is_image else f"{w.seq_len} tokens",
            "default_batch_size": w.default_batch_size,
            "description": w.description,
        }
        for w in WORKLOADS.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dlbench workloads")
    for column in ("name", "task", "unit", "parameters", "input", "batch", "description"):
        table.add_column(column, justify="right" if column in ("parameters", "batch") else "left")
    for row in rows:
        table.add_row(row["name"], row["task"], row["sample_unit"], f"{row['parameters']:,}", row["input"],
                      str(row["default_batch_size"]), row["description"])
    Console().print(table)
    return 0
