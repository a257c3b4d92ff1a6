"""Every command README.md, CONTRIBUTING.md and docs/*.md show in a fenced block, found by reading them, so that a new page or example
is covered without anyone listing it, and a broken one fails CI. Each is checked the strongest way this machine
allows:

- run as written: `cp`, `. .venv/bin/activate`, `export` (JupyterLab's token from openssl); in the slow tier every
  `dlbench run` and `dlbench scaling`, on the CPU where the text shows GPUs (`--gpus N` becomes two processes on the
  CPU);
- parsed by the program's own parser where running needs a cluster, a GPU or a server that stays up: dlbench's
  argument parser (the workload looked up; for the CLI reference's synopses, the options its --help lists), and the
  dlbench command inside `docker run`; in the slow tier, where each takes seconds, torchrun's parser
  (`torch.distributed.run`), `make -n`, pytest's `--collect-only` and `ansible-playbook --syntax-check`;
- ALLOWED: the few that cannot run here, each with its reason.

examples/ holds files rather than commands: tests/test_examples.py runs the Slurm script and parses the PyTorchJob's
command.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from ansible_env import ansible_environment
from conftest import run_dlbench
from doc_commands_run_elsewhere import RUN_ELSEWHERE
from dlbench.cli import build_parser
from dlbench.train.device import cpu_emulation_warning
from dlbench.workloads import get_workload

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHELL_BLOCKS = {"", "sh", "shell", "bash", "console"}
# A CLI synopsis, not a command: the text is followed, after a run of spaces, by prose rather than a # comment
SYNOPSIS = re.compile(r"\S {2,}[^#\s]")
# ... or one with placeholders: [--json], FILE, RESULTS...
PLACEHOLDER = re.compile(r"^(\[.*|[A-Z]{3,}(\.\.\.)?)$")
# Output shown in a block ("torch-build: the cpu build ...", "dlbench: error: ..."), or an option list
OUTPUT = re.compile(r"^([\w.-]+:|--)")

ALLOWED = {
    "cd dashboards && GRAFANA_ADMIN_PASSWORD='a long secret' docker compose up -d": "pulls Prometheus and Grafana from Docker Hub; tests/test_dashboards_deploy.py checks the compose file and "
    "tests/test_dashboards_live.py runs the same Prometheus configuration and dashboards",
    "docker buildx build -f images/Dockerfile --target pytorch .": "the CUDA variant's base image comes from a registry; tests/test_images_build.py builds the CPU variant "
    "from the same Dockerfile with buildah (slow tier)",
    "docker login ghcr.io": "needs a registry account",
    "ansible-vault create group_vars/all/vault.yml": "interactive: asks for a password and opens an editor",
    "duplicates --change --base main": "a code-reading tool of the development machines, not in the `test` extra; it "
    "reads the tree, writes nothing and always exits 0",
    "scripts/torch-build.sh download-cpu python3 /tmp/torch-wheels 3.11 2.36": "downloads from PyTorch's CPU index; tests/test_torch_build.py runs download-cpu against local indexes",
    "python benchmarks/summarize_fleet.py --reports 10000 --rounds 3": "writes 1.2 GB of reports and takes minutes; "
    "tests/test_validate_summarize.py runs the same benchmark at 400 reports",
    "git show main:dlbench/validate/summarize.py > /tmp/summarize_before.py": "needs a clone with a main branch to "
    "compare against; the next line's --compare-with runs in tests/test_validate_summarize.py",
    "python benchmarks/summarize_fleet.py --reports 1000 --compare-with /tmp/summarize_before.py": "tests/test_validate_summarize.py runs --compare-with at 400 reports against this summarize.py",
}
# `dlbench run` and `dlbench scaling` commands parsed but not run, with the reason
NOT_RUN = {
    "dlbench run resnet50 --data /data/imagenet/train --workers 8 --channels-last": "needs ImageNet; tests/test_data.py trains on an ImageFolder tree it makes",
    "dlbench run gpt2-medium --gpus 8 --fsdp --precision bf16": "gpt2-medium with AdamW in two CPU processes needs more memory than CI has; the FSDP path runs on gpt2-tiny "
    "(the next command in docs/distributed.md)",
    "dlbench scaling resnet50 --gpus 1,2,4,8 --output scaling.json": "four ResNet-50 runs on the CPU take minutes; `dlbench scaling mnist-mlp --nproc 2 --device cpu` runs",
    "dlbench run llama3-1b --mamf-from validate.json": "reads the report of the `dlbench validate` before it, and llama3-1b outgrows a CPU; tests/test_mamf.py "
    "runs llama-tiny with --mamf-from on a report validate's own code writes",
}


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    text: str
    synopsis: bool = False

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)

    def __str__(self):
        return f"{self.doc}:{self.line}: {self.text}"


def doc_commands() -> list[Command]:
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for block in FENCE.finditer(text):
            if block.group(1) not in SHELL_BLOCKS:
                continue
            first = text.count("\n", 0, block.start()) + 2
            pending, start = "", 0
            for offset, raw in enumerate(block.group(2).splitlines()):
                if not pending:
                    start = first + offset
                if raw.rstrip().endswith("\\"):
                    pending += (raw.strip() if pending else raw.rstrip())[:-1].rstrip() + " "
                    continue
                line, pending = (pending + raw.strip()) if pending else raw, ""
                if not line.strip() or line.startswith((" ", "#")) or OUTPUT.match(line):
                    continue  # a synopsis' continuation, a comment, output
                uncommented = line.split(" #")[0].rstrip()
                synopsis = bool(SYNOPSIS.search(uncommented)) or any(
                    PLACEHOLDER.match(word) for word in uncommented.split()
                )
                command = re.split(r" {2,}", line)[0] if synopsis else _without_comment(line).removesuffix(" &")
                found.append(Command(str(doc.relative_to(ROOT)), start, command.strip(), synopsis))
    return found


def _without_comment(line: str) -> str:
    """The command as the doc writes it (its quotes kept), less a trailing # comment, spaces collapsed."""
    words = shlex.split(line, comments=True)
    for match in re.finditer(r"\s#", line):
        candidate = line[: match.start()]
        try:
            if shlex.split(candidate) == words:
                return " ".join(candidate.split())
        except ValueError:  # the # is inside quotes
            continue
    return " ".join(line.split())


