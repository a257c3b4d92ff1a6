"""The files a user deploys with: docker compose file and Grafana provisioning, checked as far as possible without
Docker (none here): valid YAML, every mounted path exists, paths line up between compose and provisioning, and the
security defaults hold (localhost only, non-root, no default password, pinned images)."""

from __future__ import annotations

import subprocess

import yaml

from dashboards_support import DASHBOARDS_DIR

COMPOSE = yaml.safe_load((DASHBOARDS_DIR / "compose.yaml").read_text())
PROVISIONING = DASHBOARDS_DIR / "grafana" / "provisioning"


def _mounts(service: str) -> dict[str, str]:
    """container path -> host path (relative to dashboards/) of the service's bind mounts."""
    mounts = {}
    for volume in COMPOSE["services"][service]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    return mounts


def test_compose_services_images_and_named_volumes():
    assert set(COMPOSE["services"]) == {"prometheus", "grafana"}
    for name, service in COMPOSE["services"].items():
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{name}: pin the image tag"
        assert service["user"].split(":")[0] not in {"0", "root"}, f"{name} must not run as root"
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DASHBOARDS_DIR / source).exists(), f"{name} mounts missing {source}"
                assert volume.endswith(":ro"), f"{name}: mount configuration read-only: {volume}"
            else:
                assert source in COMPOSE["volumes"], f"{name}: undeclared volume {source}"


def test_compose_listens_on_localhost_only_and_has_no_default_password():
    prometheus = COMPOSE["services"]["prometheus"]
    assert "--web.listen-address=127.0.0.1:9090" in prometheus["command"]
    grafana = COMPOSE["services"]["grafana"]["environment"]
    assert grafana["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?"), "no default admin password"
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    for service in COMPOSE["services"].values():
        assert "ports" not in service  # host network, bound to 127.0.0.1 by the services themselves


def test_prometheus_in_compose_reads_our_config_and_it_is_valid():
    prometheus = COMPOSE["services"]["prometheus"]
    assert _mounts("prometheus")["/etc/prometheus"] == "./prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    result = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"],
        cwd=DASHBOARDS_DIR / "prometheus",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_lines_up_with_compose():
    mounts = _mounts("grafana")
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "dlbench.yml").read_text())["providers"]
    dashboard_path = providers[0]["options"]["path"]
    assert mounts[dashboard_path] == "./grafana/dashboards"
    assert sorted((DASHBOARDS_DIR / "grafana" / "dashboards").glob("*.json"))

    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert [d["type"] for d in datasources] == ["prometheus"]
    url = datasources[0]["url"]
    assert url == "${DLBENCH_PROMETHEUS_URL}"
    assert COMPOSE["services"]["grafana"]["environment"]["DLBENCH_PROMETHEUS_URL"] == "http://127.0.0.1:9090"
