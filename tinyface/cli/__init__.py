"""Command-line entry point.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``func(args) -> int``. ``main`` wires them together.
"""
import argparse
import importlib
import sys

# (module name inside tinyface.cli) in the order they appear in --help
COMMAND_MODULES = ["demo", "data", "streams", "evaluate", "ablation", "info", "bench"]


class CLIError(Exception):
    """An error the user can fix: printed as one line, never as a traceback."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m tinyface",
        description="Low-resolution face recognition via selective knowledge distillation "
                    "(NumPy + Numba).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"tinyface.cli.{name}").register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if getattr(args, "select_device", False):
            from tinyface.cli.options import use_device
            use_device(args.device)
        return int(args.func(args) or 0)
    except CLIError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
