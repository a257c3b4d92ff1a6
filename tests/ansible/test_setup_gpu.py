"""setup_gpu.yml run for real against a debootstrapped Debian 12 host through the community.general.chroot
connection: once to provision, once more to prove it changes nothing, and in --check mode on a fresh host.

Fakes (see standins.py, and nothing else): NVIDIA's, Docker's and Grafana's apt repositories (signed local repos
with stand-in packages under the real names: the driver, nvidia-smi, nvcc, cuDNN, the container toolkit with
nvidia-ctk, docker-ce, grafana), Miniforge's installer (a stand-in conda that makes a venv), and the PyTorch CUDA
index (a local index with the real CPU torch wheel). There is no GPU and no running systemd in a chroot: the roles
enable services but start them only where systemd runs, and the PCI bus is an HGX H100's (GPU and NVSwitch) read by
the real lspci from a dump (pci_bus.py), so the driver check uses the stand-in nvidia-smi. test_scenarios.py runs the
other hosts: Ubuntu packaging, Maxwell, Volta with CUDA 13, Kepler, an unknown GPU, Secure Boot, a cloud kernel.
"""

import json
import re

import jinja2
import pytest
import yaml

from . import standins
from .conftest import (
    ADMIN_KEY,
    JUPYTER_PASSWORD,
    REPO,
    Playbook,
    base_variables,
    debian_kernel_release,
    provisioned_variables,
)

pytestmark = pytest.mark.integration

STACK = yaml.safe_load((REPO / "stack.yml").read_text())


def test_first_run_succeeds(provisioned):
    _, first, _ = provisioned
    assert first.rc == 0 and first.has_recap and first.failed == 0, first.tail()
    assert first.changed > 0


def test_second_run_changes_nothing(provisioned):
    _, first, second = provisioned
    assert second is not None, first.tail()
    assert second.rc == 0 and second.has_recap, second.tail()
    assert second.changed == 0, f"changed on rerun: {second.changed_tasks()}"


def test_driver_verified_on_rerun(provisioned):
    _, _, second = provisioned
    assert "nvidia-smi reports driver 580.95.05" in second.output


def test_rerun_does_not_upgrade_the_live_host(provisioned):
    host, _, second = provisioned
    assert host.path("/var/lib/dlbench/first-upgrade-done").exists()
    upgrade = r"TASK \[common : Upgrade the installed packages on first provisioning\] \*+\nskipping"
    assert re.search(upgrade, second.output)


def test_sshd_checked_and_reloaded_through_one_topic(provisioned):
    _, first, _ = provisioned
    # Both handlers ran (the reload is skipped in a chroot only because systemd is not running there).
    assert "RUNNING HANDLER [common : Check the sshd configuration]" in first.output
    assert "RUNNING HANDLER [common : Reload sshd]" in first.output


def test_packages_installed_and_held(provisioned):
    host, _, _ = provisioned
    installed = host.run("dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n").stdout
    status = {line.split()[0]: line.split()[1:] for line in installed.splitlines()}
    for package in (
        "nvidia-driver-pinning-580",
        "nvidia-driver-cuda",
        "nvidia-kernel-open-dkms",
        "libnvidia-compute-580",
        "nvidia-fabricmanager",
        "cuda-toolkit-13-0",
        "cudnn9-cuda-13",
        "nvidia-container-toolkit",
        "docker-ce",
        "prometheus-node-exporter",
        "prometheus",
        "grafana",
        "chrony",
        "htop",
        "tmux",
        "screen",
        "zip",
        "sudo",
        "pciutils",
    ):
        assert package in status and status[package][-1] in ("ii", "hi"), package  # hi: installed and held
    assert status["nvidia-container-toolkit"][0] == f"{standins.TOOLKIT_VERSION}-1"
    # The NVSwitch on the PCI bus got the fabric manager on the first run (no driver loaded yet), at the driver's
    # version although the repository has a newer one.
    assert status["nvidia-fabricmanager"][0] == "580.95.05-1"
    # An H100's NVSwitches (NVLink 4) are the fabric manager's own: no subnet manager, no ib_umad (B200: test_scenarios).
    assert not host.path("/etc/modules-load.d/nvidia-fabricmanager.conf").exists()
    held = set(host.run("apt-mark", "showhold").stdout.split())
    assert {
        "nvidia-driver-cuda",
        "nvidia-kernel-open-dkms",
        "libnvidia-compute-580",
        "nvidia-driver-pinning-580",
        "nvidia-container-toolkit",
        "nvidia-container-toolkit-base",
        "libnvidia-container1",
        "libnvidia-container-tools",
        "nvidia-fabricmanager",
        "docker-ce",
        "docker-ce-cli",
        "containerd.io",
    } <= held


