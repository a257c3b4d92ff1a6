"""`dlbench env`: the software and hardware a result would be measured on."""

from __future__ import annotations

import json


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the environment as JSON")


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def run(args) -> int:
    from dlbench import environment

    env = environment.collect()
    if args.json:
        print(json.dumps(env, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dlbench environment", show_header=False)
    table.add_column("item", style="bold")
    table.add_column("value")
    torch_build = env["torch"]
    rows = [
        ("host", env["hostname"]),
        ("os", env["os"]),
        ("python", env["python"]),
        ("cpu", f"{env['cpu']['model']} ({env['cpu']['physical_cores']} cores, {env['cpu']['logical_cores']} threads)"),
        ("memory", _gib(env["memory_total_bytes"])),
        ("torch", torch_build["version"] or "not installed"),
        ("torch CUDA", torch_build["cuda"] or "none (CPU build)"),
        ("cuDNN", torch_build["cudnn"] or "none"),
        ("driver", env["driver_version"] or "none"),
        ("NVML", env["nvml"]),
    ]
    rows += [(f"gpu {g['index']}", f"{g['name']} ({_gib(g['memory_total_bytes'])}, {g['uuid']})") for g in env["gpus"]]
    if not env["gpus"]:
        rows.append(("gpus", "none"))
    for name, value in rows:
        table.add_row(name, str(value))
    Console().print(table)
    return 0
