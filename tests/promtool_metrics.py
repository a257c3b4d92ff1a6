"""`promtool check metrics` (Debian's real promtool) on an exposition text: what it says, empty when it has no remark."""

import shutil
import subprocess


def promtool_remarks(text: str) -> str:
    result = subprocess.run(
        [shutil.which("promtool"), "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    return (result.stdout + result.stderr).strip() or ("" if result.returncode == 0 else f"exit {result.returncode}")
