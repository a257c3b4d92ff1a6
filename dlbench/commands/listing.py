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
            "cpu_batch_size": w.default_sizes(on_cpu=True)[0],
            "cpu_seq_len": None if w.is_image else w.default_sizes(on_cpu=True)[1],
            "description": w.description,
        }
        for w in WORKLOADS.values()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    from rich import box
    from rich.table import Table

    from dlbench.commands.console import table_console

    console = table_console()
    wide = console.width >= 160  # the description only where it fits beside the rest, wrapping rather than cutting it
    table = Table(title="dlbench workloads", box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ["name", "task", "unit", "parameters", "input", "batch", "on a CPU"] + (["description"] if wide else [])
    for column in columns:
        table.add_column(
            column,
            justify="right" if column in ("parameters", "batch") else "left",
            no_wrap=column != "description",  # the one column that gives way: its text wraps, figures are never cut
        )
    for row in rows:
        on_cpu = f"batch {row['cpu_batch_size']}" + (f", {row['cpu_seq_len']} tokens" if row["cpu_seq_len"] else "")
        cells = [
            row["name"],
            row["task"],
            row["sample_unit"],
            f"{row['parameters']:,}",
            row["input"],
            str(row["default_batch_size"]),
            on_cpu,
        ]
        table.add_row(*cells, *([row["description"]] if wide else []))
    console.print(table)
    return 0
