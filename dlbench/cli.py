"""The `dlbench` command line.

Each subcommand lives in `dlbench/commands/<name>.py` with `add_arguments(parser)` and `run(args) -> int`.
Those modules keep torch out of their top-level imports so that `--help`, `list` and `env` answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from dlbench import __version__
from dlbench.errors import UserError

# subcommand name -> (module, one-line help)
COMMANDS = {
    "run": ("dlbench.commands.run", "train a reference workload and report throughput, MFU, memory and energy"),
    "scaling": (
        "dlbench.commands.scaling",
        "run a workload on 1, 2, 4, ... GPUs (torchrun, DDP) and report scaling efficiency",
    ),
    "list": ("dlbench.commands.listing", "list the reference workloads"),
    "env": ("dlbench.commands.env", "show torch, CUDA, cuDNN, driver, GPUs, CPU and memory"),
    "validate": (
        "dlbench.commands.validate",
        "accept or reject this GPU host with measured evidence; summarize a fleet",
    ),
    "compare": ("dlbench.commands.compare", "compare results: per-workload regression verdicts from step-time samples"),
    "convert": ("dlbench.commands.convert", "convert pytest-benchmark JSON to dlbench results and back"),
    "report": ("dlbench.commands.report", "write a self-contained HTML report and a Markdown summary of results"),
    "exporter": ("dlbench.commands.exporter", "serve GPU and host metrics for Prometheus (/metrics, /health, /live)"),
}


# subcommand -> (module it cannot work without, the pip extra that installs it). The base install is what the
# exporter needs; a monitored host should not have to carry PyTorch (gigabytes with CUDA) to be watched.
NEEDS = {"run": ("torch", "train")}


def _missing_extra(command: str) -> str | None:
    module, extra = NEEDS.get(command, (None, None))
    if module is None or importlib.util.find_spec(module) is not None:
        return None
    return (
        f"'dlbench {command}' needs {module}, which this installation lacks: "
        f"pip install 'dlbench[{extra}]' (or, in a checkout, pip install -e '.[{extra}]')"
    )


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line of advice rather than the whole usage block."""

    def error(self, message: str) -> None:  # pragma: no cover - exercised through the CLI tests
        self.exit(2, f"{self.prog}: error: {message}\n(see '{self.prog} --help')\n")


class _CommandParser(_Parser):
    """A subcommand's parser: it reports options it does not know itself. argparse would hand them up to the
    top-level parser, whose error points to `dlbench --help` rather than to the subcommand's options."""

    def parse_known_args(self, args=None, namespace=None):
        parsed, unknown = super().parse_known_args(args, namespace)
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return parsed, unknown


def build_parser(loaded=tuple(COMMANDS)) -> argparse.ArgumentParser:
    """The CLI with the options of the subcommands in LOADED (all by default); the others are listed with their help
    line but their modules are not imported, so that each command's start-up pays for its own imports alone."""
    parser = _Parser(prog="dlbench", description="Provision-to-proof toolkit for GPU servers: benchmark and monitor.")
    parser.add_argument("--version", action="version", version=f"dlbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_CommandParser)
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name in loaded:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            command_parser.set_defaults(_module=module)
    return parser


def _command_named(argv: list[str]) -> str | None:
    """The subcommand ARGV names: the first word that is not an option (the top-level options take no value)."""
    first = next((word for word in argv if not word.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_named(argv)
    # without a known command, parse_args exits (--help, --version or an error), for which no subcommand is needed
    args = build_parser(loaded=[command] if command else []).parse_args(argv)
    args.argv = argv  # as typed: `validate --bundle` records it to re-run
    missing = _missing_extra(args.command)
    if missing:
        print(f"dlbench: error: {missing}", file=sys.stderr)
        return 2
    try:
        return int(args._module.run(args) or 0)
    except UserError as error:
        print(f"dlbench: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt as error:
        name = getattr(error, "signal_name", "SIGINT")  # dlbench run names SIGTERM too (dlbench/train/interrupt.py)
        print(f"dlbench: interrupted by {name}", file=sys.stderr)
        return getattr(error, "exit_code", 130)
    except BrokenPipeError:
        return 141