def test_cloud_kernel_gets_its_flavours_headers(provisioned):
    host, first, _ = provisioned
    release = debian_kernel_release(host).replace("-amd64", "-cloud-amd64")
    assert f"kernel {release} (cloud-amd64)" in " ".join(first.output.split())
    installed = host.run("dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n").stdout.splitlines()
    assert {f"linux-headers-{release} ii", "linux-headers-cloud-amd64 ii"} <= {line.strip() for line in installed}


def installed_packages(host):
    lines = host.run("dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n").stdout.splitlines()
    return {line.split()[0]: line.split()[1:] for line in lines if line.split()[-1] in ("ii", "hi")}


def test_compute_only_driver_on_a_server(provisioned):
    """nvidia_driver_flavour's default: NVIDIA's compute-only packages, not the desktop metapackage's X/GL/Vulkan."""
    host, first, _ = provisioned
    status = installed_packages(host)
    assert {"nvidia-driver-cuda", "nvidia-kernel-open-dkms"} <= status.keys()
    assert not {"nvidia-open", "cuda-drivers", "nvidia-driver", "nvidia-kernel-dkms"} & status.keys()
    assert "driver: compute; kernel modules: open" in " ".join(first.output.split())


def test_dkms_built_the_module_for_the_kernel(provisioned):
    host, first, _ = provisioned
    release = debian_kernel_release(host).replace("-amd64", "-cloud-amd64")
    # The real dkms of the host reads the tree the stand-in module package left (standins.dkms_postinst).
    assert f"nvidia/580.95.05, {release}, x86_64: installed" in host.run("dkms", "status").stdout
    assert f"NVIDIA module built for {release}" in " ".join(first.output.split())


def test_dkms_check_names_a_bootable_kernel_without_the_module(provisioned_copy, site, tmp_path):
    """A second kernel, bootable and with a headers link, that DKMS cannot build for: the role has DKMS try, then
    stops, naming it."""
    host = provisioned_copy
    # What an upgrade to a newer Debian kernel leaves when its headers are broken: the image in /boot and a
    # /lib/modules/<release>/build link to a headers tree without its contents; the real dkms refuses to build.
    newer = "6.1.0-99-cloud-amd64"
    host.path(f"/boot/vmlinuz-{newer}").write_text("stand-in kernel image\n")
    host.path(f"/lib/modules/{newer}").mkdir(parents=True)
    host.path(f"/usr/src/linux-headers-{newer}").mkdir(parents=True)
    host.path(f"/lib/modules/{newer}/build").symlink_to(f"/usr/src/linux-headers-{newer}")
    playbook = Playbook(host, tmp_path / "ansible", provisioned_variables(site, host, tmp_path))
    result = playbook.run("--tags", "nvidia_driver")
    assert result.rc != 0 and result.failed == 1, result.tail()
    said = " ".join(result.output.split())
    assert "Build the NVIDIA module with DKMS for each kernel that has headers but not the driver's module" in said
    assert f"The NVIDIA kernel module is not built for kernel {newer} " in said, result.tail()
    assert f"dkms autoinstall -k {newer}" in said


