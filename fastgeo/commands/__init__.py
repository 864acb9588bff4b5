"""Subcommands of the ``fastgeo`` command, one module each (see fastgeo.cli)."""
