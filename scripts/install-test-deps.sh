#!/usr/bin/env bash
# System packages the test suite drives for real (Debian/Ubuntu). Installs only what is missing.
set -euo pipefail

packages=()
add_if_missing() { command -v "$1" >/dev/null 2>&1 || packages+=("$2"); }
add_if_missing promtool prometheus
add_if_missing prometheus-pushgateway prometheus-pushgateway  # telemetry: --pushgateway test
# playbook integration test: a debootstrapped Debian 12 host, and signed stand-in apt repositories
add_if_missing debootstrap debootstrap
add_if_missing gpg gnupg

if [ ${#packages[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing test dependencies: ${packages[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
