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
passes silently. Positional arguments and required flags (swap's --model, extract's --identity) come from the
command line only: they say what this one run works on, so a file naming one is refused.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from facewright.config import KIND_WORDS, load_config
from facewright.errors import OptionError

NOT_FROM_FILES = {"help", "workspace", "debug", "config", "version"}


def apply_config(args: argparse.Namespace, argv: Sequence[str], commands: Iterable[str]) -> None:
    """Set the options of `args` that `argv` did not give from the file named by `args.config`.

    `commands`: every command path, dotted ("swap", "bench.train"), to check the file's table names.
    """
    path, where = Path(args.config), f"[{args.command_path}]"
    table = load_config(path)
    _check_tables(table, set(commands), path)
    section = _section(table, args.command_path)
    options = _options(args.command_parser)
    given = {a.dest for a in options.values() if any(_names(token, a) for token in argv)}
    for key, value in section.items():
        dest = key.replace("-", "_")
        if dest not in options:
            _unknown(f"option {key!r} of {where}", dest, options, path)
        if options[dest].required:
            flag = options[dest].option_strings[-1]
            raise OptionError(f"{where} {key}: {flag} is required and comes from the command line only", path=path,
                              fix=f"remove {key} from {where} and give {flag} on the command line")
        if dest not in given:
            setattr(args, dest, _convert(options[dest], where, key, value, path))


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
            if prefix[:-1] not in commands:  # the top level, or a group's table: neither has options
                _stray(key, prefix[:-1], commands, path)
            continue
        if name not in commands and name not in groups:
            _unknown(f"table [{name}]", name, commands | groups, path)
        _check_tables(value, commands, path, f"{name}.")


def _stray(key: str, group: str, commands: set[str], path: Path) -> None:
    """OptionError for a value outside any command's table: at the top level or in a group's (`[bench]`)."""
    if not group:
        raise OptionError(f"{key!r} stands outside any [command] table", path=path,
                          fix="put options under the table of their command, e.g. [swap]")
    own = sorted(c for c in commands if c.startswith(f"{group}."))
    fix = (f"put the options of facewright {group} {key} under [{group}.{key}]" if f"{group}.{key}" in commands
           else f"put options under the table of their command: {', '.join(f'[{c}]' for c in own)}")
    raise OptionError(f"[{group}] {key}: [{group}] is a group of commands and has no options of its own", path=path,
                      fix=fix)


def _unknown(what: str, name: str, known: Iterable[str], path: Path) -> None:
    near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    raise OptionError(f"{what} is not known", path=path,
                      fix=f"did you mean {near[0]!r}?" if near else f"known: {', '.join(sorted(known))}")


def _convert(action: argparse.Action, where: str, key: str, value: Any, path: Path) -> Any:
    """The file's value as the flag would have given it, or OptionError naming the table (`where`) and key."""
    if action.nargs == 0:  # a switch (--all-faces, --json)
        if not isinstance(value, bool):
            raise _wrong(action, where, key, value, path)
        return value
    many = action.nargs in ("+", "*") or isinstance(action, argparse._AppendAction)
    if many:
        values = value if isinstance(value, list) else [value]
        return [_one(action, where, key, v, path) for v in values]
    if action.nargs == "?" and isinstance(value, bool):  # --resume: true, or a checkpoint path
        return value
    return _one(action, where, key, value, path)


def _one(action: argparse.Action, where: str, key: str, value: Any, path: Path) -> Any:
    kind = action.type or str
    converted = _typed(kind, value)
    if converted is None:
        raise _wrong(action, where, key, value, path)
    if action.choices is not None and converted not in action.choices:
        raise OptionError(f"{where} {key} = {value!r} is not allowed", path=path,
                          fix=f"use one of {', '.join(map(str, action.choices))}")
    return converted


def _typed(kind: Callable[[Any], Any], value: Any) -> Any:
    """`value` as the flag's `kind` converts it, or None where it is not of that kind."""
    if isinstance(value, (bool, list, dict)) or (kind is int and isinstance(value, float)) or (
            kind is str and not isinstance(value, str)):  # TOML values have types: 5 is not the text "5"
        return None
    with contextlib.suppress(TypeError, ValueError, argparse.ArgumentTypeError):
        return kind(value)
    return None


def _wrong(action: argparse.Action, where: str, key: str, value: Any, path: Path) -> OptionError:
    """`[table] key = value` is not of the kind its flag takes, in words ("a whole number", "true or false")."""
    kind = bool if action.nargs == 0 else action.type or str
    flag, command = action.option_strings[-1], where.strip("[]").replace(".", " ")
    fixes = {bool: f"write {key} = true or {key} = false", str: f'write it in quotes: {key} = "{value}"'}
    words = KIND_WORDS.get(kind, f"a value {flag} takes")
    return OptionError(f"{where} {key} = {value!r} is not {words}", path=path,
                       fix=fixes.get(kind, f"write it as you would give {flag} (see facewright {command} --help)"))