def test_update_driver_upgrades_inside_the_branch(provisioned_copy, site, tmp_path):
    """update_driver.yml on a copy of the provisioned host, NVIDIA's repository now offering a newer 580 driver:
    drained, holds released, upgraded inside the pin, the fabric manager re-pinned to the new driver, held again, the
    module rebuilt, a reboot asked for and the host left drained until then; one host at a time. Run again after the
    reboot, with nothing left to upgrade, it returns the host to service."""
    plays = yaml.safe_load((REPO / "playbooks" / "update_driver.yml").read_text())
    assert [(play["serial"], play["max_fail_percentage"]) for play in plays] == [(1, 0)]
    newer = standins.NEWER_DRIVER_VERSION
    # A fabric manager release ahead of the driver's, as a mirror caught between the two syncs serves it, or the
    # Ubuntu archive, which updates fabric-manager-<branch> and the driver's source package separately. The fabric
    # manager refuses to start unless its version is the driver's.
    fabricmanager_ahead = "580.126.09"
    log = tmp_path / "hooks.log"
    host = provisioned_copy
    before = installed_packages(host)
    # The newer release of the packages the host has, as the CUDA repository publishes a branch's next driver
    # (standins.cuda_repo builds the same packages at DRIVER_VERSION), served from a local flat repository.
    repo = host.path("/var/lib/dlbench-test/driver-update")
    repo.mkdir(parents=True)
    debs = standins.driver_packages(repo, newer)
    debs.append(standins.build_deb(repo, "nvidia-fabricmanager", f"{fabricmanager_ahead}-1"))
    standins.flat_repo(repo, debs, signer=None)
    host.path("/etc/apt/sources.list.d/driver-update.list").write_text(
        "deb [trusted=yes] file:/var/lib/dlbench-test/driver-update /\n"
    )  # local files only; see standins
    # A host running the cloud kernel with the generic one of the same ABI also bootable, both with headers:
    # dkms's common.postinst rebuilds on the upgrade for the running and the newest kernel only (here the same:
    # equal ABIs, the later name), after the prerm removed the old module from both; the role builds the other.
    running = provisioned_variables(site, host, tmp_path)["nvidia_driver_kernel_release"]
    other = debian_kernel_release(host)
    host.path(standins.RUNNING_KERNEL).write_text(running + "\n")
    for kernel in (running, other):
        host.path(f"/boot/vmlinuz-{kernel}").write_text("stand-in kernel image\n")
        host.path(f"/boot/config-{kernel}").write_text("# stand-in kernel config\n")
    variables = provisioned_variables(site, host, tmp_path)
    variables.update(
        update_driver_drain_command=f"echo drain {{{{ inventory_hostname }}}} >> {log}",
        update_driver_undrain_command=f"echo undrain {{{{ inventory_hostname }}}} >> {log}",
    )
    playbook = Playbook(host, tmp_path / "ansible", variables)
    result = playbook.run(playbook="playbooks/update_driver.yml")
    after = installed_packages(host)
    dkms = host.run("dkms", "status").stdout
    hooks_after_update = log.read_text()
    again = playbook.run(playbook="playbooks/update_driver.yml") if result.rc == 0 else None
    assert result.rc == 0, result.tail()
    for package in ("libnvidia-compute-580", "nvidia-driver-cuda", "nvidia-kernel-open-dkms"):
        assert before[package][0] == f"{standins.DRIVER_VERSION}-1" and before[package][1] == "hi", package
        assert after[package] == [f"{newer}-1", "hi"], package  # upgraded, and held again
    assert after["nvidia-driver-pinning-580"][1] == "hi"
    # The fabric manager follows the driver, not the newest release on offer.
    assert before["nvidia-fabricmanager"] == [f"{standins.DRIVER_VERSION}-1", "hi"]
    assert after["nvidia-fabricmanager"] == [f"{newer}-1", "hi"]
    assert f"nvidia/{newer}, {running}, x86_64: installed" in dkms
    assert f"nvidia/{newer}, {other}, x86_64: installed" in dkms, dkms
    said = " ".join(result.output.split())
    assert f"NVIDIA module built for {', '.join(sorted([running, other]))}" in said, result.tail()
    # The reboot the new driver needs was asked for (a chroot is never rebooted: the operator is told to), and until
    # then the host stays out of service.
    assert "The NVIDIA driver changed and this host was not rebooted" in said, result.tail()
    assert hooks_after_update == "drain testgpu\n"
    assert "testgpu stays drained: reboot it, run playbooks/verify.yml" in said
    assert again.rc == 0, again.tail()
    assert log.read_text() == "drain testgpu\ndrain testgpu\nundrain testgpu\n", again.tail()


