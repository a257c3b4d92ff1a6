#!/usr/bin/env bash
# Makes a local Debian 12 base image, for building the CPU variant where no registry is reachable (CI, air-gapped
# hosts): debootstrap a minimal root filesystem, cache it as a tarball keyed on what went into it, and import it
# into buildah's storage under the name given. Needs root (debootstrap), debootstrap and buildah.
#
#   images/debian-base.sh localhost/dlbench-base:bookworm
#
# Environment: BUILDAH (the buildah command with its storage flags, default "buildah"), CACHE_DIR (default
# .cache/images at the repository root), DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

image=${1:?usage: images/debian-base.sh IMAGE_NAME}
repo_root=$(cd "$(dirname "$0")/.." && pwd)
buildah_cmd=${BUILDAH:-buildah}
cache_dir=${CACHE_DIR:-$repo_root/.cache/images}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# What the Dockerfile needs from any base: a Python 3 with venv, CA certificates and tini (its apt-get step
# then finds them installed and only refreshes the index).
packages=ca-certificates,python3,python3-venv,tini

key=$(printf '%s\n' "$suite" minbase "$packages" "$mirror" | sha256sum | cut -c1-16)
tarball=$cache_dir/debian-$suite-minbase-$key.tar

rootfs=""
container=""
cleanup() {
    [ -z "$rootfs" ] || rm -rf "$rootfs"
    [ -z "$container" ] || $buildah_cmd rm "$container" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if [ ! -s "$tarball" ]; then
    mkdir -p "$cache_dir"
    rootfs=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
    echo "debootstrap $suite ($packages) into $rootfs" >&2
    if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
        echo "debian-base.sh: error: debootstrap failed, see $rootfs.log" >&2
        exit 1
    fi
    rm -f "$rootfs.log"
    # The image must not carry the download caches debootstrap leaves behind.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/debootstrap
    tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"  # atomic: a cut-off run never leaves a tarball that looks complete
    rm -rf "$rootfs"
    rootfs=""
fi

container=$($buildah_cmd from scratch)
$buildah_cmd add "$container" "$tarball" / >/dev/null
$buildah_cmd config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash \
    --label org.opencontainers.image.base.name="debian:$suite (debootstrap --variant=minbase)" "$container"
$buildah_cmd commit --quiet "$container" "$image" >/dev/null
echo "$image"
