#!/usr/bin/env bash
# Chooses and installs the torch build a machine can use, before dlbench itself is installed (pip then finds torch
# satisfied and fetches nothing more). The choice follows PyTorch's install selector
# (https://pytorch.org/get-started/locally/): Linux with an NVIDIA GPU gets the stack's CUDA build (PyPI's default
# Linux wheel, `stack_torch_cuda_variant` in stack.yml); Linux without one gets the CPU build from PyTorch's CPU
# index; macOS gets PyPI's wheel (CPU and MPS). The CPU build is about 200 MB; the CUDA build with its nvidia-*
# packages about 2.7 GB, of no use without a GPU, but it runs on a CPU: where no CPU build can be had (PyPI carries
# none), a machine without a GPU takes PyPI's wheel rather than stopping, and says so.
#
#   scripts/torch-build.sh choose [auto|cpu|cuda]                 print the build and why; install nothing
#   scripts/torch-build.sh install PYTHON [auto|cpu|cuda]         install it into PYTHON's environment (or keep it);
#                                                                 no build named: the one recorded there, else auto
#   scripts/torch-build.sh download-cpu PYTHON DIR PYVER GLIBC   put the CPU wheel (no dependencies) for Python
#                                                                 PYVER on a glibc GLIBC system of this machine's
#                                                                 architecture in DIR (an image's torch: 3.11 2.36
#                                                                 for Debian 12); exit 3 where no source has it
#
# The CPU build is looked for first through the user's own pip configuration (a mirror, a local wheel directory),
# then on PyTorch's CPU index with a short timeout, so that an unreachable index fails in seconds, not minutes.
# `install` records the build it settled on in PYTHON's environment (sys.prefix/torch-build), and a later `install`
# without a build named keeps it: a working torch is never swapped for another build unless TORCH_BUILD asks.
# Environment: TORCH_CPU_INDEX (default https://download.pytorch.org/whl/cpu), TORCH_INDEX_TIMEOUT (seconds,
# default 15), NVIDIA_SMI (default nvidia-smi), HOST_ROOT (prefix of /sys and /proc, for tests; default none).
#
# Why not uv's `uv pip install --torch-backend=auto` (light-the-torch's logic,
# https://docs.astral.sh/uv/guides/integration/pytorch/#automatic-backend-selection): it sends torch to PyTorch's own
# index (the CPU one where it finds no CUDA driver), so where only PyPI answers it fails as this script used to; it
# reads the CUDA driver only, not a GPU whose driver is not installed yet; and it ignores pip's configuration (a
# mirror, PIP_FIND_LINKS), which is how a site without PyTorch's index provides the CPU wheel.
set -euo pipefail

repo_root=$(cd "$(dirname "$0")/.." && pwd)
cpu_index=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
index_timeout=${TORCH_INDEX_TIMEOUT:-15}
nvidia_smi=${NVIDIA_SMI:-nvidia-smi}
host_root=${HOST_ROOT:-}