def test_persistence_mode_drop_in(provisioned):
    host, _, _ = provisioned
    # The stand-in of NVIDIA's driver package creates no nvidia-persistenced account (not checked against the real one).
    assert effective_exec_start(host, "nvidia-persistenced.service") == [
        "/usr/bin/nvidia-persistenced --persistence-mode --verbose"
    ]


def effective_exec_start(host, unit):
    """ExecStart= as systemd assembles it from the unit and its drop-ins (an empty assignment resets the list)."""
    paths = [host.path(f"/lib/systemd/system/{unit}")]
    paths += sorted(host.path(f"/etc/systemd/system/{unit}.d").glob("*.conf"))
    commands = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.startswith("ExecStart="):
                value = line.split("=", 1)[1].strip()
                commands = commands + [value] if value else []
    return commands


def test_apt_sources_signed_by_keys(provisioned, site):
    host, _, _ = provisioned
    sources = {path.name: path.read_text() for path in host.path("/etc/apt/sources.list.d").iterdir()}
    cuda = sources["cuda-debian12-x86_64.list"]
    assert cuda.strip() == (
        f"deb [signed-by=/usr/share/keyrings/cuda-archive-keyring.gpg] {site['cuda_repo_base_url']}/debian12/x86_64/ /"
    )
    assert sum(site["cuda_repo_base_url"] in text for text in sources.values()) == 1
    assert "signed-by=/etc/apt/keyrings/docker.asc" in sources["docker.list"]
    assert "signed-by=/etc/apt/keyrings/nvidia-container-toolkit.asc" in sources["nvidia-container-toolkit.list"]
    for key in (
        "/usr/share/keyrings/cuda-archive-keyring.gpg",
        "/etc/apt/keyrings/docker.asc",
        "/etc/apt/keyrings/nvidia-container-toolkit.asc",
    ):
        assert host.path(key).stat().st_size > 0
    update = host.run("apt-get", "update")
    assert "W:" not in update.stdout + update.stderr, update.stderr


def test_cuda_on_login_path(provisioned):
    host, _, _ = provisioned
    shell = host.run("bash", "-lc", 'echo "$PATH|$LD_LIBRARY_PATH"; nvcc --version')
    assert "/usr/local/cuda/bin" in shell.stdout.split("|")[0]
    # Not on LD_LIBRARY_PATH: it would shadow the CUDA libraries pinned in the conda environment.
    assert "/usr/local/cuda" not in shell.stdout.splitlines()[0].split("|")[1]
    assert "release 13.0," in shell.stdout


def test_admin_user_and_sshd(provisioned):
    host, _, _ = provisioned
    assert "sudo" in host.run("id", "-nG", "ops").stdout.split()
    assert ADMIN_KEY in host.path("/home/ops/.ssh/authorized_keys").read_text()
    assert host.run("visudo", "-c").returncode == 0
    host.path("/run/sshd").mkdir(exist_ok=True)
    effective = host.run("/usr/sbin/sshd", "-T").stdout
    assert "permitrootlogin no" in effective and "passwordauthentication no" in effective


