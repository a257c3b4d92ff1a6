"""The console the commands print their tables to standard output with."""

from __future__ import annotations

import os
import sys

# Rich's width where it finds no terminal and no COLUMNS: its own default is 80, which cuts a table's no-wrap columns
# (a workload's parameter count, compare's verdict) to ellipses in a file, a pipe or a CI log.
WIDTH_WITHOUT_A_TERMINAL = 160


def table_console():
    """Rich's console, as wide as the terminal or COLUMNS; 160 columns where the output goes elsewhere."""
    from rich.console import Console  # rich only for the commands that print a table (dlbench imports lazily)

    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console()
    return Console(width=WIDTH_WITHOUT_A_TERMINAL)
