"""The container role's proxy settings for dockerd (filter_plugins/docker_proxy.py), without Ansible.

Package versions are real ones: docker-ce 5:28.5.1-1~debian.12~bookworm (Docker's repository), docker.io
20.10.24+dfsg1-1+deb12u1 (Debian 12) and 26.1.3-0ubuntu1~24.04.1 (Ubuntu 24.04, noble-updates). The provisioning
scenario behind a proxy (test_scenarios.py) runs the role with Docker's package.
"""

import importlib.util
import json
import shutil

import pytest

from . import standins
from .conftest import REPO, Playbook
from .test_docker_swarm import PLAY

_spec = importlib.util.spec_from_file_location(
    "docker_proxy", REPO / "playbooks" / "roles" / "container" / "filter_plugins" / "docker_proxy.py"
)
docker_proxy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docker_proxy)

PROXY = "http://proxy.example.org:3128"


def test_setup_proxy_env_becomes_daemon_json_proxies():
    environment = {"http_proxy": PROXY, "https_proxy": PROXY, "no_proxy": "localhost,127.0.0.1,.example.org"}
    assert docker_proxy.docker_daemon_proxies(environment) == {
        "http-proxy": PROXY,
        "https-proxy": PROXY,
        "no-proxy": "localhost,127.0.0.1,.example.org",
    }


def test_upper_case_wins_as_dockerd_reads_it():
    environment = {"HTTPS_PROXY": "http://upper:3128", "https_proxy": "http://lower:3128"}
    assert docker_proxy.docker_daemon_proxies(environment) == {"https-proxy": "http://upper:3128"}


@pytest.mark.parametrize("environment", [{}, None, {"ftp_proxy": PROXY, "http_proxy": ""}])
def test_no_proxy_no_settings(environment):
    assert docker_proxy.docker_daemon_proxies(environment) == {}


def test_systemd_environment_escapes_what_systemd_would_read():
    proxies = {"http-proxy": "http://user:p%40ss@proxy:3128", "no-proxy": 'a"b\\c'}
    assert docker_proxy.docker_proxy_environment(proxies).splitlines() == [
        'Environment="HTTP_PROXY=http://user:p%%40ss@proxy:3128"',
        'Environment="NO_PROXY=a\\"b\\\\c"',
    ]


@pytest.mark.parametrize(
    "version, reads",
    [
        ("5:28.5.1-1~debian.12~bookworm", True),
        ("5:23.0.0-1~debian.12~bookworm", True),
        ("26.1.3-0ubuntu1~24.04.1", True),
        ("20.10.24+dfsg1-1+deb12u1", False),
        ("", False),
    ],
)
def test_daemon_json_proxies_from_engine_23(version, reads):
    assert docker_proxy.docker_reads_daemon_json_proxies(version) is reads


@pytest.mark.integration
def test_an_engine_before_23_gets_the_proxy_in_its_systemd_environment(site, fresh_host, tmp_path):
    """Debian 12's docker.io (20.10) ignores daemon.json's "proxies" (and 20.10 refuses to start on keys it does not
    know): the proxy goes into a docker.service drop-in. The engine's version is what dpkg records for docker.io."""
    deb = standins.build_deb(tmp_path, "docker.io", "20.10.24+dfsg1-1+deb12u1")  # Debian 12's version, nothing else
    shutil.copy(deb, fresh_host.path("/tmp"))
    fresh_host.run("dpkg", "-i", f"/tmp/{deb.name}")
    fresh_host.path("/etc/apt/sources.list").write_text("")  # only the stand-in toolkit repository
    play = tmp_path / "daemon-json.yml"
    play.write_text(PLAY.format(stack=REPO / "stack.yml"))
    variables = dict(
        site,
        container_docker_source="distro",
        container_docker_proxy_env={"http_proxy": PROXY, "https_proxy": PROXY, "no_proxy": "127.0.0.1"},
    )
    result = Playbook(fresh_host, tmp_path / "ansible", variables).run(playbook=str(play))
    assert result.rc == 0, result.tail()
    assert "proxies" not in json.loads(fresh_host.path("/etc/docker/daemon.json").read_text())
    drop_in = fresh_host.path("/etc/systemd/system/docker.service.d/http-proxy.conf").read_text().splitlines()
    assert drop_in[1:] == [
        "[Service]",
        f'Environment="HTTP_PROXY={PROXY}"',
        f'Environment="HTTPS_PROXY={PROXY}"',
        'Environment="NO_PROXY=127.0.0.1"',
    ]
