"""Stand-ins for the downloads the playbooks need and this machine cannot reach.

NVIDIA's apt repositories, Docker's and Grafana's apt repositories, Miniforge's GitHub release and the PyTorch
CUDA wheel index are unreachable here. The integration test serves look-alikes from 127.0.0.1 through the same URL
variables a mirror would use:

* signed apt repositories (a throwaway gpg key made per test session) with stand-in packages that carry the real
  names and versions: cuda-keyring, nvidia-driver-pinning-580, nvidia-open, cuda-drivers, libnvidia-compute-580
  (a stand-in nvidia-smi), cuda-toolkit-13-0 (a stand-in nvcc), cudnn9-cuda-13, the four container toolkit packages
  (a stand-in nvidia-ctk that merges daemon.json in place like the real one), docker-ce and friends, grafana;
* a stand-in Miniforge installer (its sha256 published beside it) whose `conda create` makes a venv with the
  chroot's own Python: there is no conda-forge here, so the environment's Python is Debian 12's 3.11 and the test
  pins conda_python_version to it;
* a PyTorch wheel index holding the real torch 2.13.0 CPU wheel and its real dependencies (no CUDA wheels here);
* a stand-in of the Ubuntu archive's NVIDIA packages (UBUNTU_ARCHIVE below), for the scenario that gives the
  Debian 12 test host Ubuntu's /etc/os-release: the headless -server driver, Canonical's signed prebuilt modules,
  the fabric manager and nscq under their Ubuntu names and revisions, and nvidia-persistenced.service as Ubuntu
  ships it (static, --no-persistence-mode).

Each stand-in package reproduces the real package's name, version scheme, dependencies and the files the playbooks
touch; the source of each is named beside it. What could not be checked here is listed in docs/stack.md.

These stand-ins are the only fakes: Debian packages, PyPI packages (jupyterlab, dlbench's dependencies), apt, dpkg,
systemctl and Ansible itself are real.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

import yaml

from . import ubuntu_packaging

DRIVER_VERSION = "580.95.05"
# A later driver of the same branch in NVIDIA's repository, as there always is one: the fabric manager must still be
# installed at the installed driver's version, not the newest.
NEWER_DRIVER_VERSION = "580.105.08"
# Ubuntu archive revisions (packages.ubuntu.com, noble-updates): the driver and the fabric manager come from
# different source packages (nvidia-graphics-drivers-580-server, fabric-manager-580) with different revisions.
UBUNTU_DRIVER_REVISION = "0ubuntu0.24.04.2"
UBUNTU_FABRICMANAGER_REVISION = "0ubuntu0.24.04.1"
CUDA_RELEASE = "13.0"
# The DKMS module the driver's kernel package registers: dkms.conf as in NVIDIA's nvidia-kernel-open-dkms (one
# record per module it builds), and a postinst that leaves /var/lib/dkms as `dkms add`, `build` and `install` leave it
# (dkms 3.0, /usr/sbin/dkms: is_module_built wants <tree>/nvidia/<version>/<kernel>/<arch>/module/<name>.ko,
# _is_module_installed the symlink kernel-<kernel>-<arch> to that directory; github.com/dell/dkms). The real
# `dkms status` of the test host (Debian 12's dkms 3.0.10) reads it and prints "nvidia/580.95.05, <kernel>, x86_64:
# installed". Its maintainer scripts are those dh_dkms writes (dkms 3.0.10, debian/scripts/postinst-dkms and
# prerm-dkms): the postinst runs the host's real /usr/lib/dkms/common.postinst, which picks the kernels as it does on
# a real host (the running and the newest in /boot, every one under /lib/modules on a first install in a chroot whose
# running kernel is not the chroot's; dkms_common.postinst, github.com/dell/dkms), and the real dkms builds and
# installs; the prerm removes the old version from every kernel before an upgrade. Stood in for: the compiler
# (dkms.conf's MAKE copies the stand-in modules shipped beside it; dkms itself still refuses a kernel without headers),
# and, where a test names it in RUNNING_KERNEL, the running kernel that `uname -r` reports (a chroot runs the
# machine's own kernel, which common.postinst then takes for "a chroot's host").
RUNNING_KERNEL = "/var/lib/dlbench-test/running-kernel"
DKMS_MODULES = ("nvidia", "nvidia-modeset", "nvidia-drm", "nvidia-uvm", "nvidia-peermem")


def dkms_conf(version):
    return (
        f'PACKAGE_NAME="nvidia"\nPACKAGE_VERSION="{version}"\nAUTOINSTALL="yes"\n'
        'MAKE[0]="cp dlbench-stand-in/*.ko ."\nCLEAN="true"\n'
    ) + "".join(
        f'BUILT_MODULE_NAME[{i}]="{name}"\nDEST_MODULE_LOCATION[{i}]="/kernel/drivers/video"\n'
        for i, name in enumerate(DKMS_MODULES)
    )


def kernel_module(name, version):
    """A stand-in kernel module: an ELF64 relocatable object whose only content is the .modinfo section a real module
    carries ("name=", "version=", "license=" strings, as the kernel's modpost writes them), so that the real
    `modinfo -k <kernel> -F version nvidia` (kmod, libkmod-elf.c) reads it as it reads the real one."""
    import struct

    modinfo = b"".join(
        f"{key}={value}".encode() + b"\0"
        for key, value in (("version", version), ("license", "Dual MIT/GPL"), ("name", name.replace("-", "_")))
    )
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    header_size, section_size = 64, 64
    data_offset = header_size
    strtab_offset = data_offset + len(modinfo)
    sections_offset = (strtab_offset + len(shstrtab) + 7) & ~7
    header = struct.pack(
        "<4sBBBBB7xHHIQQQIHHHHHH",
        b"\x7fELF",
        2,
        1,
        1,
        0,
        0,
        1,
        62,
        1,
        0,
        0,
        sections_offset,
        0,
        header_size,
        0,
        0,
        section_size,
        3,
        2,
    )
    sections = bytes(section_size)  # the null section
    sections += struct.pack("<IIQQQQIIQQ", 1, 1, 2, 0, data_offset, len(modinfo), 0, 0, 1, 0)  # .modinfo, SHF_ALLOC
    sections += struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, strtab_offset, len(shstrtab), 0, 0, 1, 0)  # .shstrtab
    padding = bytes(sections_offset - strtab_offset - len(shstrtab))
    return header + modinfo + shstrtab + padding + sections


def dkms_module_files(version):
    """The built modules the DKMS stand-in installs, shipped beside dkms.conf (nothing is compiled here)."""
    return {
        f"/usr/src/nvidia-{version}/dlbench-stand-in/{name}.ko": (kernel_module(name, version), 0o644)
        for name in DKMS_MODULES
    }


def dkms_postinst(version):
    return f"""if [ -s {RUNNING_KERNEL} ]; then
  shim=$(mktemp -d)
  printf '#!/bin/sh\\n[ "$1" = -r ] && exec cat {RUNNING_KERNEL}\\nexec %s "$@"\\n' "$(command -v uname)" > "$shim/uname"
  chmod +x "$shim/uname"
  PATH="$shim:$PATH"
fi
if [ "$1" = configure ] && [ -x /usr/lib/dkms/common.postinst ]; then
  /usr/lib/dkms/common.postinst nvidia {version} /usr/share/nvidia "" "$2"
fi"""


def dkms_prerm(version):
    return f"""case "$1" in remove|upgrade|deconfigure)
  if [ "$(dkms status -m nvidia -v {version})" ]; then dkms remove -m nvidia -v {version} --all; fi ;;
