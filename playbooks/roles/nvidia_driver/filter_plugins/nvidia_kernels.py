"""The kernel release the next boot picks by default, for tasks/module-check.yml."""

import re


def _version_key(release):
    # Natural order, as `sort -V` (GRUB's grub-mkconfig_lib version_sort) puts kernel releases: 6.1.0-26 < 6.1.0-112.
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", release) if part]


def newest_kernel(releases):
    """The kernel release GRUB's generated menu boots by default: the newest of those in /boot, or "" if none."""
    return max(releases, key=_version_key, default="")


class FilterModule:
    def filters(self):
        return {"newest_kernel": newest_kernel}
