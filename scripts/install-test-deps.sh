#!/usr/bin/env bash
# System packages the test suite drives for real (Debian/Ubuntu). Installs only what is missing.
#
#   scripts/install-test-deps.sh fast   what the fast tier needs (`make test`)
#   scripts/install-test-deps.sh all    that and what the slow tier needs (`make test-all`, CI; the default)
#
# The fast tier leaves out buildah, debootstrap, gnupg and docker.io: only the image build, the Ansible test host and
# the Docker Engine tests use them (tests/conftest.py's slow tier), and installing docker.io also starts a daemon.
set -euo pipefail

tier=${1:-all}
case $tier in
    fast | all) ;;
    *) echo "install-test-deps: error: the tier must be fast or all, not '$tier'" >&2; exit 2 ;;
esac

packages=()
add_if_missing() { command -v "$1" >/dev/null 2>&1 || packages+=("$2"); }
add_if_missing promtool prometheus
add_if_missing prometheus-pushgateway prometheus-pushgateway  # telemetry: --pushgateway test
add_if_missing openssl openssl            # TLS tests (tests/tls_support.py) and the JupyterLab image's certificate
add_if_missing chromium chromium          # dlbench report: the HTML page opened in a real browser (tests/test_report.py)
add_if_missing systemd-analyze systemd    # playbooks/: jupyterlab.service verified (tests/ansible/test_jupyterlab_unit.py)
if [ "$tier" = all ]; then
    add_if_missing buildah buildah            # images/: the real image build (tests/test_images_build.py)
    add_if_missing debootstrap debootstrap    # images/ base and the playbooks' test host (Debian 12)
    add_if_missing gpg gnupg                  # playbooks/: signs the stand-in apt repositories
    add_if_missing dockerd docker.io          # dlbench validate --image: a real Docker Engine (tests start their own)
    add_if_missing lspci pciutils             # playbooks/: the driver role's preflight refuses to run without lspci,
                                              # and the spec play runs on this machine (tests/ansible/test_host_spec.py)
fi

if [ ${#packages[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing test dependencies: ${packages[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
