"""Static checks of the playbooks: ansible-lint's production profile and ansible-playbook --syntax-check."""

import subprocess

import pytest

from ansible_env import ansible_environment

from .conftest import ANSIBLE_BIN, REPO

PLAYBOOKS = [
    "playbooks/setup_gpu.yml",
    "playbooks/verify.yml",
    "playbooks/update_driver.yml",
    "playbooks/validate.yml",
    "playbooks/benchmark_multinode.yml",
]


def run(*command):
    return subprocess.run(
        command, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=REPO, env=ansible_environment()
    )


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_syntax_check(playbook, ansible_playbook):
    result = run(str(ansible_playbook), "-i", "inventory.example.ini", "--syntax-check", playbook)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production_profile(ansible_playbook):
    # ansible-lint runs ansible-playbook --syntax-check on each playbook itself: a minute, the slow tier
    result = run(
        str(ANSIBLE_BIN / "ansible-lint"),
        "--profile",
        "production",
        "--offline",
        "--nocolor",
        "playbooks/",
        "requirements.yml",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


def test_every_role_declares_its_arguments():
    roles = sorted(p for p in (REPO / "playbooks" / "roles").iterdir() if p.is_dir())
    assert {r.name for r in roles} >= {
        "common",
        "nvidia_driver",
        "cuda",
        "cudnn",
        "container",
        "conda",
        "jupyterlab",
        "monitoring",
    }
    for role in roles:
        assert (role / "meta" / "argument_specs.yml").is_file(), role.name
        assert (role / "defaults" / "main.yml").is_file(), role.name
