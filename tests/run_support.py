"""Running `dlbench run` in-process for the tests, every result checked against the schema shipped in the package."""

import jsonschema

from dlbench.train import results
from dlbench.train.runner import Run, RunConfig


def validate(result: dict) -> None:
    jsonschema.Draft202012Validator(results.schema(), format_checker=jsonschema.FormatChecker()).validate(result)


def execute(config: RunConfig, observers=(), command_line=None) -> dict:
    run = Run(config, observers, command_line=command_line)
    try:
        result = run.execute()
        validate(result)  # every result the tests make satisfies the schema
        return result
    finally:
        run.close()
