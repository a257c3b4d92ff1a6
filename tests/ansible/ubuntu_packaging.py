"""Canonical's packaging of NVIDIA's driver, expanded into the packages of one driver release.

packaging/ubuntu_nvidia.yml holds, per series, each binary package's relations (Depends, Provides, Conflicts ...) and
the files it ships, extracted by packaging/extract_canonical.py from github.com/canonical/nvidia-graphics-drivers at
the commits it names (580-noble: the series NVIDIA's CUDA repository packages the same way for Ubuntu, with revision
-0ubuntu1; 580-server-noble: the Ubuntu archive's -server series). Both the stand-in .debs of the test repositories
(standins.py) and the Packages indexes that test_apt_resolution.py hands to apt come from here, so apt sees one truth.

NVIDIA's names by branch (NVIDIA driver installation guide, Recent updates, "Ubuntu 590 and later packages": "Starting
with branch 590, the Ubuntu packages will be renamed by removing the branch designation from the package name",
libnvidia-compute-580 -> libnvidia-compute, nvidia-dkms-580-open -> nvidia-dkms-open ...): a 590 release here is the
580 template with the branch removed from every name (versioned_names=False). These 590 names are SYNTHESIZED from
the guide's rename rule, not extracted from a 590 packaging branch: checked against a guess until captured from the
590 .debs or a real host.
"""

from dataclasses import dataclass, field
from pathlib import Path

import yaml

DATA = yaml.safe_load((Path(__file__).parent / "packaging" / "ubuntu_nvidia.yml").read_text())
FIELDS = ("Pre-Depends", "Depends", "Provides", "Conflicts", "Replaces", "Breaks")
# The Debian revision of NVIDIA's Ubuntu driver packages in its CUDA repository (e.g. 570.124.06-0ubuntu1).
CUDA_REPO_REVISION = "0ubuntu1"
# The first release of the next branch, where the unversioned names begin.
NEXT_BRANCH_VERSION = "590.48.01"


@dataclass
class Stanza:
    name: str
    version: str
    relations: dict
    files: list
    units: dict = field(default_factory=dict)
    postinst: str = None


def stanzas(series, upstream, revision, versioned_names=True):
    """The binary packages of SERIES ("580", "580-server") at UPSTREAM-REVISION; with versioned_names False, the names
    NVIDIA uses from 590 on."""
    version = f"{upstream}-{revision}"

    def expand(text):
        return (
            text.replace("@VERSION@", version)
            .replace("@V@", upstream)
            .replace("@B@", f"-{series}" if versioned_names else "")
        )

    return [
        Stanza(
            expand(name),
            version,
            {f: [expand(r) for r in entry[f]] for f in FIELDS if f in entry},
            [expand(path) for path in entry.get("files", [])],
            entry.get("units", {}),
            entry.get("postinst"),
        )
        for name, entry in DATA["series"][series]["packages"].items()
    ]


def shipping(packages, path):
    """The packages of PACKAGES (stanzas) that ship PATH (the open and the proprietary DKMS package both ship the
    module's dkms.conf, and conflict)."""
    return {stanza.name for stanza in packages if path in stanza.files}


def packages_index(packages, origin_file="pool/stand-in.deb"):
    """A Packages index of PACKAGES, metadata only (for `apt-get install -s`, which downloads nothing)."""
    entries = []
    for stanza in packages:
        lines = [
            f"Package: {stanza.name}",
            f"Version: {stanza.version}",
            "Architecture: all",
            "Maintainer: dlbench tests <tests@localhost>",
            "Priority: optional",
            "Section: restricted/misc",
        ]
        lines += [f"{name}: {', '.join(values)}" for name, values in stanza.relations.items()]
        lines += [f"Filename: {origin_file}", "Size: 1", f"Description: {stanza.name} (metadata stand-in)"]
        entries.append("\n".join(lines) + "\n")
    return "\n".join(entries)
