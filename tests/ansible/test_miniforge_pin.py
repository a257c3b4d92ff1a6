"""The conda role checks the Miniforge installer against the sha256 that stack.yml pins for its release and this
machine's architecture, rendered by Ansible's own templating from the role's defaults (no host, no download)."""

import json
import subprocess
import sys

import pytest
import yaml

from .conftest import REPO
from .test_kernel_flavour import TEMPLATE

STACK = yaml.safe_load((REPO / "stack.yml").read_text())


def rendered_sha256(architecture, **overrides):
    variables = dict(STACK)
    variables.update(yaml.safe_load((REPO / "playbooks/roles/conda/defaults/main.yml").read_text()))
    variables.update(ansible_facts={"architecture": architecture}, **overrides)
    out = subprocess.run(
        [sys.executable, "-c", TEMPLATE],
        input=json.dumps([variables, "", ["{{ conda_miniforge_sha256 }}"]]),
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return json.loads(out.stdout)[0]


@pytest.mark.parametrize("architecture", ["x86_64", "aarch64"])
def test_the_stacks_installer_sha256_is_the_default(architecture):
    assert rendered_sha256(architecture) == STACK[f"stack_miniforge_sha256_{architecture}"]
    assert len(STACK[f"stack_miniforge_sha256_{architecture}"]) == 64


def test_another_release_falls_back_to_the_published_sha256():
    # A release other than the stack's has no pin here: the role then reads the .sha256 file beside the installer.
    assert rendered_sha256("x86_64", conda_miniforge_version="24.11.3-0") == ""
