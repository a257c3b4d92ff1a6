#!/usr/bin/env bash
# Makes a local Debian 12 base image, for building the CPU variant where no registry is reachable (CI, air-gapped
# hosts): debootstrap a minimal root filesystem, add what the Dockerfile needs from a base, cache it as a tarball
# keyed on what went into it, and import it into buildah's storage under the name given. Needs root (debootstrap,
# chroot), debootstrap and buildah.
#
#   images/debian-base.sh localhost/dlbench-base:bookworm
#   images/debian-base.sh --rootfs        only print the cached minbase tree (built once), without buildah
#
# The minbase tree is one debootstrap shared by everything that needs a Debian 12 root: this image base and the
# Ansible tests' host (tests/ansible/testhost.py), which each copy it and apt-get install their own packages.
# Both it and the tarball are built under a lock, so that two builds at once wait for one another.
#
# Environment: BUILDAH (the buildah command with its storage flags, default "buildah"), CACHE_DIR (default
# $DLBENCH_TEST_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/dlbench-test, which the tests use too), DEBIAN_MIRROR
# (default http://deb.debian.org/debian).
set -euo pipefail

if [ "${1:-}" = --rootfs ]; then
    image=""
else
    image=${1:?usage: images/debian-base.sh IMAGE_NAME | --rootfs}
fi
buildah_cmd=${BUILDAH:-buildah}
cache_dir=${CACHE_DIR:-${DLBENCH_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dlbench-test}}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# What the Dockerfile needs from any base: a Python 3 with venv, CA certificates and tini (its apt-get step
# then finds them installed and only refreshes the index).
packages="ca-certificates python3 python3-venv tini"

scratch=()
container=""
cleanup() {
    local path
    for path in "${scratch[@]}"; do
        umount -l "$path/proc" 2>/dev/null || true
        rm -rf "$path"
    done
    [ -z "$container" ] || $buildah_cmd rm "$container" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Waits for, then holds, the lock on $1 until this script exits (or the descriptor is closed).
lock() {
    exec {lock_fd}>"$1.lock"
    flock "$lock_fd"
}

# The debootstrapped minbase tree, built once per suite and mirror; sets $base to its path.
minbase_tree() {
    local key dir
    # keyed by the recipe itself: this function's code as bash prints it (comments left out, so they do not rebuild)
    key=$(printf '%s\n' "$(declare -f minbase_tree)" "$suite" "$mirror" | sha256sum | cut -c1-16)
    dir=$cache_dir/debian/$suite-minbase-$key
    mkdir -p "$cache_dir/debian"
    lock "$dir"
    if [ ! -e "$dir/complete" ]; then
        # a debootstrap cut off (SIGKILL) can leave /proc and /sys mounted in root.partial: unmount them, deepest
        # first, before removing it, so that rm never reaches into the host's /proc or /sys
        awk -v inside="$dir/" 'index($2, inside) == 1 { print $2 }' /proc/self/mounts | sort -r | xargs -r -n1 umount -l
        rm -rf "$dir"
        mkdir -p "$dir"
        scratch+=("$dir/root.partial")
        echo "debootstrap $suite (minbase) into $dir, once" >&2
        if ! debootstrap --variant=minbase "$suite" "$dir/root.partial" "$mirror" >"$dir/debootstrap.log" 2>&1; then
            echo "debian-base.sh: error: debootstrap failed, see $dir/debootstrap.log" >&2
            exit 1
        fi
        mv "$dir/root.partial" "$dir/root"
        touch "$dir/complete"  # last: a cut-off run never leaves a tree that looks complete
    fi
    exec {lock_fd}>&-
    base=$dir/root
}

minbase_tree
if [ -z "$image" ]; then
    echo "$base"
    exit 0
fi

key=$(printf '%s\n' "$base" "$packages" | sha256sum | cut -c1-16)
tarball=$cache_dir/images/debian-$suite-base-$key.tar
mkdir -p "$cache_dir/images"
lock "$tarball"
if [ ! -s "$tarball" ]; then
    rootfs=$(mktemp -d "$cache_dir/images/rootfs.XXXXXX")
    scratch+=("$rootfs")
    echo "installing $packages into a copy of $base" >&2
    cp -a "$base/." "$rootfs/"
    mount -t proc proc "$rootfs/proc"
    if ! DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        chroot "$rootfs" apt-get install -y -q --no-install-recommends $packages >"$rootfs.log" 2>&1; then
        echo "debian-base.sh: error: apt-get install failed, see $rootfs.log" >&2
        exit 1
    fi
    umount -l "$rootfs/proc"
    rm -f "$rootfs.log"
    # The image must not carry the download caches debootstrap and apt leave behind.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/debootstrap
    tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"  # atomic: a cut-off run never leaves a tarball that looks complete
fi
exec {lock_fd}>&-

# Imported again only when the tarball changed: a new import would be a new image (a new creation time), and every
# layer built on it by `buildah bud --layers` would miss the cache.
from_tarball=io.dlbench.base.tarball
if [ "$($buildah_cmd inspect --type image --format "{{index .OCIv1.Config.Labels \"$from_tarball\"}}" "$image" \
        2>/dev/null)" = "${tarball##*/}" ]; then
    echo "$image"
    exit 0
fi
container=$($buildah_cmd from scratch)
$buildah_cmd add "$container" "$tarball" / >/dev/null
$buildah_cmd config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash \
    --label org.opencontainers.image.base.name="debian:$suite (debootstrap --variant=minbase)" \
    --label "$from_tarball=${tarball##*/}" "$container"
$buildah_cmd commit --quiet "$container" "$image" >/dev/null
echo "$image"
