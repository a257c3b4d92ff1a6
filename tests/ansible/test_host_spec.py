"""The `spec` play of setup_gpu.yml (role host_spec) run for real by ansible-playbook, on this machine through the
local connection: the spec written and fetched, a second run unchanged, and drift shown by --check --diff without
touching the kept spec. The folders are the test's own; this machine's facts are read as they are (no GPU: NVML is
simulated, dlbench/nvml/simulated.py)."""

import os
import re
import subprocess
import sys

import pytest
import yaml

from ansible_env import ansible_environment
from dlbench import installed_torch
from dlbench.hostspec import spec

from .conftest import ANSIBLE_BIN, REPO

pytestmark = pytest.mark.integration


def _play(ansible_playbook, tmp_path, *extra):
    inventory = tmp_path / "inventory.ini"
    # ansible_become=false: the play asks for root; the test already is root and this machine has no sudo
    inventory.write_text(
        f"[gpu_hosts]\nlocalhost ansible_connection=local ansible_become=false "
        f"ansible_python_interpreter={sys.executable}\n"
    )
    variables = {
        "host_spec_dlbench": str(ANSIBLE_BIN / "dlbench"),
        "host_spec_python": sys.executable,
        "host_spec_remote_dir": str(tmp_path / "host"),
        "host_spec_report_dir": str(tmp_path / "specs"),
    }
    env = ansible_environment(DLBENCH_FAKE_NVML="h100-sxm*2")
    done = subprocess.run(
        [
            str(ansible_playbook),
            "-i",
            str(inventory),
            "--tags",
            "spec",
            "-e",
            yaml.safe_dump(variables, default_flow_style=True).strip(),
            *extra,
            "playbooks/setup_gpu.yml",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
    )
    recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", done.stdout)
    assert done.returncode == 0 and recap, done.stdout[-3000:] + done.stderr[-2000:]
    return done, int(recap.group(2))


@pytest.mark.skipif(os.geteuid() != 0, reason="the role keeps the spec as root:root")
def test_the_spec_play_writes_fetches_and_shows_drift(ansible_playbook, tmp_path):
    done, changed = _play(ansible_playbook, tmp_path)
    kept, fetched = tmp_path / "host" / "host-spec.yml", tmp_path / "specs" / "localhost.yml"
    assert changed >= 1 and kept.read_text() == fetched.read_text()
    declared = spec.load(kept)
    assert declared["hardware"]["cpu"]["threads"] == os.cpu_count()
    assert declared["hardware"]["gpu"][0]["count"] == 2
    assert declared["software"]["pytorch"] == installed_torch.collect()["version"].split("+")[0]

    _, changed = _play(ansible_playbook, tmp_path)
    assert changed == 0  # the host did not drift

    drifted = kept.read_text().replace(f"threads: {os.cpu_count()}", "threads: 999")
    kept.write_text(drifted)
    done, changed = _play(ansible_playbook, tmp_path, "--check", "--diff")
    assert changed == 1 and "-    threads: 999" in done.stdout and f"+    threads: {os.cpu_count()}" in done.stdout
    assert kept.read_text() == drifted  # --check kept the old spec
