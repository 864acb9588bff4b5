"""The ``fastgeo`` command: ``fastgeo demo`` (the main job), ``interpolate``, ``info``, ``bench``.

Each subcommand lives in its own module ``fastgeo.commands.<name>`` defining
``add_parser(subparsers)``, which adds its parser and sets ``run=`` (a function of the parsed
arguments returning an exit status). Adding one is a new module and a name in COMMANDS.

Errors: a user's mistake, that is a bad option (argparse) or a
:class:`~fastgeo.commands.UserError` raised by a command (an unknown name, an unreadable file,
an unwritable folder, a generator that raises or breaks its contract) or a run too large for
the memory (a MemoryError) prints one line naming the culprit and exits with status 2. An OSError from the
machine (a full disk, a folder made read-only during the run) prints one line and exits with
status 1. Anything else is a bug in fastgeo and shows its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .commands import UserError

COMMANDS = ("demo", "interpolate", "info", "bench")


class Parser(argparse.ArgumentParser):
    """Bad options end with one line on stderr and exit status 2 (no usage dump)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="fastgeo", description="Realism-aware interpolation in latent spaces: "
                    "compiled realism-index and path-energy kernels.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"fastgeo.commands.{name}").add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except UserError as err:
        print(f"fastgeo {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"fastgeo {args.command}: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        from ._arrays import is_out_of_memory

        # fastgeo's own estimate before allocating, or an allocation refused by numpy, torch
        # (a RuntimeError), CuPy or Numba: the run asked for more than the machine has
        if not is_out_of_memory(err):
            raise
        text = " ".join(str(err).split()) or "out of memory"
        print(f"fastgeo {args.command}: error: {text}; ask for fewer points, pairs or a smaller batch",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
