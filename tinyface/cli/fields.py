"""Command-line options made from a settings dataclass: each field's default, type, choices
and help are written once, in the dataclass (``tinyface.option.option``), and the parser and
its reading back follow.

    @dataclass
    class Settings:
        epochs: int = option(30, "epochs from scratch")
        augment: bool = option(True, "no flips or shifts", flag="--no-augment")
        ratios: tuple = option((0.25, 1.0), "ratios of the curve", item=float)

    add_dataclass_options(parser, Settings, ["epochs", "augment", "ratios"])
    settings = from_args(Settings, parser.parse_args(), ["epochs", "augment", "ratios"])

    # another command, with its own recipe: its ``--epochs`` defaults to 20
    add_dataclass_options(other_parser, Settings, ["epochs"], defaults={"epochs": 20})

How a field becomes an option (``option``'s metadata; only fields made with it take part):

- the flag is ``--`` + the name with ``-`` for ``_`` (``flag=`` to name it otherwise);
- ``int``, ``float`` and ``str`` fields are typed options of that type (``choices=``), and
  so are ``X | None`` ones (a None default: the help text says what happens then);
- a ``bool`` field is an on/off flag that turns its default over (``--no-augment`` for a
  field that is True by default);
- a ``tuple`` field is a comma list (``"0.25,0.5"``; ``''``: empty) of ``item`` values,
  each one of ``items`` when given (``item_name`` names one in the error), and each
  passed through ``check`` when given;
- ``cli_default=`` puts another default in the parser (None: the help text says what
  happens, and an option left unset keeps the field's default); ``metavar=`` as argparse.

A command whose recipe differs from the dataclass's defaults (``train-student``'s 30 epochs
and LR faces' ``max_shift``, say) gives ``defaults={name: value}`` to
``add_dataclass_options``: that value is the option's default in the parser (and in
``--help``) instead of the field's, so ``from_args`` on default arguments gives the
recipe; the type, choices, check and help stay the field's. An on/off flag has no recipe
of its own (it always turns the field's default over).
"""
from __future__ import annotations

import dataclasses

from tinyface.cli import CLIError

__all__ = ["add_dataclass_options", "from_args", "flag_of"]

_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "tuple": tuple}
_UNSET = object()


def _field(cls, name):
    f = {f.name: f for f in dataclasses.fields(cls)}.get(name)
    if f is None or "help" not in f.metadata:
        raise KeyError(f"{cls.__name__}.{name} is not a command-line option")
    return f


def _kind(f):
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    kind = kind.removesuffix(" | None")            # an optional setting: None is its default
    if kind not in _TYPES:
        raise TypeError(f"{f.name}: a {kind!r} field cannot be a command-line option")
    return _TYPES[kind]


def flag_of(f):
    """The option string of field ``f``."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def _dest(f):
    return flag_of(f).lstrip("-").replace("-", "_")


def _text(value):
    return format(value, "g") if isinstance(value, float) else str(value)


def add_dataclass_options(group, cls, names, defaults=None):
    """Add the options of ``cls``'s fields ``names`` (in this order) to ``group`` (a
    parser or an argument group); ``defaults``: ``{name: value}``, a command's recipe,
    in place of those fields' defaults. Returns ``group``."""
    defaults = dict(defaults or {})
    unknown = sorted(set(defaults) - set(names))
    if unknown:
        raise KeyError(f"defaults for options not added: {', '.join(unknown)}")
    for name in names:
        f = _field(cls, name)
        meta, kind = f.metadata, _kind(f)
        kw = {"dest": _dest(f), "help": meta["help"]}
        if kind is bool:
            if name in defaults:
                raise ValueError(f"{flag_of(f)}: an on/off flag has no recipe default")
            group.add_argument(flag_of(f), action="store_true", **kw)
            continue
        default = defaults.get(name, meta.get("cli_default", _UNSET))
        if kind is tuple and name in defaults:
            default = ",".join(_text(v) for v in default)
        if default is _UNSET:
            default = ",".join(_text(v) for v in f.default) if kind is tuple else f.default
        kw["default"] = default
        if kind is not tuple:
            kw["type"] = kind
        for key in ("choices", "metavar"):
            if meta.get(key) is not None:
                kw[key] = meta[key]
        group.add_argument(flag_of(f), **kw)
    return group


def _items(f, text):
    """The tuple a comma list gives (``CLIError`` naming the option on a bad item)."""
    meta, flag = f.metadata, flag_of(f)
    item, allowed = meta.get("item", str), meta.get("items")
    out = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        try:
            value = item(part)
        except ValueError as exc:
            if item in (int, float):
                raise CLIError(f"{flag}: {part!r} is not a number") from None
            raise CLIError(f"{flag}: {exc}") from None
        if allowed is not None and value not in allowed:
            raise CLIError(f"{flag}: unknown {meta.get('item_name', 'value')} {value!r}; "
                           f"choose from {', '.join(allowed)}")
        if meta.get("check"):
            try:
                value = meta["check"](value)
            except ValueError as exc:
                raise CLIError(f"{flag}: {exc}") from None
        out.append(value)
    if allowed is not None and not out:
        raise CLIError(f"{flag}: give at least one {meta.get('item_name', 'value')}")
    return tuple(out)


def from_args(cls, args, names, **values):
    """``cls(**fields)`` with the fields ``names`` read from the parsed ``args`` (an
    option left at a None ``cli_default`` keeps the field's default) and ``values`` as
    given. A bad option or setting is a ``CLIError`` of one line."""
    for name in names:
        f = _field(cls, name)
        given = getattr(args, _dest(f))
        kind = _kind(f)
        if kind is bool:
            values[name] = (not f.default) if given else f.default
        elif given is None and f.metadata.get("cli_default", _UNSET) is None:
            continue
        else:
            values[name] = _items(f, given) if kind is tuple else given
    try:
        return cls(**values)
    except ValueError as exc:
        raise CLIError(str(exc).splitlines()[0]) from None