esac"""


# The versions the playbooks pin come from the one version spec, so that a bump there is what the test installs.
_STACK = yaml.safe_load((Path(__file__).resolve().parents[2] / "stack.yml").read_text())
TOOLKIT_VERSION = _STACK["stack_container_toolkit_version"]
MINIFORGE_VERSION = _STACK["stack_miniforge_version"]
TORCH_VERSION = _STACK["stack_torch_version"]  # what the conda role installs, from the PyTorch index stand-in


# Where the stand-in nvidia-smi reads the GPU's compute processes (what NVML reports: one "PID NAME USED_MIB" line
# each); absent or empty: an idle GPU.
GPU_PROCESSES = "/var/lib/dlbench-test/gpu-processes"


def nvidia_smi(version=DRIVER_VERSION):
    return f"""#!/bin/sh
# STAND-IN nvidia-smi (dlbench test fixture): prints what a one-GPU H100 host prints.
case "$*" in
  *--query-gpu=driver_version*) echo "{version}" ;;
  *--query-compute-apps=*)
    # nvidia-smi(1) --query-compute-apps with --format=csv: the fields asked for, in their order, joined by ", ", one
    # line per process with a CUDA context; a header line unless noheader; memory in MiB unless nounits; nothing at all
    # on an idle GPU under noheader.
    fields=$(echo "$*" | sed -n 's/.*--query-compute-apps=\\([^ ]*\\).*/\\1/p' | tr , ' ')
    format=$(echo "$*" | sed -n 's/.*--format=\\([^ ]*\\).*/\\1/p')
    case ",$format," in *,noheader,*) ;; *)
      header=""
      for field in $fields; do
        case "$field" in
          process_name|name) field=process_name ;;
          used_memory|used_gpu_memory) field="used_gpu_memory [MiB]" ;;
        esac
        header="${{header:+$header, }}$field"
      done
      echo "$header" ;;
    esac
    unit=" MiB"
    case ",$format," in *,nounits,*) unit="" ;; esac
    [ -s {GPU_PROCESSES} ] || exit 0
    while read -r pid name used; do
      line=""
      for field in $fields; do
        case "$field" in
          pid) value=$pid ;;
          process_name|name) value=$name ;;
          used_memory|used_gpu_memory) value="$used$unit" ;;
          gpu_uuid) value=GPU-00000000-1111-2222-3333-444444444444 ;;
          *) echo "Field \\"$field\\" is not a valid field to query." >&2; exit 2 ;;
        esac
        line="${{line:+$line, }}$value"
      done
      echo "$line"
    done < {GPU_PROCESSES}
    ;;
  *-L*) echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-00000000-1111-2222-3333-444444444444)" ;;
  *)
    echo "+-----------------------------------------------------------------------------------------+"
    echo "| NVIDIA-SMI {version}              Driver Version: {version}      CUDA Version: {CUDA_RELEASE}     |"
    echo "|   0  NVIDIA H100 80GB HBM3          On  |   00000000:18:00.0 Off |                    0 |"
    echo "+-----------------------------------------------------------------------------------------+"
    ;;
