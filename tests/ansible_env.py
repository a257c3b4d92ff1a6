"""The environment the tests give Ansible's commands (ansible-playbook, ansible-lint): the checkout's ansible.cfg, no
colour, and this machine's environment less what a host reached over SSH would not get (NOT_PASSED_TO_HOSTS)."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The chroot and local connections hand ansible-playbook's environment on to the Python that runs each module on the
# host; SSH does not (sshd passes on only the variables its AcceptEnv names, the locale's on Debian and Ubuntu).
# PYTHONUNBUFFERED, which CI machines set for their logs, unbuffers that Python's stdin as well as its output
# (CPython's Python/initconfig.c, config_init_stdio: setvbuf(stdin, NULL, _IONBF, BUFSIZ)), and with pipelining the
# module comes in on stdin: it is then read a byte at a time, about 170,000 read calls for a 170 kB module, which
# doubled the CPU time of every task on the test hosts.
# GLIBC_TUNABLES: the test session's malloc settings (tests/conftest.py). The playbooks' tests see a host as a host
# provisioned over SSH runs, with its own allocator's defaults.
NOT_PASSED_TO_HOSTS = ("PYTHONUNBUFFERED", "GLIBC_TUNABLES")


def ansible_environment(**variables):
    """os.environ without NOT_PASSED_TO_HOSTS, with the checkout's ansible.cfg, no colour, and VARIABLES."""
    environment = {name: value for name, value in os.environ.items() if name not in NOT_PASSED_TO_HOSTS}
    environment.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), NO_COLOR="1", ANSIBLE_NOCOLOR="1")
    environment.update(variables)
    return environment
