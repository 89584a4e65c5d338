"""The ``--help`` formatter of every command: each option's default, where it says
something.

``argparse.ArgumentDefaultsHelpFormatter`` appends ``(default: X)`` to every option; this
one leaves it out where it would mislead or repeat: a None default (the help text says
what happens then), an on/off flag, and a help text that already says ``(default ...)``.
"""
import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown in ``--help``, except None ones, flags' and those already named."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default is None or action.default is argparse.SUPPRESS
                or isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
                or "(default" in text or (not action.option_strings and action.nargs != "?")):
            return text
        return super()._get_help_string(action)