esac
"""


NVCC = f"""#!/bin/sh
# STAND-IN nvcc (dlbench test fixture): prints what nvcc {CUDA_RELEASE} prints for --version.
echo "nvcc: NVIDIA (R) Cuda compiler driver"
echo "Copyright (c) 2005-2025 NVIDIA Corporation"
echo "Built on Wed_Jul_16_07:30:01_PM_PDT_2025"
echo "Cuda compilation tools, release {CUDA_RELEASE}, V{CUDA_RELEASE}.48"
echo "Build cuda_{CUDA_RELEASE}.r{CUDA_RELEASE}/compiler.36260728_0"
"""

NVIDIA_CTK = """#!/usr/bin/python3
# STAND-IN nvidia-ctk (dlbench test fixture): `runtime configure --runtime=docker` edits daemon.json in place,
# adding runtimes.nvidia and keeping every other key, as the real tool does.
import json, os, sys
args = sys.argv[1:]
if args[:2] != ["runtime", "configure"] or "--runtime=docker" not in args:
    sys.exit("stand-in nvidia-ctk: only `runtime configure --runtime=docker` is implemented")
path = next((a.split("=", 1)[1] for a in args if a.startswith("--config=")), "/etc/docker/daemon.json")
config = json.load(open(path)) if os.path.exists(path) else {}
config.setdefault("runtimes", {})["nvidia"] = {"args": [], "path": "nvidia-container-runtime"}
if "--set-as-default" in args:
    config["default-runtime"] = "nvidia"
with open(path, "w") as out:
    json.dump(config, out, indent=4)
print("INFO Wrote updated config to " + path)
"""

CONDA = """#!/usr/bin/python3
# STAND-IN conda (dlbench test fixture; conda-forge is unreachable here). Implements what the conda role calls:
# `conda --version` and `conda create --yes --quiet --name NAME python=X.Y pip`, which makes a venv with the
# system Python and refuses a Python version that is not the system one.
import os, subprocess, sys
prefix = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
args = sys.argv[1:]
if args == ["--version"]:
    print("conda @MINIFORGE_CONDA_VERSION@")
elif args[:1] == ["create"]:
    name = args[args.index("--name") + 1]
    python = next(a.split("=", 1)[1] for a in args if a.startswith("python="))
    have = "%d.%d" % sys.version_info[:2]
    if python != have:
        sys.exit("stand-in conda: only python=%s can be created here, not %s" % (have, python))
    subprocess.check_call([sys.executable, "-m", "venv", os.path.join(prefix, "envs", name)])
else:
    sys.exit("stand-in conda: unsupported command %s" % args)
"""

MINIFORGE_INSTALLER = """#!/bin/bash
# STAND-IN Miniforge installer (dlbench test fixture): accepts the real installer's -b -u -p PREFIX and lays out
# bin/conda, etc/profile.d/conda.sh and conda-meta/ like it.
set -euo pipefail
prefix="$HOME/miniforge3"
while getopts "bufp:" opt; do
  case "$opt" in p) prefix="$OPTARG" ;; *) ;; esac