def test_conda_environment(provisioned):
    host, _, _ = provisioned
    condarc = host.path("/opt/miniforge3/.condarc").read_text()
    assert "conda-forge" in condarc and "defaults" not in condarc
    torch = host.run("/opt/miniforge3/envs/dl/bin/python", "-c", "import torch; print(torch.__version__)")
    assert torch.stdout.startswith("2.13.0")
    assert host.path(f"/var/cache/dlbench/Miniforge3-{standins.MINIFORGE_VERSION}-Linux-x86_64.sh").exists()


def test_dlbench_trains_in_the_conda_environment_with_its_torch(provisioned):
    """`conda activate dl && dlbench run` works, on the pinned torch, at the path playbooks/validate.yml calls."""
    host, _, _ = provisioned
    dlbench = "/opt/miniforge3/envs/dl/bin/dlbench"
    assert host.path(dlbench).read_text().startswith("#!/opt/miniforge3/envs/dl/bin/python")
    version = host.run(dlbench, "--version")
    assert version.stdout.strip() == f"dlbench {STACK['stack_dlbench_version']}"
    # One real training step: `run` imports the environment's torch (the `train` extra did not replace it).
    host.run(
        dlbench,
        "run",
        "resnet18",
        "--device",
        "cpu",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--batch-size",
        "2",
        "--output",
        "/root/resnet18.json",
    )
    result = json.loads(host.path("/root/resnet18.json").read_text())
    assert result["environment"]["torch"]["version"].startswith(STACK["stack_torch_version"])
    torch_file = host.run("/opt/miniforge3/envs/dl/bin/python", "-c", "import torch; print(torch.__file__)")
    assert torch_file.stdout.startswith("/opt/miniforge3/envs/dl/lib/")
    # The validate role's default dlbench, rendered with the conda role's defaults, is this one.
    validate_default = yaml.safe_load((REPO / "playbooks/roles/validate/defaults/main.yml").read_text())
    rendered = jinja2.Template(validate_default["validate_dlbench"]).render(
        conda_prefix="/opt/miniforge3", conda_env_name="dl"
    )
    assert rendered == dlbench


def test_jupyterlab_service_and_config(provisioned):
    host, _, _ = provisioned
    unit = host.path("/etc/systemd/system/jupyterlab.service").read_text()
    active = [line for line in unit.splitlines() if not line.startswith("#")]
    assert "User=jupyter" in unit
    # The GPUs' device nodes stay visible; JIT compilers keep writable+executable memory.
    assert not [line for line in active if line.startswith(("PrivateDevices", "DevicePolicy", "MemoryDenyWrite"))]
    # systemd's own rating of the sandbox (Debian 12's systemd-analyze, offline): 8.7 unhardened.
    security = host.run(
        "systemd-analyze", "security", "--offline=true", "/etc/systemd/system/jupyterlab.service", check=False
    )
    exposure = re.search(r"Overall exposure level for jupyterlab.service: ([0-9.]+)", security.stdout)
    assert exposure and float(exposure.group(1)) <= 2.5, security.stdout[-2000:]
    assert "/opt/miniforge3/envs/dl/bin/jupyter lab --config=/etc/jupyterlab/jupyter_server_config.json" in unit
    assert host.path("/etc/systemd/system/multi-user.target.wants/jupyterlab.service").is_symlink()
    config = json.loads(host.path("/etc/jupyterlab/jupyter_server_config.json").read_text())
    assert config["ServerApp"]["ip"] == "127.0.0.1"
    hashed = config["PasswordIdentityProvider"]["hashed_password"]
    assert hashed.startswith("argon2:") and JUPYTER_PASSWORD not in json.dumps(config)
    check = host.run(
        "/opt/miniforge3/envs/dl/bin/python",
        "-c",
        "import sys; from jupyter_server.auth import passwd_check; print(passwd_check(*sys.argv[1:]))",
        hashed,
        JUPYTER_PASSWORD,
    )
    assert check.stdout.strip() == "True"
    version = host.run("/opt/miniforge3/envs/dl/bin/python", "-c", "import jupyterlab; print(jupyterlab.__version__)")
    assert version.stdout.strip() == "4.6.6"


