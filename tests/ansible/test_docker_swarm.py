"""live-restore on a Docker swarm node: dockerd refuses to start with it ("--live-restore daemon configuration is
incompatible with swarm mode", moby's integration test TestSwarmInitWithLiveRestore and daemon/cluster), so the
container role must leave it off there and on everywhere else.
"""

import json

import pytest

from .conftest import REPO, Playbook

pytestmark = pytest.mark.integration
PLAY = """- name: Configure Docker's daemon.json alone
  hosts: gpu_hosts
  gather_facts: true
  vars_files:
    - {stack}
  tasks:
    - name: Check whether systemd is running the host (the role's restart handler asks)
      ansible.builtin.stat:
        path: /run/systemd/system
      register: __container_systemd
    - name: Install the toolkit (nvidia-ctk edits daemon.json)
      ansible.builtin.include_role:
        name: container
        tasks_from: nvidia-container-toolkit
    - name: Write daemon.json
      ansible.builtin.include_role:
        name: container
        tasks_from: daemon-json
"""


def test_live_restore_only_off_swarm(site, fresh_host, tmp_path):
    """On a plain host live-restore goes on; once the host has joined a swarm, the next run turns it off. One host
    for both (the toolkit is installed once), which is also the order a fleet sees them in."""
    fresh_host.path("/etc/apt/sources.list").write_text("")  # only the stand-in toolkit repository
    play = tmp_path / "daemon-json.yml"
    play.write_text(PLAY.format(stack=REPO / "stack.yml"))
    playbook = Playbook(fresh_host, tmp_path / "ansible", dict(site))
    for swarm_node, live_restore in ((False, True), (True, False)):
        if swarm_node:
            # What `docker swarm join` leaves in the data root (moby daemon/cluster/noderunner.go, nodeStartConfig).
            state = fresh_host.path("/var/lib/docker/swarm/docker-state.json")
            state.parent.mkdir(parents=True)
            state.write_text(
                '{"LocalAddr":"10.0.0.5","RemoteAddr":"10.0.0.1:2377","ListenAddr":"0.0.0.0:2377",'
                '"AdvertiseAddr":"10.0.0.5:2377"}'
            )
        result = playbook.run(playbook=str(play))
        assert result.rc == 0, result.tail()
        daemon = json.loads(fresh_host.path("/etc/docker/daemon.json").read_text())
        assert daemon["live-restore"] is live_restore and "nvidia" in daemon["runtimes"], (swarm_node, daemon)