die() { echo "torch-build: error: $*" >&2; exit 2; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

torch_version=$(sed -n 's/^torch==\([^ ;#]*\).*/\1/p' "$repo_root/constraints.txt")
[ -n "$torch_version" ] || die "constraints.txt pins no torch==VERSION"
cuda_variant=$(sed -n 's/^stack_torch_cuda_variant: *"\{0,1\}\([^" #]*\).*/\1/p' "$repo_root/stack.yml")
[ -n "$cuda_variant" ] || die "stack.yml has no stack_torch_cuda_variant"

# An NVIDIA GPU, with or without its driver: prints a sentence and succeeds, or fails silently.
#  - nvidia-smi lists the GPUs the loaded driver sees ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-...)");
#  - /proc/driver/nvidia/gpus/ has one directory per GPU once the kernel module is loaded;
#  - without a driver, the PCI bus still shows the device: vendor 0x10de, class 0x0300xx (VGA) or 0x0302xx (3D
#    controller, the data-centre GPUs). NVSwitch (class 0x0680) and the GPUs' audio functions (0x0403) are not GPUs.
#    (PCI class codes: PCI-SIG Code and ID Assignment Specification; 10de: https://pci-ids.ucw.cz/read/PC/10de)
#    The same rule as nvidia_pci_gpus in dlbench/hostspec/facts.py (`dlbench validate`), kept here in shell
#    because this runs before any Python environment with dlbench exists.
find_nvidia_gpu() {
    local listed count device
    if listed=$("$nvidia_smi" -L 2>/dev/null) && count=$(grep -c '^GPU [0-9]' <<<"$listed") && [ "$count" -gt 0 ]; then
        echo "nvidia-smi lists $count NVIDIA GPU(s)"
        return 0
    fi
    count=$(find "$host_root/proc/driver/nvidia/gpus" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    if [ "$count" -gt 0 ]; then
        echo "the NVIDIA driver reports $count GPU(s) in /proc/driver/nvidia/gpus"
        return 0
    fi
    for device in "$host_root"/sys/bus/pci/devices/*; do
        [ "$(cat "$device/vendor" 2>/dev/null)" = 0x10de ] || continue
        case $(cat "$device/class" 2>/dev/null) in
            0x0300* | 0x0302*)
                echo "PCI device ${device##*/} is an NVIDIA GPU ($(cat "$device/device" 2>/dev/null)," \
                    "driver not loaded"
                return 0 ;;
        esac
    done
    return 1
}

# Prints "BUILD<TAB>why".
choose() {
    local requested=${1:-auto} found
    case $requested in
        cpu | cuda) printf '%s\tTORCH_BUILD=%s was asked for\n' "$requested" "$requested"; return ;;
        auto | "") ;;
        *) die "TORCH_BUILD must be auto, cpu or cuda, not '$requested'" ;;
    esac
    case $(uname -s) in
        Linux) ;;
        *) printf 'pypi\t%s: PyPI'"'"'s wheel is the build for this system\n' "$(uname -s)"; return ;;
    esac
    if found=$(find_nvidia_gpu); then
        printf 'cuda\t%s\n' "$found"
    else
        printf 'cpu\t%s %s\n' "no NVIDIA GPU found (no nvidia-smi listing, no /proc/driver/nvidia/gpus, no NVIDIA" \
            "display or 3D controller on the PCI bus)"
    fi
}

# `PYTHON -m pip ARGS...`, its output kept in the file $1 for the error message.
pip_logged() {
    local log=$1
    shift
    "$python" -m pip "$@" >"$log" 2>&1
}

# Why pip failed, indented: its first network complaint (an unreachable index) and its first ERROR line, which
# names the versions it did find ("Could not find a version that satisfies ... (from versions: ...)").
pip_said() {
    {
        grep -m 1 -E 'Retrying|Could not fetch URL|timed out' "$1" | cut -c 1-240 || true
        grep -m 1 -E '^ERROR' "$1" || tail -n 1 "$1"
    } | sed 's/^/    /' >&2
}

# Runs `pip ARGS... torch==VERSION+cpu`: through the user's pip configuration, then on PyTorch's CPU index; says
# where it found the wheel, or why not. No --constraint: beside constraints.txt's `torch==VERSION`, which `+cpu`
# satisfies, pip reports a missing wheel as "conflicting dependencies" rather than the versions it found.
pip_cpu_build() {
    if pip_logged "$scratch/config.log" "$@" "torch==$torch_version+cpu"; then
        echo "torch-build: torch $torch_version+cpu from your pip configuration"
        return 0
    fi
    echo "torch-build: your pip configuration has no torch $torch_version+cpu (PyPI has none: PyTorch publishes" \
        "its CPU builds on its own index); trying $cpu_index"
    if pip_logged "$scratch/index.log" "$@" --index-url "$cpu_index" --timeout "$index_timeout" --retries 1 \
            "torch==$torch_version+cpu"; then
        echo "torch-build: torch $torch_version+cpu from $cpu_index"
        return 0
    fi
    echo "torch-build: no torch $torch_version+cpu anywhere. Your pip configuration said:" >&2
    pip_said "$scratch/config.log"
    echo "  and $cpu_index said:" >&2
    pip_said "$scratch/index.log"
    return 3
}

installed_torch() {
    "$python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true
}

# The build of the installed torch where it is the pinned version: cpu, cuda, or pypi (PyPI's wheel without a local
# label, on Linux the CUDA build); nothing otherwise.
installed_build() {
    case $1 in
        "$torch_version+cpu") echo cpu ;;
        "$torch_version+$cuda_variant") echo cuda ;;
        "$torch_version") echo pypi ;;
    esac
}