def test_exporters(provisioned):
    host, _, _ = provisioned
    unit = host.path("/etc/systemd/system/dlbench-exporter.service").read_text()
    assert "dlbench exporter --listen 127.0.0.1 --port 19835" in unit and "User=dlbench-exporter" in unit
    assert host.path("/etc/systemd/system/multi-user.target.wants/dlbench-exporter.service").is_symlink()
    assert host.run("/opt/dlbench-exporter/bin/dlbench", "exporter", "--help").returncode == 0
    # the exporter's environment holds no PyTorch: monitoring a host must not install gigabytes
    assert host.run("/opt/dlbench-exporter/bin/python", "-c", "import torch", check=False).returncode != 0
    assert "/opt/dlbench-exporter/bin/dlbench exporter" in unit
    node = host.path("/etc/default/prometheus-node-exporter").read_text()
    assert 'ARGS="--web.listen-address=127.0.0.1:9100"' in node
    prometheus = host.path("/etc/prometheus/prometheus.yml").read_text()
    assert '"127.0.0.1:19835"' in prometheus and '"127.0.0.1:9100"' in prometheus
    assert host.run("promtool", "check", "config", "/etc/prometheus/prometheus.yml").returncode == 0


def test_monitoring_host_gets_this_repositorys_rules_and_dashboards(provisioned):
    host, _, _ = provisioned
    rules = sorted(p.name for p in (REPO / "dashboards" / "prometheus" / "rules").glob("*.yml"))
    dashboards = sorted(p.name for p in (REPO / "dashboards" / "grafana" / "dashboards").glob("*.json"))
    assert rules and dashboards
    assert sorted(p.name for p in host.path("/etc/prometheus/rules").iterdir()) == rules
    assert sorted(p.name for p in host.path("/var/lib/grafana/dashboards/dlbench").iterdir()) == dashboards
    # promtool (Debian's, inside the host) loads the rule files the configuration names.
    checked = host.run("promtool", "check", "config", "/etc/prometheus/prometheus.yml")
    assert all(f"/etc/prometheus/rules/{name}" in checked.stdout + checked.stderr for name in rules), checked.stdout
    datasource = host.path("/etc/grafana/provisioning/datasources/dlbench.yml").read_text()
    assert "uid: dlbench-prometheus" in datasource
    assert "admin_password = grafana-test-password" in host.path("/etc/grafana/grafana-dlbench.ini").read_text()


