"""Proxy settings for dockerd from the environment-variable form the playbooks pass to every task (setup_proxy_env).

dockerd pulls images itself, so the proxy must reach the daemon, not the `docker` client (Docker docs, "Daemon proxy
configuration", https://docs.docker.com/engine/daemon/proxy/): from Docker Engine 23.0 in daemon.json under
"proxies" ("http-proxy", "https-proxy", "no-proxy"); before that only through HTTP_PROXY, HTTPS_PROXY and NO_PROXY in
the environment systemd starts it with (a drop-in of docker.service). Debian 12's docker.io is 20.10; Docker's own
packages and Ubuntu's docker.io are newer.
"""

import re

# daemon.json key -> environment variable. Upper case first, as dockerd (Go's golang.org/x/net/http/httpproxy
# FromEnvironment) reads HTTP_PROXY before http_proxy.
_KEYS = {"http-proxy": "HTTP_PROXY", "https-proxy": "HTTPS_PROXY", "no-proxy": "NO_PROXY"}
# The first Docker Engine that reads "proxies" from daemon.json.
DAEMON_JSON_PROXIES_SINCE = 23


def docker_daemon_proxies(environment):
    """{"http-proxy": ..., "https-proxy": ..., "no-proxy": ...} from ENVIRONMENT (http_proxy or HTTP_PROXY, ...);
    only the settings present, none for an empty ENVIRONMENT."""
    environment = environment or {}
    proxies = {}
    for key, variable in _KEYS.items():
        value = environment.get(variable) or environment.get(variable.lower())
        if value:
            proxies[key] = str(value)
    return proxies


def docker_proxy_environment(proxies):
    """The systemd drop-in's Environment= lines for PROXIES (docker_daemon_proxies' form), one per setting: quoted,
    with `%` doubled (systemd would read it as a specifier) and `"` and `\\` escaped."""
    lines = []
    for key, value in proxies.items():
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
        lines.append(f'Environment="{_KEYS[key]}={escaped}"')
    return "\n".join(lines)


def docker_engine_major(version):
    """Docker Engine's major version from its Debian package version: 28 from "5:28.5.1-1~debian.12~bookworm"
    (docker-ce), 20 from "20.10.24+dfsg1-1+deb12u1" (Debian's docker.io); 0 when it cannot be read."""
    match = re.match(r"^(?:\d+:)?(\d+)\.", str(version or ""))
    return int(match.group(1)) if match else 0


def docker_reads_daemon_json_proxies(version):
    return docker_engine_major(version) >= DAEMON_JSON_PROXIES_SINCE


class FilterModule:
    def filters(self):
        return {
            "docker_daemon_proxies": docker_daemon_proxies,
            "docker_proxy_environment": docker_proxy_environment,
            "docker_reads_daemon_json_proxies": docker_reads_daemon_json_proxies,
        }