done
mkdir -p "$prefix/bin" "$prefix/condabin" "$prefix/etc/profile.d" "$prefix/conda-meta" "$prefix/envs"
cat > "$prefix/bin/conda" <<'CONDA'
@CONDA@
CONDA
chmod 0755 "$prefix/bin/conda"
ln -sf ../bin/conda "$prefix/condabin/conda"
cat > "$prefix/etc/profile.d/conda.sh" <<PROFILE
export CONDA_EXE="$prefix/bin/conda"
conda() { "\\$CONDA_EXE" "\\$@"; }
PROFILE
echo "installed stand-in Miniforge into $prefix"
"""


def _control(name, version, arch="all", depends=(), description=None, relations=None):
    lines = [
        f"Package: {name}",
        f"Version: {version}",
        f"Architecture: {arch}",
        "Maintainer: dlbench tests <tests@localhost>",
        "Section: misc",
        "Priority: optional",
    ]
    if depends:
        lines.append("Depends: " + ", ".join(depends))
    for field, values in (relations or {}).items():
        lines.append(f"{field}: " + ", ".join(values))
    lines.append(f"Description: {description or 'stand-in ' + name + ' (dlbench test fixture)'}")
    return "\n".join(lines) + "\n"


def build_deb(
    out_dir,
    name,
    version,
    files=None,
    depends=(),
    postinst=None,
    arch="all",
    description=None,
    relations=None,
    prerm=None,
):
    """Build NAME_VERSION_ARCH.deb with FILES {path: (bytes or str, mode) or ('->', target)}; RELATIONS adds control
    fields such as Provides and Conflicts ({field: [relation, ...]})."""
    root = Path(out_dir) / f".build-{name}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(_control(name, version, arch, depends, description, relations))
    conffiles = []
    for path, spec in (files or {}).items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if spec[0] == "->":
            target.symlink_to(spec[1])
            continue
        content, mode = spec
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
        target.chmod(mode)
        if path.startswith("/etc/"):
            conffiles.append(path)
    if conffiles:
        (root / "DEBIAN" / "conffiles").write_text("\n".join(conffiles) + "\n")
    if postinst:
        script = postinst if postinst.startswith("#!") else "#!/bin/sh\nset -e\n" + postinst + "\n"
        (root / "DEBIAN" / "postinst").write_text(script)
        (root / "DEBIAN" / "postinst").chmod(0o755)
    if prerm:
        (root / "DEBIAN" / "prerm").write_text("#!/bin/sh\nset -e\n" + prerm + "\n")
        (root / "DEBIAN" / "prerm").chmod(0o755)
    deb = Path(out_dir) / f"{name}_{version}_{arch}.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], check=True, capture_output=True
    )
    shutil.rmtree(root)
    return deb


class Signer:
    """A throwaway gpg key that signs the repositories' Release files."""

    def __init__(self, home):
        self.home = Path(home)
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._gpg("--quick-generate-key", "dlbench test repository <tests@localhost>", "ed25519", "sign", "never")
        self.public_armored = self._gpg("--armor", "--export").stdout
        self.public_binary = self._gpg("--export").stdout

    def close(self):
        """Stop the gpg-agent this key started (it would outlive the test and confuse a reused home)."""
        subprocess.run(["gpgconf", "--homedir", str(self.home), "--kill", "all"], check=False, capture_output=True)

    def _gpg(self, *args):
        return subprocess.run(
            ["gpg", "--homedir", str(self.home), "--batch", "--pinentry-mode", "loopback", "--passphrase", "", *args],
            check=True,
            capture_output=True,
        )

    def sign_release(self, release):
        release = Path(release)
        self._gpg("--yes", "--clearsign", "-o", str(release.with_name("InRelease")), str(release))
        self._gpg("--yes", "--armor", "--detach-sign", "-o", str(release.with_name("Release.gpg")), str(release))


