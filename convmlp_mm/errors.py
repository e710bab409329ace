"""The base of every error whose message says what is wrong and what to do.

Library code raises a subclass (each keeps its standard base too, e.g. ``DatasetNotFoundError(UserError,
FileNotFoundError)``, so callers may catch either); the tools' ``run_main`` prints such an error in one line,
without a traceback, and exits with 1. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """An error in what the user asked for or supplied, explained in its message."""


class ToolArgumentError(UserError, ValueError):
    """A tool's arguments do not fit the config, files or machine (the message names the argument)."""
