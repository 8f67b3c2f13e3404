"""`--config FILE.toml`: option values for any command from a TOML file, one table per command.

    [swap]                # facewright swap ...
    crf = 20
    label = "manipulated"
    [train]
    preset = "gpu-256"
    [bench.train]         # facewright bench train ...
    batch = 16

Precedence: the defaults, then the file's table for the command being run, then the flags given on the command
line. A table or key that names no command or option is an error naming the nearest one, so a typo never
passes silently. Positional arguments and required flags come from the command line only.
"""
from __future__ import annotations

import argparse
import difflib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from facewright.config import load_config
from facewright.errors import OptionError

NOT_FROM_FILES = {"help", "workspace", "debug", "config", "version"}


def apply_config(args: argparse.Namespace, argv: Sequence[str], commands: Iterable[str]) -> None:
    """Set the options of `args` that `argv` did not give from the file named by `args.config`.

    `commands`: every command path, dotted ("swap", "bench.train"), to check the file's table names.
    """
    path = Path(args.config)
    table = load_config(path)
    _check_tables(table, set(commands), path)
    section = _section(table, args.command_path)
    options = _options(args.command_parser)
    given = {a.dest for a in options.values() if any(_names(token, a) for token in argv)}
    for key, value in section.items():
        dest = key.replace("-", "_")
        if dest not in options:
            _unknown(f"option {key!r} of [{args.command_path}]", dest, options, path)
        if dest not in given:
            setattr(args, dest, _convert(options[dest], key, value, path))


def _names(token: str, action: argparse.Action) -> bool:
    return any(token == flag or token.startswith(flag + "=") for flag in action.option_strings)


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest not in NOT_FROM_FILES}


def _section(table: Mapping[str, Any], command: str) -> Mapping[str, Any]:
    for part in command.split("."):
        table = table.get(part, {})
        if not isinstance(table, Mapping):
            return {}
    return {k: v for k, v in table.items() if not isinstance(v, Mapping)}  # sub-tables are sub-commands


def _check_tables(table: Mapping[str, Any], commands: set[str], path: Path, prefix: str = "") -> None:
    groups = {c.rsplit(".", 1)[0] for c in commands if "." in c}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if not isinstance(value, Mapping):
            if not prefix:
                raise OptionError(f"{key!r} stands outside any [command] table", path=path,
                                  fix="put options under the table of their command, e.g. [swap]")
            continue
        if name not in commands and name not in groups:
            _unknown(f"table [{name}]", name, commands | groups, path)
        _check_tables(value, commands, path, f"{name}.")


def _unknown(what: str, name: str, known: Iterable[str], path: Path) -> None:
    near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    raise OptionError(f"{what} is not known", path=path,
                      fix=f"did you mean {near[0]!r}?" if near else f"known: {', '.join(sorted(known))}")


def _convert(action: argparse.Action, key: str, value: Any, path: Path) -> Any:
    """The file's value as the flag would have given it, or OptionError naming the key."""
    if action.nargs == 0:  # a switch (--all-faces, --json)
        if not isinstance(value, bool):
            raise OptionError(f"{key} must be true or false, got {value!r}", path=path)
        return value
    many = action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)
    if many:
        values = value if isinstance(value, list) else [value]
        return [_one(action, key, v, path) for v in values]
    if action.nargs == "?" and isinstance(value, bool):  # --resume: true, or a checkpoint path
        return value
    return _one(action, key, value, path)


def _one(action: argparse.Action, key: str, value: Any, path: Path) -> Any:
    kind = action.type or str
    if isinstance(value, bool) or isinstance(value, (list, dict)) or (kind is int and isinstance(value, float)):
        raise OptionError(f"{key} = {value!r} is not a {getattr(kind, '__name__', 'value')}", path=path)
    try:
        converted = kind(value)
    except (TypeError, ValueError) as exc:
        raise OptionError(f"{key} = {value!r}: {exc}", path=path) from exc
    if action.choices is not None and converted not in action.choices:
        raise OptionError(f"{key} = {value!r} is not allowed", path=path,
                          fix=f"use one of {', '.join(map(str, action.choices))}")
    return converted
