"""README.md, CONTRIBUTING.md and docs/ stand alone: what they link to is in the repository, what they tell users to
create in the checkout is git-ignored, and their examples do not write over committed files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
# A path in backticks or a link that climbs out of its file's folder: `../x`, (../x)
RELATIVE_PATH = re.compile(r"[`(](\.\./[^`)\s]*)")


def _git(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout")
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_path_stays_inside_the_repository(doc):
    text = doc.read_text()
    targets = [link for link in MARKDOWN_LINK.findall(text) if not re.match(r"[a-z]+:|#", link)]
    targets += RELATIVE_PATH.findall(text)
    for target in targets:
        resolved = (doc.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name} points outside the repository: {target}"
        assert resolved.exists(), f"{doc.name} points to {target}, which is not in the repository"


@pytest.mark.parametrize("doc", ["README.md", "docs/provisioning.md"])
def test_files_the_docs_have_users_create_in_the_checkout_are_ignored(doc):
    text = (ROOT / doc).read_text()
    created = re.findall(r"^cp inventory\.example\.ini (\S+)", text, re.MULTILINE)
    created += re.findall(r"^ansible-vault create (\S+)", text, re.MULTILINE)
    assert created == ["inventory.ini", "group_vars/all/vault.yml"]
    for path in created:
        assert _git("check-ignore", "--quiet", "--no-index", path).returncode == 0, f"{path} is not git-ignored"


def test_doc_examples_do_not_write_into_committed_folders():
    text = "\n".join(doc.read_text() for doc in DOCS)
    outputs = re.findall(r"DLBENCH_DASHBOARD_PNG_DIR=(\S+)", text) + re.findall(r"--out (\S+)", text)
    assert outputs
    tracked_dirs = {str(Path(path).parent) for path in _git("ls-files").stdout.splitlines()}
    for output in outputs:
        assert output.rstrip("/") not in tracked_dirs, f"a doc example writes into the committed {output}"


# git's conflict markers (`git merge` writes them into a file it could not merge): in Markdown nothing else fails on
# them, and both sides of the conflict reach the reader
# (a Setext heading's line of seven "=" is not one: git always names the side after "<<<<<<<" and ">>>>>>>")
CONFLICT_MARKER = re.compile(r"^(<{7}|>{7}) ", re.MULTILINE)


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_doc_keeps_an_unresolved_merge_conflict(doc):
    lines = [doc.read_text().count("\n", 0, found.start()) + 1 for found in CONFLICT_MARKER.finditer(doc.read_text())]
    assert not lines, f"{doc.relative_to(ROOT)}: merge conflict markers on lines {lines}"


def test_the_readme_links_every_docs_page_and_the_contributing_guide():
    # the README is the front door: a page it does not link is a page no newcomer finds
    linked = {(ROOT / link.split("#")[0]).resolve() for link in MARKDOWN_LINK.findall((ROOT / "README.md").read_text())}
    pages = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "CONTRIBUTING.md"]
    unlinked = [str(page.relative_to(ROOT)) for page in pages if page.resolve() not in linked]
    assert not unlinked, f"README.md links no {unlinked}"


# A path CONTRIBUTING.md names in backticks, from one of the repository's top folders
NAMED_PATH = re.compile(r"`((?:dlbench|tests|playbooks|dashboards|docs|benchmarks|scripts|deploy|images)/[^`\s]*)`")


def test_the_paths_contributing_names_exist():
    # the recipes say where a change goes: a path that moved sends the next contributor nowhere (placeholders in
    # capitals, ROLE or NAME, stand for any; a * matches as a glob)
    text = (ROOT / "CONTRIBUTING.md").read_text()
    named = {path for path in NAMED_PATH.findall(text) if not re.search(r"\b[A-Z]{4,}\b", path)}
    assert len(named) > 10, "the pattern no longer finds the guide's paths"
    missing = sorted(path for path in named if not list(ROOT.glob(path.rstrip("/"))))
    assert not missing, f"CONTRIBUTING.md names paths that do not exist: {missing}"
