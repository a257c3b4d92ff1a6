"""The command line as a user meets it: a real subprocess, exit codes, and no tracebacks."""

import json
import subprocess
import sys

import pytest


def dlbench(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "dlbench", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_commands():
    result = dlbench("--help")
    assert result.returncode == 0
    for command in ("run", "list", "env"):
        assert command in result.stdout


def test_list_json_has_every_workload_with_unit_and_parameters():
    result = dlbench("list", "--json")
    assert result.returncode == 0
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["resnet18"]["parameters"] == 11_689_512
    assert rows["gpt2"]["sample_unit"] == "tokens"
    assert rows["resnet50"]["sample_unit"] == "images"


def test_cli_does_not_import_torch_for_help_list_env():
    code = (
        "import sys, contextlib, io\n"
        "from dlbench.cli import main\n"
        "for argv in (['list'], ['env', '--json']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(argv)\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_env_json_reports_torch_build_and_host():
    result = dlbench("env", "--json")
    assert result.returncode == 0
    env = json.loads(result.stdout)
    import torch

    assert env["torch"]["version"] == torch.__version__
    assert env["cpu"]["logical_cores"] >= 1
    assert env["memory_total_bytes"] > 0


@pytest.mark.parametrize(
    ("argv", "help_command"),
    [
        (["run", "resnet18", "--bogus"], "dlbench run --help"),
        (["exporter", "--bogus", "1"], "dlbench exporter --help"),
        (["list", "extra"], "dlbench list --help"),
        (["--bogus", "list"], "dlbench --help"),
    ],
)
def test_a_wrong_option_points_to_the_help_of_the_command_it_was_given_to(argv, help_command):
    result = dlbench(*argv)
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
    assert f"(see '{help_command}')" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 2


def test_unknown_workload_suggests_the_closest_name():
    result = dlbench("run", "resnt18")
    assert result.returncode == 2
    assert "did you mean 'resnet18'" in result.stderr
    assert "Traceback" not in result.stderr


def _command_paths(parser=None, prefix=()):
    """Every command and sub-command the parser knows, found by walking argparse's own tree: a command added later
    is covered without editing this list."""
    import argparse

    from dlbench.cli import build_parser

    parser = parser or build_parser()
    paths = [prefix]
    for action in parser._actions:  # argparse keeps its subparsers here; no public accessor exists
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                paths += _command_paths(child, prefix + (name,))
    return paths


def test_the_walk_finds_every_command_and_the_sub_commands():
    from dlbench.cli import COMMANDS

    paths = _command_paths()
    assert {path[0] for path in paths if path} == set(COMMANDS)
    assert ("validate", "summarize") in paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda path: " ".join(path) or "dlbench")
def test_every_help_prints_and_exits_0(path):
    """argparse %-formats help strings when it prints them: a bare % (e.g. 'default 5%') is a traceback on --help
    and nowhere else."""
    result = dlbench(*path, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and "Traceback" not in result.stdout
    assert result.stdout.startswith(f"usage: dlbench{' ' if path else ''}{' '.join(path)}")


def test_the_run_commands_dist_timeout_default_is_the_process_groups():
    """commands/run.py writes the default out (importing train/distributed.py would import torch for --help)."""
    from dlbench.commands import run
    from dlbench.train.distributed import DEFAULT_TIMEOUT_SECONDS

    import argparse

    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    assert parser.parse_args(["resnet18"]).dist_timeout == DEFAULT_TIMEOUT_SECONDS
