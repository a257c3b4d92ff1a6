"""A Debian 12 root filesystem made by debootstrap, cached, and handed out fresh per test.

The tree starts from the minbase tree that images/debian-base.sh debootstraps once for the image base too (one
debootstrap for both), copied, with PACKAGES installed on top, and one addition to its Python that only saves the
tests CPU time (zipimport_code_cache.py). It is built once per base, package list and building
code (their hash names its directory in the test cache, tests/cache_dir.py) under a lock, so that two sessions at once
build it once, and renamed into place only when complete; each test gets a writable copy: an overlayfs over the cached tree where the kernel allows it, else cp -a.
"""

import ast
import contextlib
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path

from cache_dir import locked

SUITE = "bookworm"
MIRROR = os.environ.get("DLBENCH_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What a fresh Debian 12 server has before Ansible arrives (systemd, sshd, Python, apt's Python binding), plus the
# largest Debian packages the common and nvidia_driver roles install (compilers, ffmpeg, kernel headers): they come
# from Debian's real archive either way, and preinstalling them keeps the test within its time budget. The roles
# still install everything else they name, for real, from the same archive.
PACKAGES = sorted(
    [
        "systemd",
        "systemd-sysv",
        "dbus",
        "openssh-server",
        "python3",
        "python3-apt",
        "python3-venv",
        "ca-certificates",
        "iproute2",
        "procps",
        "pciutils",
        "build-essential",
        "ffmpeg",
        "git",
        "curl",
        "wget",
        "dkms",
        "linux-headers-amd64",
    ]
)
DEBIAN_BASE = Path(__file__).resolve().parents[2] / "images" / "debian-base.sh"


def minbase_tree(cache_root):
    """The shared debootstrapped minbase tree (images/debian-base.sh --rootfs), built first if needed."""
    result = subprocess.run(
        [str(DEBIAN_BASE), "--rootfs"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "CACHE_DIR": str(cache_root), "DEBIAN_MIRROR": MIRROR},
    )
    if result.returncode != 0:
        raise RuntimeError(f"images/debian-base.sh --rootfs failed: {result.stderr[-3000:]}")
    return Path(result.stdout.strip())


def cache_key(base):
    """The entry's name: a hash of the base tree's path (itself keyed by what built it), the package list and the code
    that builds the entry (_build and what it calls or installs, as syntax trees: a changed comment does not rebuild
    it)."""
    code = [
        ast.dump(ast.parse(textwrap.dedent(inspect.getsource(function))))
        for function in (_build, mounted_proc, _remove_unfinished, install_zipimport_code_cache)
    ]
    code.append(ast.dump(ast.parse(ZIPIMPORT_CODE_CACHE.read_text())))
    recipe = json.dumps([str(base), PACKAGES, code]).encode()
    return hashlib.sha256(recipe).hexdigest()[:16]


@contextlib.contextmanager
def mounted_proc(root):
    proc = Path(root) / "proc"
    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(proc)], check=False)


_FOUND = {}  # cache_dir -> its tree, once looked up in this process


def cached_root(cache_dir, progress=print):
    """Return the cached tree for this package list, building it first if needed (PROGRESS reports the steps).
    The shared minbase tree lives in the test cache's root, the parent of CACHE_DIR."""
    cache_dir = Path(cache_dir)
    if cache_dir in _FOUND:
        return _FOUND[cache_dir]
    progress(f"the Debian 12 minbase tree: images/debian-base.sh --rootfs, in {cache_dir.parent} (debootstraps once)")
    base = minbase_tree(cache_dir.parent)
    entry = cache_dir / cache_key(base)
    if not (entry / "complete").exists():
        with locked(entry.with_suffix(".lock")):
            if not (entry / "complete").exists():  # another session may have built it while this one waited
                _build(base, entry, progress)
    _FOUND[cache_dir] = entry / "root"
    return entry / "root"


