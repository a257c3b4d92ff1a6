"""Errors a user can act on.

Anything raised as `UserError` reaches the terminal as one line and a non-zero exit code, never a traceback.
"""


class UserError(Exception):
    """Bad input or an unusable environment, with a message that says what to do."""

    exit_code = 2


class RunFailed(UserError):
    """A run that started but could not finish (out of memory, a broken data file)."""

    exit_code = 1
