"""Command-line entry point.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``func(args) -> int``. ``main`` wires them together.

A command whose parser sets ``out_folder=True`` (``--out DIR``) runs holding that folder
(``tinyface.runlock.hold_folder``: created, checked writable, locked against a second
run). Errors the user can fix print one line and exit with 2: ``CLIError``, an output
folder that cannot be written, and any ``OSError`` (a full disk, say) with the path.
Warnings print as one line each (``warning: ...``). Ctrl-C exits with 130 after one line from the command's ``interrupted(args)``, saying
what was kept and how to continue.
"""
import argparse
import contextlib
import importlib
import sys
import warnings

from tinyface.helpformat import HelpFormatter
from tinyface.runlock import FolderError, hold_folder

# (module name inside tinyface.cli) in the order they appear in --help
COMMAND_MODULES = ["demo", "data", "streams", "evaluate", "ablation", "info", "bench"]


class CLIError(Exception):
    """An error the user can fix: printed as one line, never as a traceback."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m tinyface",
        description="Low-resolution face recognition via selective knowledge distillation "
                    "(NumPy + Numba).",
        formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"tinyface.cli.{name}").register(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """``warnings.showwarning`` for the command line: ``warning: <message>``, one line,
    without the source file and line that Python prints after it."""
    print(f"warning: {str(message).splitlines()[0] if str(message) else category.__name__}",
          file=sys.stderr if file is None else file, flush=True)


def main(argv=None):
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        return _main(argv)


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if getattr(args, "select_device", False):
            from tinyface.cli.options import use_device   # lazy: cycle, options imports CLIError from here
            use_device(args.device)
        held = hold_folder(args.out) if getattr(args, "out_folder", False) else contextlib.nullcontext()
        with held:
            return int(args.func(args) or 0)
    except (CLIError, FolderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:            # a full disk, a file removed under us, ...
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; every file written so far is complete "
              f"(written atomically)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        note = getattr(args, "interrupted", None)
        print(f"interrupted{': ' + note(args) if note else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