def test_docker_daemon_json_merged(provisioned):
    host, _, _ = provisioned
    daemon = json.loads(host.path("/etc/docker/daemon.json").read_text())
    assert daemon["data-root"] == "/srv/docker"
    assert daemon["live-restore"] is True
    assert daemon["log-driver"] == "json-file"
    assert daemon["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"


def test_check_mode_on_fresh_host(provisioned):
    result, fresh_host = provisioned.check, provisioned.check_host
    assert result.rc == 0 and result.has_recap and result.failed == 0, result.tail()
    assert result.changed > 0
    # --check changed nothing on the host.
    assert not fresh_host.path("/opt/miniforge3").exists()
    assert not fresh_host.path("/etc/apt/sources.list.d/cuda-debian12-x86_64.list").exists()
    assert re.search(r"^ii\s+nvidia-open", fresh_host.run("dpkg", "-l").stdout, re.M) is None


def test_unsupported_os_fails_before_changing_anything(site, fresh_host, tmp_path):
    fresh_host.path("/etc/os-release").unlink()
    fresh_host.path("/etc/os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nNAME="Debian GNU/Linux"\nVERSION_ID="11"\n'
        'VERSION="11 (bullseye)"\nVERSION_CODENAME=bullseye\nID=debian\n'
    )
    fresh_host.path("/etc/debian_version").write_text("11.11\n")
    playbook = Playbook(fresh_host, tmp_path / "ansible", base_variables(site, fresh_host, tmp_path))
    result = playbook.run()
    assert result.rc != 0 and result.failed == 1 and result.changed == 0, result.tail()
    assert "supported are Ubuntu 22.04, Ubuntu 24.04 and Debian 12" in result.output
    assert "Nothing was changed" in result.output


def test_jupyterlab_refuses_public_address_without_tls(site, fresh_host, tmp_path):
    playbook = Playbook(fresh_host, tmp_path / "ansible", base_variables(site, fresh_host, tmp_path))
    result = playbook.run("--tags", "jupyterlab", "-e", "jupyterlab_ip=0.0.0.0")
    assert result.rc != 0 and result.failed == 1 and result.changed == 0, result.tail()
    assert "only with jupyterlab_tls_certfile and jupyterlab_tls_keyfile set" in result.output
    assert not fresh_host.path("/etc/systemd/system/jupyterlab.service").exists()


def test_sshd_hardening_refused_without_an_admin_key(site, fresh_host, tmp_path):
    variables = base_variables(site, fresh_host, tmp_path)
    variables["common_admin_ssh_keys"] = []
    playbook = Playbook(fresh_host, tmp_path / "ansible", variables)
    result = playbook.run("--tags", "common")
    assert result.rc != 0 and result.failed == 1 and result.changed == 0, result.tail()
    assert "no admin account with an SSH key is" in result.output
    assert not fresh_host.path("/etc/ssh/sshd_config.d/10-dlbench-hardening.conf").exists()


def test_miniforge_installer_with_wrong_sha256_is_refused(site, dlbench_wheel, fresh_host, tmp_path):
    variables = base_variables(site, fresh_host, tmp_path, dlbench_wheel)
    variables["conda_miniforge_sha256"] = "0" * 64  # what a tampered or corrupted download looks like
    playbook = Playbook(fresh_host, tmp_path / "ansible", variables)
    result = playbook.run("--tags", "conda")
    assert result.rc != 0 and result.failed == 1, result.tail()
    assert "did not match " + "0" * 64 in result.output
    assert not fresh_host.path("/opt/miniforge3").exists()
    assert not fresh_host.path(f"/var/cache/dlbench/Miniforge3-{standins.MINIFORGE_VERSION}-Linux-x86_64.sh").exists()


@pytest.mark.parametrize(
    "tags, phrase",
    [
        # A whole run stops in the provisioning play's first task, before the common role changes anything.
        (
            (),
            "set conda_dlbench_wheel to a wheel built from this checkout (pip wheel --no-deps -w dist .) or"
            " conda_pip_index_url to your own index that serves dlbench",
        ),
        (("--tags", "monitoring"), "The dlbench exporter would come from PyPI"),
    ],
    ids=["setup_gpu", "monitoring-alone"],
)
def test_dlbench_from_the_public_index_is_refused(site, fresh_host, tmp_path, tags, phrase):
    """The defaults a user gets, without a wheel or an index of their own: dlbench is not published on PyPI, and
    whatever is published there under its name would be installed as root."""
    playbook = Playbook(fresh_host, tmp_path / "ansible", base_variables(site, fresh_host, tmp_path))
    result = playbook.run(*tags)
    said = " ".join(result.output.split())
    assert result.rc != 0 and result.failed == 1 and result.changed == 0, result.tail()
    assert phrase in said and "installed as root" in said and "Nothing was changed." in said, result.tail()
    assert not fresh_host.path("/opt/dlbench-exporter").exists()
    assert not fresh_host.path("/etc/apt/sources.list.d/cuda-debian12-x86_64.list").exists()
