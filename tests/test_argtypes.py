"""The argument types of dlbench/commands/argtypes.py, one per kind of value, in an argparse parser as the
subcommands use them: what each accepts, and one line with exit code 2 for what it refuses."""

from __future__ import annotations

import argparse

import pytest

from dlbench.commands import argtypes


def parsed(kind, text: str):
    parser = argparse.ArgumentParser(prog="dlbench test")
    parser.add_argument("--value", type=kind)
    return parser.parse_args(["--value", text]).value


@pytest.mark.parametrize(
    "kind,text,value",
    [
        (argtypes.fraction, "0.05", 0.05),
        (argtypes.percent, "5%", 0.05),
        (argtypes.percent, "0.5", 0.005),
        (argtypes.duration, "1h30m", 5400.0),
        (argtypes.duration, "90", 90.0),
        (argtypes.byte_size, "256MiB", 256 * 2**20),
        (argtypes.process_counts, "4,1,2,2", [1, 2, 4]),
        (argtypes.one_word("hostname"), "gpu-07", "gpu-07"),
    ],
)
def test_each_type_turns_its_text_into_the_value(kind, text, value):
    assert parsed(kind, text) == value


@pytest.mark.parametrize(
    "kind,text,message",
    [
        (argtypes.fraction, "1", "must be between 0 and 1 (exclusive), not 1"),
        (argtypes.fraction, "a tenth", "must be a fraction such as 0.1"),
        (argtypes.percent, "100", "must be between 0 and 100 percent"),
        (argtypes.duration, "soon", "duration must look like 90s, 30m, 1h or 1h30m"),
        (argtypes.duration, "0s", "duration must be positive"),
        (argtypes.byte_size, "lots", "must be a size such as 256MiB or 2GB"),
        (argtypes.process_counts, "0,2", "process counts must be positive whole numbers"),
        (argtypes.process_counts, "one,two", "expected process counts such as 1,2,4,8"),
        (argtypes.one_word("hostname"), "gpu 07", "hostname must be one word"),
    ],
)
def test_bad_values_are_one_line_and_exit_2(capsys, kind, text, message):
    with pytest.raises(SystemExit) as stopped:
        parsed(kind, text)
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert stopped.value.code == 2 and message in error and "Traceback" not in error
