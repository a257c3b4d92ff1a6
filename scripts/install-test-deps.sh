#!/usr/bin/env bash
# System packages the test suite drives for real (Debian/Ubuntu). Installs only what is missing.
set -euo pipefail

packages=()
add_if_missing() { command -v "$1" >/dev/null 2>&1 || packages+=("$2"); }
add_if_missing promtool prometheus
add_if_missing prometheus-pushgateway prometheus-pushgateway  # telemetry: --pushgateway test
add_if_missing buildah buildah            # images/: the real image build (tests/test_images_build.py)
add_if_missing debootstrap debootstrap    # images/ base and the playbooks' test host (Debian 12)
add_if_missing openssl openssl            # images/: the JupyterLab TLS test makes a self-signed certificate
add_if_missing gpg gnupg                  # playbooks/: signs the stand-in apt repositories
add_if_missing dockerd docker.io          # dlbench validate --image: a real Docker Engine (tests start their own)
add_if_missing chromium chromium          # dlbench report: the HTML page opened in a real browser (tests/test_report.py)

if [ ${#packages[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing test dependencies: ${packages[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