COMMANDS = doc_commands()


def _ids(commands):
    return [f"{c.doc}:{c.line}" for c in commands]


def _distinct(commands: list[Command]) -> list[Command]:
    """One of each command text: README.md and docs/compare.md show some of the same lines."""
    return list({c.text: c for c in reversed(commands)}.values())[::-1]


def _program(command: Command) -> str:
    return command.argv[0]


def _of(*programs: str) -> list[Command]:
    return _distinct([c for c in COMMANDS if c.text not in ALLOWED and _program(c) in programs])


HANDLED = {
    "dlbench",
    ".venv/bin/dlbench",
    "make",
    "pytest",
    ".venv/bin/python",
    ".venv/bin/ruff",
    "ansible-playbook",
    "torchrun",
    "docker",
    "cp",
    ".",
    "export",
}


def test_the_docs_show_commands_and_each_is_checked_or_allowed_with_a_reason():
    assert len(COMMANDS) > 50, "the extraction no longer finds the docs' commands"
    unchecked = [str(c) for c in COMMANDS if c.text not in ALLOWED and _program(c) not in HANDLED]
    assert not unchecked, "commands in the docs that no test checks (add a check or an ALLOWED reason):\n" + "\n".join(
        unchecked
    )
    stale = set(ALLOWED) - {c.text for c in COMMANDS}
    stale |= (set(NOT_RUN) | set(RUN_ELSEWHERE)) - {c.text for c in COMMANDS}
    assert not stale, f"ALLOWED, NOT_RUN or RUN_ELSEWHERE name commands the docs no longer show: {stale}"


def _parse_dlbench(argv: list[str], where: str):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit:
        pytest.fail(f"{where}: dlbench's parser refuses it (exit {exit.code})")
    if getattr(args, "workload", None):
        get_workload(args.workload)
    return args


DLBENCH = _of("dlbench", ".venv/bin/dlbench")


