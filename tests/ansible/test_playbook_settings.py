"""Settings of the playbooks that no test host can show: read from the files as Ansible reads them.

ansible-lint passes all three faults below: a module option written under a task's `vars:` is valid YAML and a valid
variable (the module never sees it), a play without `environment:` is valid, and an inventory value is a string.
"""

import json
import subprocess
from pathlib import Path

import jinja2
import pytest
import yaml

from .conftest import ANSIBLE_BIN, REPO

PLAYBOOKS = REPO / "playbooks"
STACK = yaml.safe_load((REPO / "stack.yml").read_text())
ACTION_KEYS = {
    "name",
    "when",
    "vars",
    "register",
    "notify",
    "loop",
    "loop_control",
    "tags",
    "become",
    "become_user",
    "changed_when",
    "failed_when",
    "check_mode",
    "delegate_to",
    "environment",
    "listen",
    "no_log",
    "ignore_errors",
    "until",
    "retries",
    "delay",
    "block",
    "rescue",
    "always",
    "run_once",
    "args",
    "module_defaults",
    "diff",
    "throttle",
    "timeout",
    "any_errors_fatal",
}


def tasks_in(items):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        yield task
        for section in ("block", "rescue", "always"):
            yield from tasks_in(task.get(section))


def role_and_playbook_tasks():
    files = sorted(PLAYBOOKS.glob("roles/*/tasks/*.yml")) + sorted(PLAYBOOKS.glob("roles/*/handlers/*.yml"))
    for path in files:
        for task in tasks_in(yaml.safe_load(path.read_text())):
            yield path.relative_to(REPO), task
    for path in sorted(PLAYBOOKS.glob("*.yml")):
        for play in yaml.safe_load(path.read_text()):
            for section in ("pre_tasks", "tasks", "post_tasks", "handlers"):
                for task in tasks_in(play.get(section)):
                    yield path.relative_to(REPO), task


def module_of(task):
    modules = [key for key in task if key not in ACTION_KEYS and "." in key]
    return modules[0] if modules else None


def test_no_module_option_hides_under_vars():
    """A module option under a task's `vars:` is a variable the module never reads (the node_exporter task's `create`
    sat there, and the task failed where its file was missing)."""
    tasks = [(path, task, module_of(task)) for path, task in role_and_playbook_tasks()]
    modules = sorted({module for _, task, module in tasks if module and task.get("vars")})
    docs = json.loads(
        subprocess.run(
            # stdin: Ansible refuses a non-blocking one, which another test's child can leave on the shared /dev/null
            [str(ANSIBLE_BIN / "ansible-doc"), "--json", *modules],
            check=True,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        ).stdout
    )
    options = {module: set(doc["doc"].get("options") or {}) for module, doc in docs.items()}
    misplaced = [
        f"{path}: {task.get('name')}: {sorted(set(task['vars']) & options[module])}"
        for path, task, module in tasks
        if module in options and set(task.get("vars") or {}) & options[module]
    ]
    assert not misplaced


@pytest.mark.parametrize("playbook", ["verify.yml", "update_driver.yml"])
def test_every_play_on_the_gpu_hosts_gets_the_proxy(playbook):
    """apt, downloads and pip behind a proxy: the same environment as setup_gpu.yml's provisioning play."""
    (provisioning,) = [
        play
        for play in yaml.safe_load((PLAYBOOKS / "setup_gpu.yml").read_text())
        if play["name"] == "Provision the GPU software stack"
    ]
    assert provisioning["environment"] == "{{ setup_proxy_env | default({}) }}"
    for play in yaml.safe_load((PLAYBOOKS / playbook).read_text()):
        assert play.get("environment") == provisioning["environment"], play["name"]


def test_inventory_example_names_the_dlbench_wheel_this_checkout_builds():
    """inventory.example.ini's conda_dlbench_wheel, rendered as Ansible does (playbook_dir is playbooks/), is the wheel
    that `pip wheel --no-deps -w dist .` writes in this checkout."""
    (line,) = [
        line
        for line in (REPO / "inventory.example.ini").read_text().splitlines()
        if line.lstrip("# ").startswith("conda_dlbench_wheel=")
    ]
    value = line.lstrip("# ").split("=", 1)[1]
    rendered = jinja2.Template(value).render(playbook_dir=str(PLAYBOOKS))
    assert Path(rendered).resolve() == REPO / "dist" / f"dlbench-{STACK['stack_dlbench_version']}-py3-none-any.whl"
