"""Reading a YAML file the user named: any failure is one `UserError` line that names the file as the user gave it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlbench.errors import UserError


def read(path: Path, label: str) -> Any:
    """The parsed document of `path`; `label` names it in errors ("--stack stack.yml", "spec host.yml")."""
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise UserError(f"cannot read {label}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{label} is not a UTF-8 text file") from None
    except yaml.YAMLError as error:
        raise UserError(f"{label} is not valid YAML ({str(error).splitlines()[0]})") from None