@pytest.mark.parametrize("command", DLBENCH, ids=_ids(DLBENCH))
def test_every_dlbench_command_parses(command):
    if command.synopsis:  # the CLI reference: the subcommand exists and has every option the synopsis names
        (subcommands,) = [action for action in build_parser()._actions if action.dest == "command"]
        assert command.argv[1] in subcommands.choices, f"{command}: no such subcommand"
        parser = subcommands.choices[command.argv[1]]
        # an action of the subcommand (`dlbench validate pairs DIR --spec FILE`) has options of its own
        actions = [a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if actions and len(command.argv) > 2 and command.argv[2] in actions[0]:
            parser = actions[0][command.argv[2]]
        help_text = parser.format_help()  # as `--help` prints it
        options = set(re.findall(r"(--[a-z][a-z0-9-]*)", command.text))
        missing = {option for option in options if not re.search(rf"{option}\b", help_text)}
        assert not missing, f"{command}: `dlbench {command.argv[1]} --help` has no {missing}"
        return
    _parse_dlbench(command.argv[1:], str(command))


def _on_the_cpu(argv: list[str]) -> list[str]:
    """The CPU variant of a command the text shows on GPUs: `--gpus N` becomes two processes on the CPU (gloo),
    `--gpus 1,2,4` the process counts 1,2; a batch size sized for a GPU gives way to the workload's CPU size, and a
    precision this CPU only emulates to fp32. Such a variant proves that the command starts, trains and ends on
    every rank, so it times a few steps unless the text gives a window: the GPU's default window (30 s timed, 60 s
    of warm-up at most) means nothing on a CPU, where ResNet-50 on two ranks spends two minutes of CPU time on it.
    The CPU's default window runs in the commands the docs show for the CPU (`dlbench run resnet18`, and the
    scaling and FSDP lines of docs/distributed.md, which tests/test_distributed.py's default-settings jobs run)."""
    cpu = list(argv)
    shown_on_gpus = "--device" not in cpu
    if "--batch-size" in cpu and "--device" not in cpu:
        at = cpu.index("--batch-size")
        del cpu[at : at + 2]
    if "--gpus" in cpu:
        at = cpu.index("--gpus")
        cpu[at : at + 2] = ["--nproc", "1,2" if "," in cpu[at + 1] else "2"]
    if "--device" not in cpu:
        cpu += ["--device", "cpu"]
        if "--precision" in cpu and cpu_emulation_warning(cpu[cpu.index("--precision") + 1], torch.device("cpu")):
            # bf16 on a GPU, emulated on a CPU without bf16 instructions (50 s a GPT-2 step on CI's AVX2 CPU, which
            # dlbench warns of): the CPU variant trains in fp32; tests/test_run.py runs bf16 on the CPU
            cpu[cpu.index("--precision") + 1] = "fp32"
    if shown_on_gpus and cpu != [*argv, "--device", "cpu"] and not {"--steps", "--warmup"} & set(cpu):
        cpu += ["--steps", "3", "--warmup", "1"]
    return cpu


# ... less those another test runs as written (tests/doc_commands_run_elsewhere.py)
RUNS = [
    c
    for c in DLBENCH
    if not c.synopsis and c.argv[1] in ("run", "scaling") and c.text not in NOT_RUN and c.text not in RUN_ELSEWHERE
]


@pytest.mark.slow  # each run trains for up to a minute on the CPU
@pytest.mark.parametrize("command", RUNS, ids=_ids(RUNS))
def test_every_dlbench_run_in_the_docs_runs_on_the_cpu(command, tmp_path):
    argv = _on_the_cpu(command.argv[1:])
    done = run_dlbench(*argv, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, f"{command} as `dlbench {' '.join(argv)}`: {done.stderr[-3000:]}"


TORCHRUN = _of("torchrun")


@pytest.mark.slow  # imports torch.distributed: half a minute on a loaded machine
@pytest.mark.parametrize("command", TORCHRUN, ids=_ids(TORCHRUN))
def test_torchrun_commands_parse_with_torchruns_parser_and_dlbenchs(command):
    from torch.distributed.run import get_args_parser

    args = get_args_parser().parse_args(command.argv[1:])
    assert args.module and args.training_script == "dlbench", command
    _parse_dlbench(args.training_script_args, str(command))


DOCKER = _of("docker")


@pytest.mark.parametrize("command", DOCKER, ids=_ids(DOCKER))
def test_the_dlbench_command_inside_docker_run_parses(command):
    # `docker run` needs the image and, as shown, a GPU: the command given to the image is what dlbench parses; a
    # run without one starts the image's own command (JupyterLab; tests/test_images_build.py runs it)
    argv = command.argv
    assert argv[1] == "run", f"{command}: only `docker run` is checked here; add a reason to ALLOWED"
    if "dlbench" in argv:
        _parse_dlbench(argv[argv.index("dlbench") + 1 :], str(command))
    else:
        assert argv[-1].startswith("dlbench/jupyterlab:"), command


MAKE = _of("make")


@pytest.mark.slow  # images/Makefile reads the spec and the engine: seconds to half a minute each
@pytest.mark.parametrize("command", MAKE, ids=_ids(MAKE))
def test_make_commands_name_real_targets_and_variables(command):
    # -n: the target exists and what it would run is printed, nothing runs
    done = subprocess.run(
        ["make", "-n", *command.argv[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("MAKE")},
    )
    assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"


def _pytest_args(command: Command) -> list[str]:
    """pytest's arguments, from `pytest ARGS` or `.venv/bin/python -m pytest ARGS`."""
    argv = command.argv
    return argv[3:] if argv[0].endswith("python") else argv[1:]


PYTEST = _of("pytest") + [c for c in _of(".venv/bin/python") if c.argv[1:3] == ["-m", "pytest"]]


def test_python_commands_in_the_docs_are_pytest_runs():
    # `.venv/bin/python` is handled only as `-m pytest`: anything else it runs would go unchecked
    others = [str(c) for c in _of(".venv/bin/python") if c.argv[1:3] != ["-m", "pytest"]]
    assert not others, f"python commands no test checks (add a check or an ALLOWED reason): {others}"


@pytest.mark.slow  # each collection imports torch and the micro-benchmarks
@pytest.mark.parametrize("command", PYTEST, ids=_ids(PYTEST))
def test_pytest_commands_collect_with_their_options(command, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *_pytest_args(command), "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"


RUFF = _of(".venv/bin/ruff")


@pytest.mark.parametrize("command", RUFF, ids=_ids(RUFF))
def test_ruff_commands_pass_on_the_tree(command):
    # as written, from the repository root, with the ruff of this environment; `ruff format` with --check, so that
    # the test reports what it would change rather than rewriting the checkout
    argv = [str(Path(sys.executable).parent / "ruff"), *command.argv[1:]]
    assert argv[1] in ("check", "format"), f"{command}: only `ruff check` and `ruff format` are checked here"
    if argv[1] == "format":
        argv.insert(2, "--check")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"


SETUP = _of("cp", ".")


@pytest.mark.parametrize("command", SETUP, ids=_ids(SETUP))
def test_setup_commands_run_as_written(command, tmp_path):
    argv = command.argv
    if argv[0] == ".":  # the environment make made: this test's own
        assert argv[1] == ".venv/bin/activate"
        assert (Path(sys.prefix) / "bin" / "activate").is_file()
        return
    shutil.copy(ROOT / argv[1], tmp_path / argv[2])


EXPORTS = _of("export")


@pytest.mark.parametrize("command", EXPORTS, ids=_ids(EXPORTS))
def test_export_commands_set_their_variable(command, tmp_path):
    # run by bash as written (JupyterLab's token from openssl): the variable is set and not empty
    name = command.argv[1].split("=")[0]
    done = subprocess.run(
        ["bash", "-c", f'{command.text} && printf %s "${name}"'],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip(), f"{command}: {done.stderr}"


PLAYBOOKS = _of("ansible-playbook")


@pytest.mark.parametrize("command", PLAYBOOKS, ids=_ids(PLAYBOOKS))
def test_ansible_playbook_commands_pass_the_syntax_check(command, ansible_playbook):
    # the inventory the README has users copy; --syntax-check parses the play, its roles and the tags it selects
    argv = [arg for arg in command.argv[1:] if arg not in ("--ask-vault-pass", "--check", "--diff")]
    argv[argv.index("-i") + 1] = "inventory.example.ini"
    done = subprocess.run(
        [str(ansible_playbook), *argv, "--syntax-check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        env=ansible_environment(),
    )
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