def _packages_index(debs, base):
    entries = []
    for deb in sorted(debs):
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True).stdout
        data = deb.read_bytes()
        entries.append(
            control.rstrip("\n") + "\n"
            f"Filename: {deb.relative_to(base).as_posix()}\n"
            f"Size: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\n"
            f"SHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    return "\n".join(entries)


def _release(directory, files, suite=None, origin="dlbench-tests", label="dlbench-tests"):
    lines = [
        f"Origin: {origin}",
        f"Label: {label}",
        "Date: Mon, 23 Nov 2026 00:00:00 UTC",
        "Architectures: amd64 arm64 all",
    ]
    if suite:
        lines += [
            f"Suite: {suite}",
            f"Codename: {suite}",
            "Components: " + " ".join(sorted({f.split("/")[0] for f in files})),
        ]
    lines.append("SHA256:")
    for name in files:
        data = (Path(directory) / name).read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    (Path(directory) / "Release").write_text("\n".join(lines) + "\n")
    return Path(directory) / "Release"


def flat_repo(directory, debs, signer, origin="dlbench-tests", label="dlbench-tests"):
    """A flat repository (`deb URL /`), the layout of NVIDIA's CUDA and container toolkit repositories; unsigned
    without SIGNER (for a `file:` source inside a test host, which apt then reads with trusted=yes)."""
    directory = Path(directory)
    (directory / "Packages").write_text(_packages_index(debs, directory))
    release = _release(directory, ["Packages"], origin=origin, label=label)
    if signer:
        signer.sign_release(release)


def dist_repo(directory, suite, component, debs, signer):
    """A classic repository (`deb URL SUITE COMPONENT`), the layout of Docker's and Grafana's."""
    directory = Path(directory)
    dist = directory / "dists" / suite
    names = []
    for arch in ("amd64", "arm64"):
        binary = dist / component / f"binary-{arch}"
        binary.mkdir(parents=True, exist_ok=True)
        (binary / "Packages").write_text(_packages_index(debs, directory))
        names.append(f"{component}/binary-{arch}/Packages")
    signer.sign_release(_release(dist, names, suite=suite))


def service_unit(exec_start):
    """A plain enabled service unit for a stand-in daemon, as (content, mode)."""
    return (
        f"[Unit]\nDescription={exec_start}\n[Service]\nExecStart={exec_start}\n[Install]\nWantedBy=multi-user.target\n",
        0o644,
    )


def build_site(www, base_url, signer, arch="x86_64", deb_arch="amd64"):
    """Lay out every stand-in under WWW as the real servers do; return the playbook variables pointing at them."""
    www = Path(www)
    exe = 0o755
    unit = service_unit

    for distro in ("debian12", "ubuntu2404"):
        cuda_repo(www, base_url, signer, distro, arch, unit)
    ubuntu_archive(www / "ubuntu", signer, unit)
    (www / "ubuntu" / "key.gpg").write_bytes(signer.public_binary)

    lnc = www / "libnvidia-container"
    lnc_dir = lnc / "stable" / "deb" / deb_arch
    lnc_dir.mkdir(parents=True)
    (lnc / "gpgkey").write_bytes(signer.public_armored)
    tk = f"{TOOLKIT_VERSION}-1"
    debs = [
        build_deb(lnc_dir, "libnvidia-container1", tk),
        build_deb(lnc_dir, "libnvidia-container-tools", tk, depends=[f"libnvidia-container1 (= {tk})"]),
        build_deb(lnc_dir, "nvidia-container-toolkit-base", tk, {"/usr/bin/nvidia-ctk": (NVIDIA_CTK, exe)}),
        build_deb(
            lnc_dir,
            "nvidia-container-toolkit",
            tk,
            depends=[f"nvidia-container-toolkit-base (= {tk})", f"libnvidia-container-tools (= {tk})"],
        ),
    ]
    flat_repo(lnc_dir, debs, signer)

    docker = www / "docker" / "linux" / "debian"
    pool = docker / "pool" / "stable"
    pool.mkdir(parents=True)
    (docker / "gpg").write_bytes(signer.public_armored)
    debs = [
        build_deb(
            pool,
            "docker-ce",
            "5:28.5.1-1~debian.12~bookworm",
            {
                "/usr/bin/dockerd": ("#!/bin/sh\n# STAND-IN dockerd\nexit 0\n", exe),
                "/lib/systemd/system/docker.service": unit("/usr/bin/dockerd"),
            },
            depends=["docker-ce-cli", "containerd.io"],
            postinst="getent group docker >/dev/null || groupadd -r docker",
        ),
        build_deb(
            pool,
            "docker-ce-cli",
            "5:28.5.1-1~debian.12~bookworm",
            {"/usr/bin/docker": ("#!/bin/sh\n# STAND-IN docker\nexit 0\n", exe)},
        ),
        build_deb(pool, "containerd.io", "1.7.28-1~debian.12~bookworm"),
        build_deb(pool, "docker-buildx-plugin", "0.29.1-1~debian.12~bookworm"),
        build_deb(pool, "docker-compose-plugin", "2.40.3-1~debian.12~bookworm"),
    ]
    dist_repo(docker, "bookworm", "stable", debs, signer)

    grafana = www / "grafana"
    gpool = grafana / "pool"
    gpool.mkdir(parents=True)
    (grafana / "gpg.key").write_bytes(signer.public_armored)
    debs = [
        build_deb(
            gpool,
            "grafana",
            "12.2.1",
            {
                "/usr/sbin/grafana-server": ("#!/bin/sh\n# STAND-IN grafana-server\nexit 0\n", exe),
                "/lib/systemd/system/grafana-server.service": unit("/usr/sbin/grafana-server"),
            },
            postinst="getent group grafana >/dev/null || groupadd -r grafana\n"
            "getent passwd grafana >/dev/null || useradd -r -g grafana -d /usr/share/grafana grafana",
        )
    ]
    dist_repo(grafana, "stable", "main", debs, signer)

    installer_name = f"Miniforge3-{MINIFORGE_VERSION}-Linux-{arch}.sh"
    release_dir = www / "miniforge" / "releases" / "download" / MINIFORGE_VERSION
    release_dir.mkdir(parents=True)
    installer = release_dir / installer_name
    conda = CONDA.rstrip("\n").replace("@MINIFORGE_CONDA_VERSION@", MINIFORGE_VERSION.rsplit("-", 1)[0])
    installer.write_text(MINIFORGE_INSTALLER.replace("@CONDA@", conda))
    digest = hashlib.sha256(installer.read_bytes()).hexdigest()
    (release_dir / (installer_name + ".sha256")).write_text(f"{digest}  {installer_name}\n")

    return {
        "cuda_repo_base_url": f"{base_url}/cuda/repos",
        "container_toolkit_repo_url": f"{base_url}/libnvidia-container/stable/deb/$(ARCH)",
        "container_toolkit_gpg_key_url": f"{base_url}/libnvidia-container/gpgkey",
        "container_docker_repo_url": f"{base_url}/docker/linux/debian",
        "monitoring_grafana_repo_url": f"{base_url}/grafana",
        "conda_miniforge_base_url": f"{base_url}/miniforge/releases/download",
        "conda_miniforge_sha256": digest,
    }


def cuda_repo(www, base_url, signer, distro, arch, unit):
    """NVIDIA's CUDA repository for DISTRO: flat (`deb URL /`), as at developer.download.nvidia.com/compute/cuda/repos/."""
    exe = 0o755
    cuda_dir = www / "cuda" / "repos" / distro / arch
    cuda_dir.mkdir(parents=True)
    cuda_url = f"{base_url}/cuda/repos/{distro}/{arch}/"
    keyring = "/usr/share/keyrings/cuda-archive-keyring.gpg"
    branch = DRIVER_VERSION.split(".")[0]
    cuda_major = CUDA_RELEASE.split(".")[0]
    cuda_dash = CUDA_RELEASE.replace(".", "-")
    debs = [
        build_deb(
            cuda_dir,
            "cuda-keyring",
            "1.1-1",
            {
                keyring: (signer.public_binary, 0o644),
                f"/etc/apt/sources.list.d/cuda-{distro}-{arch}.list": (
                    f"deb [signed-by={keyring}] {cuda_url} /\n",
                    0o644,
                ),
            },
        ),
        build_deb(
            cuda_dir,
            f"nvidia-driver-pinning-{branch}",
            "1.0-1",
            {f"/etc/apt/preferences.d/nvidia-driver-pinning-{branch}": (pinning_preferences(branch), 0o644)},
        ),
        # Ubuntu: Canonical's packaging and names (ubuntu_packaging.py), this branch's and the next one's (unversioned
        # names), as the repository carries every branch; Debian: NVIDIA's own Debian packaging.
        *(
            ubuntu_driver_debs(
                cuda_dir, ubuntu_packaging.stanzas(branch, DRIVER_VERSION, ubuntu_packaging.CUDA_REPO_REVISION)
            )
            + ubuntu_driver_debs(
                cuda_dir,
                ubuntu_packaging.stanzas(
                    branch,
                    ubuntu_packaging.NEXT_BRANCH_VERSION,
                    ubuntu_packaging.CUDA_REPO_REVISION,
                    versioned_names=False,
                ),
            )
            if distro.startswith("ubuntu")
            else driver_packages(cuda_dir, DRIVER_VERSION)
        ),
        build_deb(
            cuda_dir,
            f"cuda-toolkit-{cuda_dash}",
            f"{CUDA_RELEASE}.1-1",
            {
                f"/usr/local/cuda-{CUDA_RELEASE}/bin/nvcc": (NVCC, exe),
                f"/usr/local/cuda-{CUDA_RELEASE}/lib64/.keep": ("", 0o644),
                "/usr/local/cuda": ("->", f"cuda-{CUDA_RELEASE}"),
            },
        ),
        build_deb(
            cuda_dir,
            f"libcudnn9-cuda-{cuda_major}",
            "9.14.0.64-1",
            {
                "/usr/lib/x86_64-linux-gnu/libcudnn.so.9.14.0": ("stand-in\n", 0o644),
            },
        ),
        build_deb(cuda_dir, f"cudnn9-cuda-{cuda_major}", "9.14.0.64-1", depends=[f"libcudnn9-cuda-{cuda_major}"]),
        # NVIDIA's repository names the fabric manager nvidia-fabricmanager from 580 on and carries every release of
        # the branch; it depends on nothing the test needs.
        *(
            build_deb(
                cuda_dir,
                "nvidia-fabricmanager",
                f"{version}-1",
                {
                    "/usr/bin/nv-fabricmanager": ("#!/bin/sh\n# STAND-IN nv-fabricmanager\nexit 0\n", exe),
                    "/lib/systemd/system/nvidia-fabricmanager.service": unit("/usr/bin/nv-fabricmanager"),
                },
            )
            for version in (DRIVER_VERSION, NEWER_DRIVER_VERSION)
        ),
        # NVLink subnet manager for HGX B200/B300 (NVIDIA's repository; Fabric Manager user guide, Blackwell).
        build_deb(cuda_dir, "nvlsm", "2025.10.3-1", {"/opt/nvidia/nvlsm/sbin/nvlsm": ("#!/bin/sh\nexit 0\n", exe)}),
    ]
    flat_repo(cuda_dir, debs, signer, origin="NVIDIA", label="NVIDIA CUDA")  # as NVIDIA's Release files say


def pinning_preferences(branch):
    """The apt preferences nvidia-driver-pinning-BRANCH installs. NVIDIA's driver installation guide ("Version locking",
    APT) describes it as locking the driver packages onto the branch; its file is not published outside the .deb, so
    this is the guide's APT version lock for the branch: the branch's versions of the driver packages raised to 1000,
    other versions left at the default 500 (a name that exists only in a newer branch still resolves there).
    INVENTED from the guide's description, not copied from the package: the role and test_apt_resolution.py are checked
    against a guess of this file until it is captured from the .deb or a real host."""
    return f"Package: *nvidia* libcuda* libxnvctrl* cuda-drivers*\nPin: version {branch}.*\nPin-Priority: 1000\n"


def ubuntu_file(path, upstream, units):
    """Stand-in content of a file an Ubuntu driver package ships, for the files the playbooks touch; None for the
    rest (libraries, manuals, kernel sources), which the stand-ins leave out."""
    name = path.rsplit("/", 1)[1]
    if path == "/usr/bin/nvidia-smi":
        return (nvidia_smi(upstream), 0o755)
    if path == "/usr/bin/nvidia-persistenced":
        return ("#!/bin/sh\n# STAND-IN nvidia-persistenced\nexit 0\n", 0o755)
    if path.startswith("/lib/systemd/system/") and name in units:
        return (units[name], 0o644)
    if path == f"/usr/src/nvidia-{upstream}/dkms.conf":
        return (dkms_conf(upstream), 0o644)
    return None


def ubuntu_driver_debs(directory, packages):
    """Stand-in .debs of Canonical-style driver packages (ubuntu_packaging.stanzas): the real names, versions,
    relations and maintainer script for the persistence daemon's account; the DKMS packages install the stand-in
    modules (dkms_postinst) instead of compiling."""
    debs = []
    for stanza in packages:
        upstream = stanza.version.rsplit("-", 1)[0]
        files = {
            path: content for path in stanza.files if (content := ubuntu_file(path, upstream, stanza.units)) is not None
        }
        postinst, prerm = stanza.postinst, None
        if f"/usr/src/nvidia-{upstream}/dkms.conf" in stanza.files:
            files.update(dkms_module_files(upstream))
            postinst, prerm = dkms_postinst(upstream), dkms_prerm(upstream)
        relations = dict(stanza.relations)
        depends = relations.pop("Depends", [])
        debs.append(
            build_deb(
                directory,
                stanza.name,
                stanza.version,
                files,
                depends=depends,
                postinst=postinst,
                relations=relations,
                prerm=prerm,
            )
        )
    return debs


def driver_packages(directory, upstream):
    """The CUDA repository's driver packages of one driver release (UPSTREAM, e.g. 580.95.05), Debian revision -1."""
    exe, branch, driver_deb = 0o755, upstream.split(".")[0], f"{upstream}-1"
    return [
        build_deb(
            directory,
            f"libnvidia-compute-{branch}",
            driver_deb,
            {
                "/usr/bin/nvidia-smi": (nvidia_smi(upstream), exe),
                "/usr/bin/nvidia-persistenced": ("#!/bin/sh\n# STAND-IN nvidia-persistenced\nexit 0\n", exe),
                "/lib/systemd/system/nvidia-persistenced.service": service_unit("/usr/bin/nvidia-persistenced"),
            },
        ),
        # NVIDIA's packaging from 560 on (driver installation guide, "Compute-only and Desktop Installation",
        # Debian and Ubuntu: https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/compute-only-and-
        # desktop-installation.html): nvidia-driver-cuda is the compute-only (headless) user space, nvidia-driver the
        # desktop one (X/Wayland, GL, Vulkan), nvidia-kernel-open-dkms / nvidia-kernel-dkms the DKMS-built modules;
        # nvidia-open and cuda-drivers are the "desktop and compute" metapackages over all of them.
        build_deb(
            directory,
            "nvidia-driver-cuda",
            driver_deb,
            depends=[f"nvidia-driver-pinning-{branch}", f"libnvidia-compute-{branch} (= {driver_deb})"],
        ),
        build_deb(
            directory,
            "nvidia-driver",
            driver_deb,
            depends=[f"nvidia-driver-pinning-{branch}"],
            description="stand-in desktop driver: X/Wayland driver, GL, EGL, Vulkan (dlbench test fixture)",
        ),
        *(
            build_deb(
                directory,
                f"nvidia-kernel{kind}-dkms",
                driver_deb,
                {
                    f"/usr/src/nvidia-{upstream}/dkms.conf": (dkms_conf(upstream), 0o644),
                    **dkms_module_files(upstream),
                },
                depends=["dkms"],
                postinst=dkms_postinst(upstream),
                prerm=dkms_prerm(upstream),
            )
            for kind in ("-open", "")
        ),
        build_deb(
            directory,
            "nvidia-open",
            driver_deb,
            depends=["nvidia-driver-cuda", "nvidia-driver", f"nvidia-kernel-open-dkms (= {driver_deb})"],
        ),
        build_deb(
            directory,
            "cuda-drivers",
            driver_deb,
            depends=["nvidia-driver-cuda", "nvidia-driver", f"nvidia-kernel-dkms (= {driver_deb})"],
        ),
    ]


UBUNTU_KERNEL = "6.8.0-1015-aws"  # an Ubuntu 24.04 AWS kernel, for the Secure Boot + cloud flavour scenario


def ubuntu_archive(directory, signer, unit):
    """The Ubuntu archive's NVIDIA packages that the ubuntu driver source installs (packages.ubuntu.com, noble-updates,
    restricted; names as `ubuntu-drivers install --gpgpu` installs them), as a flat repository served from here.

    The driver packages are generated from Canonical's packaging (ubuntu_packaging.py); the kernel-module packages
    below are HAND-WRITTEN from packages.ubuntu.com's names and Depends, not generated from linux-restricted-modules'
    metadata: the role is checked against a guess of their layout (module directory, version, postinst) until it is
    captured from a real host or the .deb."""
    directory.mkdir(parents=True)
    exe, branch = 0o755, DRIVER_VERSION.split(".")[0]
    version = f"{DRIVER_VERSION}-{UBUNTU_DRIVER_REVISION}"
    srv = f"{branch}-server"
    # The driver: Canonical's -server packaging (ubuntu_packaging.py), as the archive's nvidia-graphics-drivers-580-server.
    debs = ubuntu_driver_debs(directory, ubuntu_packaging.stanzas(srv, DRIVER_VERSION, UBUNTU_DRIVER_REVISION))
    abi, kernel_flavour = UBUNTU_KERNEL.rsplit("-", 1)
    for flavour in ("", "-open"):
        modules = f"linux-modules-nvidia-{srv}{flavour}"
        module_dir = f"/lib/modules/{UBUNTU_KERNEL}/kernel/nvidia-{branch}srv{flavour}"
        debs += [
            # Canonical's prebuilt, signed modules for one kernel (linux-restricted-modules; packages.ubuntu.com:
            # linux-modules-nvidia-580-server-open-<abi>-<flavour> depends on nvidia-kernel-common-580-server (>= the
            # driver)), registered with depmod as the kernel's own postinst does; and the flavour's metapackage that
            # follows the kernel from ABI to ABI.
            build_deb(
                directory,
                f"{modules}-{UBUNTU_KERNEL}",
                f"{abi}+{version}",
                {f"{module_dir}/{name}.ko": (kernel_module(name, DRIVER_VERSION), 0o644) for name in DKMS_MODULES},
                depends=[f"nvidia-kernel-common-{srv} (>= {DRIVER_VERSION})"],
                postinst=f"depmod -a {UBUNTU_KERNEL}",
            ),
            build_deb(
                directory,
                f"{modules}-{kernel_flavour}",
                f"{abi}.1",
                depends=[f"{modules}-{UBUNTU_KERNEL}", f"nvidia-kernel-common-{srv} (>= {DRIVER_VERSION})"],
            ),
        ]
    # Ubuntu names them by branch only (no nvidia-fabricmanager without a branch), with nscq beside them.
    for upstream in (DRIVER_VERSION, NEWER_DRIVER_VERSION):
        fm_version = f"{upstream}-{UBUNTU_FABRICMANAGER_REVISION}"
        debs += [
            build_deb(
                directory,
                f"nvidia-fabricmanager-{branch}",
                fm_version,
                {
                    "/usr/bin/nv-fabricmanager": ("#!/bin/sh\n# STAND-IN nv-fabricmanager\nexit 0\n", exe),
                    "/lib/systemd/system/nvidia-fabricmanager.service": unit("/usr/bin/nv-fabricmanager"),
                },
            ),
            build_deb(directory, f"libnvidia-nscq-{branch}", fm_version),
        ]
    debs.append(build_deb(directory, f"linux-modules-extra-{UBUNTU_KERNEL}", f"{UBUNTU_KERNEL.rsplit('-', 1)[0]}.1"))
    flat_repo(directory, debs, signer, origin="Ubuntu", label="Ubuntu")


def simple_index(www_dir, wheels):
    """A PEP 503 index of WHEELS under WWW_DIR (what download.pytorch.org/whl/<variant>/ serves)."""
    www_dir = Path(www_dir)
    by_project = {}
    for wheel in wheels:
        project = wheel.name.split("-")[0].lower().replace("_", "-").replace(".", "-")
        by_project.setdefault(project, []).append(wheel)
    for project, files in by_project.items():
        page = www_dir / project
        page.mkdir(parents=True, exist_ok=True)
        links = []
        for wheel in files:
            if not (page / wheel.name).exists():
                (page / wheel.name).symlink_to(wheel.resolve())
            digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
            links.append(f'<a href="{wheel.name}#sha256={digest}">{wheel.name}</a><br>')
        (page / "index.html").write_text("<html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    (www_dir / "index.html").write_text(
        "<html><body>\n" + "\n".join(f'<a href="{p}/">{p}</a><br>' for p in sorted(by_project)) + "\n</body></html>\n"
    )
