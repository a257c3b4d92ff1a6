"""jupyterlab.service as the jupyterlab role renders it, checked by this machine's systemd (systemd-analyze verify).

The sandbox (NoNewPrivileges=, an empty CapabilityBoundingSet=, ProtectKernelModules=) keeps the setuid nvidia-modprobe
that CUDA calls on first use from loading nvidia-uvm and creating /dev/nvidia-uvm. Where the host has nvidia-modprobe,
the unit runs it before the sandbox applies ("+"), and a failure there ("-": no GPU left on the bus) does not keep
JupyterLab from starting. A GPU host is needed to see the device node appear; systemd's parsing is checked here.
"""

import subprocess

import jinja2
import pytest

from .conftest import REPO

TEMPLATE = REPO / "playbooks" / "roles" / "jupyterlab" / "templates" / "jupyterlab.service.j2"
MODPROBE = "ExecStartPre=-+/usr/bin/nvidia-modprobe -c0 -u"


def render(tmp_path, nvidia_modprobe):
    # An environment prefix with a jupyter executable in it: verify checks that ExecStart= names one.
    prefix = tmp_path / "env"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "jupyter").write_text("#!/bin/sh\n")
    (prefix / "bin" / "jupyter").chmod(0o755)
    unit = jinja2.Template(TEMPLATE.read_text(), keep_trailing_newline=True, trim_blocks=True).render(
        ansible_managed="Ansible managed",
        jupyterlab_user="jupyter",
        jupyterlab_home="/srv/jupyter",
        jupyterlab_root_dir="/srv/jupyter/notebooks",
        jupyterlab_env_prefix=str(prefix),
        jupyterlab_config_dir="/etc/jupyterlab",
        __jupyterlab_nvidia_modprobe={"stat": {"exists": nvidia_modprobe}},
    )
    path = tmp_path / "jupyterlab.service"
    path.write_text(unit)
    return path, unit


@pytest.mark.parametrize("nvidia_modprobe", [True, False], ids=["nvidia-modprobe", "none"])
def test_the_gpu_device_nodes_are_made_before_the_sandbox(tmp_path, nvidia_modprobe):
    path, unit = render(tmp_path, nvidia_modprobe)
    lines = unit.splitlines()
    if nvidia_modprobe:
        assert lines.count(MODPROBE) == 1
        assert lines.index(MODPROBE) < next(i for i, line in enumerate(lines) if line.startswith("ExecStart="))
    else:
        assert not [line for line in lines if line.startswith("ExecStartPre")]
    verified = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == "", verified.stderr
