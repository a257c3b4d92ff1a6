"""Extract the package metadata of Canonical's NVIDIA driver packaging into ubuntu_nvidia.yml (run by hand; the output
is committed so the tests need no network).

Source: github.com/canonical/nvidia-graphics-drivers, one branch per driver series (580-noble: NVIDIA's 580 driver as
Ubuntu packages it; 580-server-noble: the -server series of the Ubuntu archive). From debian/control it keeps each
binary package's Depends, Pre-Depends, Provides, Conflicts, Replaces and Breaks for amd64 (substitution variables
${misc:*} and ${shlibs:*} dropped: they name only the C library and friends, which every host has); from
debian/<package>.install and debian/<package>.<unit>.service which package ships which file, and the postinst
named in SCRIPTS. The driver version and
the series name are replaced by @V@ and @B@ (@B@ includes its leading dash, so that the unversioned names of the 590
rename are the template with @B@ removed).

    python tests/ansible/packaging/extract_canonical.py /path/to/nvidia-graphics-drivers.git > ubuntu_nvidia.yml
"""

import re
import subprocess
import sys

import yaml

SERIES = {"580-noble": "580", "580-server-noble": "580-server"}
# Maintainer scripts kept verbatim: only those that run unchanged on a test host (the persistence daemon's account).
# The DKMS packages' postinst compiles the module; the stand-ins replace it (standins.py).
SCRIPTS = {"nvidia-compute-utils": ["postinst"]}
FIELDS = ("Pre-Depends", "Depends", "Provides", "Conflicts", "Replaces", "Breaks")


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def paragraphs(text):
    for block in re.split(r"\n\s*\n", text.strip()):
        fields, name = {}, None
        for line in block.splitlines():
            if line.startswith("#"):
                continue
            if line[:1] in (" ", "\t") and name:
                fields[name] += " " + line.strip()
            elif ":" in line:
                name, value = line.split(":", 1)
                fields[name] = value.strip()
        yield fields


def relations(value):
    """amd64's relations of one field, substitution variables dropped."""
    kept = []
    for relation in value.split(","):
        relation = relation.strip()
        if (
            not relation
            or relation.startswith("${misc:")
            or relation.startswith("${shlibs:")
            or relation.startswith("${nvidia:")
        ):
            continue
        arch = re.search(r"\[([^]]+)\]", relation)
        if arch:
            archs = arch.group(1).split()
            if (
                any(a.startswith("!") for a in archs)
                and "!amd64" in archs
                or not any(a.startswith("!") for a in archs)
                and "amd64" not in archs
            ):
                continue
            relation = relation[: arch.start()].strip()
        kept.append(relation)
    return kept


def template(text, series, version):
    return (
        text.replace("${binary:Version}", "@VERSION@")
        .replace("${source:Version}", "@VERSION@")
        .replace(version, "@V@")
        .replace("-" + series, "@B@")
    )


def extract(repo, branch, series):
    changelog = git(repo, "show", f"{branch}:debian/changelog").splitlines()[0]
    full = re.search(r"\(([^)]+)\)", changelog).group(1)
    version = full.split("-")[0]
    commit = git(repo, "rev-parse", branch).strip()
    packages = {}
    for fields in paragraphs(git(repo, "show", f"{branch}:debian/control")):
        name = fields.get("Package")
        if not name or "amd64" not in fields.get("Architecture", "") and fields.get("Architecture") != "all":
            continue
        entry = {}
        for field in FIELDS:
            if field in fields and relations(fields[field]):
                entry[field] = [template(r, series, version) for r in relations(fields[field])]
        files = []
        listing = git(repo, "ls-tree", "--name-only", f"{branch}:debian/")
        for line in (
            git(repo, "show", f"{branch}:debian/{name}.install").splitlines()
            if f"{name}.install" in listing.split()
            else []
        ):
            parts = line.split()
            if len(parts) != 2 or line.startswith("#") or "*" in parts[0]:
                continue
            files.append("/" + parts[1].strip("/") + "/" + parts[0].rsplit("/", 1)[1])
        for unit in listing.split():
            if unit.startswith(name + ".") and unit.endswith(".service"):
                files.append("/lib/systemd/system/" + unit[len(name) + 1 :])
                entry["units"] = {unit[len(name) + 1 :]: git(repo, "show", f"{branch}:debian/{unit}")}
        for script in SCRIPTS.get(name[: -len("-" + series)], []):
            if f"{name}.{script}" in listing.split():
                entry[script] = git(repo, "show", f"{branch}:debian/{name}.{script}")
        if files:
            entry["files"] = [template(f, series, version) for f in files]
        packages[template(name, series, version)] = entry
    return {"branch": branch, "commit": commit, "version": full, "packages": packages}


def main(repo):
    data = {
        "source": "https://github.com/canonical/nvidia-graphics-drivers",
        "series": {series: extract(repo, branch, series) for branch, series in SERIES.items()},
    }
    sys.stdout.write("# Generated by extract_canonical.py from the source and commits named below; do not edit.\n")
    yaml.safe_dump(data, sys.stdout, sort_keys=False, width=120, default_flow_style=False)


if __name__ == "__main__":
    main(sys.argv[1])
