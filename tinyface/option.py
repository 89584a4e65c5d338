"""``option``: a dataclass field that is also a command-line option.

A settings dataclass (``TrainConfig``, ``AblationSettings``) is the one home of each
setting's default, validation and help text; ``tinyface.cli.fields`` turns the fields made
with ``option`` into a command's options and reads them back. This module imports nothing
from the package, so every floor may use it.

    @dataclass
    class Settings:
        epochs: int = option(30, "epochs from scratch")
        augment: bool = option(True, "no flips or shifts", flag="--no-augment")
"""
from dataclasses import field

__all__ = ["option"]


def option(default, help, *, flag=None, **cli):
    """A dataclass field that is also a command-line option (``tinyface.cli.fields``):
    its ``default``, its ``help`` and the option's own keys (``flag``, ``choices``,
    ``metavar``, ``item``, ``items``, ``item_name``, ``check``, ``cli_default``)."""
    return field(default=default, metadata={"help": help, "flag": flag, **cli})
