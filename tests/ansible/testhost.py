"""A Debian 12 root filesystem made by debootstrap, cached, and handed out fresh per test.

The tree is built once per package list (its hash names the cache directory under .cache/, which git ignores) and
reused; each test gets a writable copy: an overlayfs over the cached tree where the kernel allows it, else cp -a.
"""

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

SUITE = "bookworm"
MIRROR = os.environ.get("DLBENCH_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What a fresh Debian 12 server has before Ansible arrives (systemd, sshd, Python, apt's Python binding), plus the
# largest Debian packages the common and nvidia_driver roles install (compilers, ffmpeg, kernel headers): they come
# from Debian's real archive either way, and preinstalling them keeps the test within its time budget. The roles
# still install everything else they name, for real, from the same archive.
PACKAGES = sorted([
    "systemd", "systemd-sysv", "dbus", "openssh-server", "python3", "python3-apt", "python3-venv", "ca-certificates",
    "iproute2", "procps", "pciutils", "build-essential", "ffmpeg", "git", "curl", "wget", "dkms", "linux-headers-amd64",
])
BUILD_RECIPE_VERSION = 1


def cache_key():
    recipe = json.dumps([BUILD_RECIPE_VERSION, SUITE, MIRROR, PACKAGES]).encode()
    return hashlib.sha256(recipe).hexdigest()[:16]


@contextlib.contextmanager
def mounted_proc(root):
    proc = Path(root) / "proc"
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(proc)], check=False)


def cached_root(cache_dir, progress=print):
    """Return the cached tree for this package list, building it first if needed (PROGRESS reports the steps)."""
    final = Path(cache_dir) / cache_key() / "root"
    if (final.parent / "complete").exists():
        return final
    progress(f"debootstrap: building the Debian 12 test host tree once, into {final.parent} (minutes)")
    building = final.parent / f"building-{uuid.uuid4().hex[:8]}"
    shutil.rmtree(final.parent, ignore_errors=True)
    building.mkdir(parents=True)
    subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(building), MIRROR],
                   check=True, capture_output=True)
    shutil.copy("/etc/resolv.conf", building / "etc" / "resolv.conf")
    progress("debootstrap: installing the base packages into the tree")
    with mounted_proc(building):
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        subprocess.run(["chroot", str(building), "apt-get", "install", "-y", "-q", "--no-install-recommends",
                        *PACKAGES], check=True, capture_output=True, env=env)
        subprocess.run(["chroot", str(building), "apt-get", "clean"], check=True, env=env)
    building.rename(final)
    (final.parent / "complete").touch()
    return final


class Host:
    """A writable copy of the cached tree, with /proc mounted as in any chroot someone works in."""

    def __init__(self, cache_dir, workdir, progress=print, lower=None):
        # LOWER: another host's root to start from (a copy of a provisioned host), instead of the cached tree.
        self.lower = lower or cached_root(cache_dir, progress)
        self.workdir = Path(workdir)
        self.root = self.workdir / "root"
        self.overlay = False

    def __enter__(self):
        upper, work = self.workdir / "upper", self.workdir / "work"
        for directory in (upper, work, self.root):
            directory.mkdir(parents=True)
        options = f"lowerdir={self.lower},upperdir={upper},workdir={work}"
        mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(self.root)],
                                 capture_output=True)
        if mounted.returncode == 0:
            self.overlay = True
        else:
            self.root.rmdir()
            subprocess.run(["cp", "-a", str(self.lower), str(self.root)], check=True)
        shutil.copy("/etc/resolv.conf", self.root / "etc" / "resolv.conf")
        subprocess.run(["mount", "-t", "proc", "proc", str(self.root / "proc")], check=True)
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", str(self.root / "proc")], check=False)
        if self.overlay:
            subprocess.run(["umount", "-l", str(self.root)], check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def path(self, inside):
        return self.root / inside.lstrip("/")

    def run(self, *command, check=True):
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": "/root"}
        return subprocess.run(["chroot", str(self.root), *command], capture_output=True, text=True, check=check,
                              env=env)
