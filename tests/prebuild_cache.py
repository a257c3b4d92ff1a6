"""Build the slow tier's Debian trees into the test cache ahead of the tests: the debootstrapped minbase tree that
the image base and the Ansible test host share, and the test host itself (tests/ansible/testhost.py).

`make test-all` starts this in the background before its pip installs, which leave one of two cores idle for a
minute or two while downloading and unpacking debootstrap's and apt's packages is most of this work. The tests
build the same entries under the same locks (tests/cache_dir.py): they wait for a build this started, use what it
finished, and build themselves whatever it did not (it needs root; a failure here is the tests' to report).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS), str(TESTS / "ansible")]

from cache_dir import cache_root  # noqa: E402
from testhost import cached_root  # noqa: E402


def main() -> int:
    if os.geteuid() != 0:
        print("prebuild_cache: not root; the slow tier's tests build the cache (and need root)", file=sys.stderr)
        return 0
    cached_root(cache_root() / "ansible-testhost", progress=lambda line: print(f"prebuild_cache: {line}", flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
