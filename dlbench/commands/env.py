"""`dlbench env`: the software and hardware a result would be measured on; with --spec, against a declared host
spec (exit 1 when a field fails); with --write-spec, the spec of this host written to a file."""

from __future__ import annotations

import json
from pathlib import Path


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the environment (or the --spec checks) as JSON")
    parser.add_argument(
        "--spec",
        type=Path,
        metavar="FILE",
        help="check this host against a host spec (hardware and software; stack.yml also reads)",
    )
    parser.add_argument("--write-spec", type=Path, metavar="FILE", help="write this host's spec to FILE (YAML)")
    parser.add_argument(
        "--python",
        metavar="PATH",
        help="with --spec/--write-spec: read torch and cuDNN from this Python's environment "
        "(e.g. the conda environment the work runs in) rather than dlbench's own",
    )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB"


def run(args) -> int:
    if args.spec or args.write_spec:
        return _spec(args)
    from dlbench import environment

    env = environment.collect()
    if args.json:
        print(json.dumps(env, indent=2))
        return 0
    from rich.table import Table

    from dlbench.commands.console import table_console

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
    table_console().print(table)
    return 0


def _spec(args) -> int:
    import shutil
    import socket

    from dlbench import atomic
    from dlbench.errors import UserError
    from dlbench.hostspec import facts, spec, write
    from dlbench.hostspec.reader import host_reader
    from dlbench.validate import spec as spec_checks

    if args.write_spec:
        atomic.check_writable(args.write_spec)
    declared = spec.load(args.spec) if args.spec else None  # bad input ends here, before anything is written
    if args.python and not shutil.which(args.python):
        raise UserError(f"--python {args.python}: no such executable")
    host = facts.collect(host_reader(args.python))
    if args.write_spec:
        atomic.write_text(args.write_spec, write.to_yaml(write.spec_of(host), socket.gethostname()))
    if declared is None:
        return 0
    report = spec_checks.report(declared, host, args.spec)
    if args.json:
        print(json.dumps(report.verdicts(), indent=2))
    else:
        from dlbench.commands.console import table_console
        from dlbench.validate import writers

        table_console().print(writers.console_table(report, command=f"dlbench env --spec {args.spec}"))
    return report.exit_code
