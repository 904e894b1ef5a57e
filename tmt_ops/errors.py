"""The one exception family for expected failures.

The CLI turns a TmtError into one line on stderr and an exit code (tmt_ops.cli.common.run); anything else
that escapes is a bug and keeps its traceback.
"""


class TmtError(Exception):
    """An expected failure with a one-line message for the operator."""

    exit_code = 1


class ConfigError(TmtError):
    """The registry, an argument or the environment is wrong: nothing was attempted."""

    exit_code = 2


class UsageError(ConfigError):
    """A command-line argument is wrong."""


class OperationFailed(TmtError):
    """The operation ran and failed: a service would not stop, start or become healthy."""

    exit_code = 1