# PyPI's wheel (on Linux the CUDA build). PEP 440: `==V` also matches V+cpu, and V+cpu sorts above V, so a CPU
# wheel in the user's wheel directory or mirror would win over PyPI's (or, installed, count as satisfied and stay);
# `!=V+cpu` rules it out and still admits V+$cuda_variant from PyTorch's own index
# (https://peps.python.org/pep-0440/#version-matching, #local-version-identifiers).
pip_pypi_build() {
    pip_logged "$scratch/pypi.log" install --quiet "torch==$torch_version,!=$torch_version+cpu" || {
        echo "torch-build: error: cannot install the ${1/cuda/CUDA} build of torch $torch_version. Make PyPI" \
            "reachable, or add PyTorch's index (PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/$cuda_variant)," \
            "or take the CPU build with TORCH_BUILD=cpu. pip said:" >&2
        pip_said "$scratch/pypi.log"
        exit 2
    }
}

# $1: the build asked for (auto, cpu, cuda), or empty: the build recorded in the environment, else auto.
install() {
    local requested=${1:-} record recorded installed has choice build why
    record=$("$python" -c 'import sys; print(sys.prefix)')/torch-build
    recorded=$(cat "$record" 2>/dev/null || true)
    installed=$(installed_torch)
    has=$(installed_build "$installed")
    if [ -z "$requested" ] && [ -n "$recorded" ]; then
        build=$recorded
        why="recorded in $record (TORCH_BUILD=auto, cpu or cuda chooses again)"
    elif [ -z "$requested" ] && [ -n "$has" ]; then
        # an environment from before the record, or torch installed by hand: a plain make keeps what works
        build=$has
        why="the one this environment has (TORCH_BUILD=auto, cpu or cuda chooses again)"
    else
        choice=$(choose "${requested:-auto}")
        build=${choice%%$'\t'*}
        why=${choice#*$'\t'}
    fi
    echo "torch-build: the $build build of torch $torch_version: $why"
    if [ "$has" = "$build" ] || [ "$has:$build" = pypi:cuda ]; then
        echo "torch-build: torch $installed is installed"
    elif [ "$build" = cpu ]; then
        pip_cpu_build install --quiet || {
            if [ "$requested" = cpu ]; then
                echo "torch-build: error: cannot install the CPU build of torch $torch_version. Make $cpu_index" \
                    "reachable (TORCH_CPU_INDEX=URL for a mirror), or put torch-$torch_version+cpu-*.whl in a" \
                    "directory and set PIP_FIND_LINKS=DIR, or take PyPI's wheel, which runs on a CPU too, with" \
                    "TORCH_BUILD=auto." >&2
                exit 2
            fi
            echo "torch-build: taking PyPI's torch $torch_version instead, which runs on the CPU too: about 2.7 GB" \
                "with its nvidia-* packages, against 200 MB for the CPU build (TORCH_BUILD=cpu installs that one" \
                "once it can be had)"
            build=pypi
            pip_pypi_build "$build"
        }
    else
        [ "$build" = pypi ] ||
            echo "torch-build: downloading the $cuda_variant build (about 2.7 GB with its nvidia-* packages)"
        pip_pypi_build "$build"
    fi
    echo "$build" >"$record"
}

command=${1:-}
case $command in
    choose)
        choose "${2:-auto}" ;;
    install)
        [ $# -ge 2 ] || die "usage: scripts/torch-build.sh install PYTHON [auto|cpu|cuda]"
        python=$2
        install "${3:-}" ;;
    download-cpu)
        [ $# -eq 5 ] || die "usage: scripts/torch-build.sh download-cpu PYTHON DIR PYTHON_VERSION GLIBC_VERSION"
        python=$2
        dest=$3
        [[ $4 =~ ^3\.[0-9]+$ ]] || die "PYTHON_VERSION must look like 3.11, not '$4'"
        [[ $5 =~ ^2\.([0-9]+)$ ]] || die "GLIBC_VERSION must look like 2.36, not '$5'"
        # A system with glibc 2.N runs every manylinux_2_M wheel with M <= N (PEP 600), and pip matches --platform
        # tags exactly, so each is named.
        platforms=()
        for ((minor = 17; minor <= BASH_REMATCH[1]; minor++)); do
            platforms+=(--platform "manylinux_2_${minor}_$(uname -m)")
        done
        pip_cpu_build download --quiet --no-deps --only-binary=:all: --dest "$dest" --python-version "$4" \
            "${platforms[@]}" ;;
    *)
        die "usage: scripts/torch-build.sh choose|install|download-cpu ... (see the comment at its top)" ;;
esac
