"""Subcommands of the ``fastgeo`` command, one module each (see fastgeo.cli)."""


class UserError(Exception):
    """A mistake in the user's input (a name, a file, a folder): the command prints the message
    as one line, ``fastgeo <command>: error: <message>``, and exits with status 2, no traceback."""
