"""A new NVIDIA Container Toolkit pin in stack.yml reaches a host provisioned with the old one.

The container role holds the toolkit's four packages at the pinned version; apt refuses to change a held package
unless told ("E: Held packages were changed and -y was used without --allow-change-held-packages"), so without that
every re-run after a pin bump failed on every provisioned host.
"""

import shutil

import pytest

from . import standins
from .conftest import REPO, Playbook

pytestmark = pytest.mark.integration
OLD = "1.17.8-1"  # the toolkit release the stack pinned before 1.18.2 (NVIDIA Container Toolkit release notes)
PLAY = """- name: Install the pinned NVIDIA Container Toolkit alone
  hosts: gpu_hosts
  gather_facts: true
  vars_files:
    - {stack}
  tasks:
    - name: Run the container role's toolkit tasks
      ansible.builtin.include_role:
        name: container
        tasks_from: nvidia-container-toolkit
"""


def test_a_new_pin_replaces_the_held_old_toolkit(site, fresh_host, tmp_path):
    # The four packages at the old version, installed and held as the container role leaves them (contents do not
    # matter here; the names and versions are those of NVIDIA's libnvidia-container repository).
    for name in (
        "libnvidia-container1",
        "libnvidia-container-tools",
        "nvidia-container-toolkit-base",
        "nvidia-container-toolkit",
    ):
        deb = standins.build_deb(tmp_path, name, OLD)
        shutil.copy(deb, fresh_host.path("/tmp"))
        fresh_host.run("dpkg", "-i", f"/tmp/{deb.name}")
        fresh_host.run("apt-mark", "hold", name)
    fresh_host.path("/etc/apt/sources.list").write_text("")  # only the stand-in toolkit repository
    play = tmp_path / "toolkit.yml"
    play.write_text(PLAY.format(stack=REPO / "stack.yml"))
    result = Playbook(fresh_host, tmp_path / "ansible", dict(site)).run(playbook=str(play))
    assert result.rc == 0, result.tail()
    versions = fresh_host.run("dpkg-query", "-W", "-f", "${Version} ${db:Status-Want}\\n", "nvidia-container-toolkit")
    assert versions.stdout.split() == [f"{standins.TOOLKIT_VERSION}-1", "hold"], result.tail()