def _build(base, entry, progress):
    """Build the entry in a directory of its own beside it and rename that into place once complete: the entry's
    name exists only for a finished tree, and a build cut off (even by SIGKILL, with /proc still mounted in it) is
    removed by the next build of the same entry, which holds the entry's lock."""
    progress(f"test host tree: {len(PACKAGES)} packages on a copy of {base}, once, into {entry} (minutes)")
    _remove_unfinished(entry)
    building = entry.with_name(f"{entry.name}.building-{uuid.uuid4().hex[:8]}")
    building.mkdir(parents=True)
    root = building / "root"
    subprocess.run(["cp", "-a", str(base), str(root)], check=True)
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    with mounted_proc(root):
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        subprocess.run(
            ["chroot", str(root), "apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
            check=True,
            capture_output=True,
            env=env,
        )
        subprocess.run(["chroot", str(root), "apt-get", "clean"], check=True, env=env)
    install_zipimport_code_cache(root)
    (building / "complete").touch()
    building.rename(entry)


ZIPIMPORT_CODE_CACHE = Path(__file__).with_name("zipimport_code_cache.py")


def install_zipimport_code_cache(root):
    """Put zipimport_code_cache.py (its docstring says why) into the Python of the tree at ROOT, loaded at start-up by
    a .pth file in the site directory for local additions (Debian's /usr/local/lib/python3.X/dist-packages)."""
    python = Path(os.readlink(Path(root) / "usr" / "bin" / "python3")).name  # python3.11 on Debian 12
    site = Path(root) / "usr" / "local" / "lib" / python / "dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(ZIPIMPORT_CODE_CACHE, site / ZIPIMPORT_CODE_CACHE.name)
    (site / "zipimport_code_cache.pth").write_text(f"import {ZIPIMPORT_CODE_CACHE.stem}\n")


def _remove_unfinished(entry):
    """Remove what a cut-off build of ENTRY left (its building directories, an entry without `complete`), unmounting
    first whatever is still mounted inside them, so that removing them never reaches into a live /proc."""
    leftovers = list(entry.parent.glob(f"{entry.name}.building-*"))
    if entry.exists():
        leftovers.append(entry)
    for leftover in leftovers:
        remove_with_its_mounts(leftover)


def mounts_under(path):
    """The mount points inside PATH (not PATH itself), as /proc/self/mounts lists them."""
    inside = str(Path(path).resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(inside)]


def remove_with_its_mounts(path):
    """Remove the tree at PATH, unmounting first whatever is still mounted inside it (an overlay, the /proc in it),
    the deepest first, so that the removal neither fails on a mount point nor reaches into a live /proc."""
    for point in sorted(mounts_under(path), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(path)


class Host:
    """A writable copy of the cached tree, with /proc mounted as in any chroot someone works in."""

    def __init__(self, cache_dir, workdir, progress=print, lower=None):
        # LOWER: the layers to start from instead of the cached tree, topmost first (another host's layers(): a copy
        # of a provisioned host).
        self.lowers = [Path(layer) for layer in lower] if lower else [cached_root(cache_dir, progress)]
        self.workdir = Path(workdir)
        self.root = self.workdir / "root"
        self.overlay = False

    def __enter__(self):
        self.mount()
        return self

    def __exit__(self, *exc):
        self.unmount()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @contextlib.contextmanager
    def mounted(self):
        """The host for the block, unmounted after it but kept on disk: layers() then names what copies start from."""
        self.mount()
        try:
            yield self
        finally:
            self.unmount()

    def layers(self):
        """This host's tree as overlay layers, topmost first: what it changed (overlayfs's upper directory, whose
        whiteouts and opaque directories overlayfs reads in a lower layer too), over what it started from."""
        return [self.workdir / "upper", *self.lowers] if self.overlay else [self.root]

    def mount(self):
        upper, work = self.workdir / "upper", self.workdir / "work"
        for directory in (upper, work, self.root):
            directory.mkdir(parents=True)
        options = f"lowerdir={':'.join(map(str, self.lowers))},upperdir={upper},workdir={work}"
        mounted = subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(self.root)], capture_output=True
        )
        if mounted.returncode == 0:
            self.overlay = True
        elif len(self.lowers) == 1:
            self.root.rmdir()
            subprocess.run(["cp", "-a", str(self.lowers[0]), str(self.root)], check=True)
        else:
            raise RuntimeError(f"mounting an overlay over {self.lowers} failed: {mounted.stderr.decode()}")
        shutil.copy("/etc/resolv.conf", self.root / "etc" / "resolv.conf")
        subprocess.run(["mount", "-t", "proc", "proc", str(self.root / "proc")], check=True)

    def unmount(self):
        subprocess.run(["umount", "-l", str(self.root / "proc")], check=False)
        if self.overlay:
            # not lazily where it can be helped: a host whose layers others start from must be finished with
            if subprocess.run(["umount", str(self.root)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(self.root)], check=False)

    def path(self, inside):
        return self.root / inside.lstrip("/")

    def run(self, *command, check=True):
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/root",
        }
        return subprocess.run(
            ["chroot", str(self.root), *command], capture_output=True, text=True, check=check, env=env
        )
