"""Option schemas: frozen dataclasses that feed the CLI flags, TOML config files and the API alike.

A flag's name is its field's name (`--crf` sets `crf`), so `facewright swap --crf 20` and
`facewright.swap(..., crf=20)` mean the same. Precedence: defaults < config file section < explicit flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from facewright.errors import OptionError

T = TypeVar("T")

VIDEO_CODECS = ("libx264", "libx265")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def option(default: Any, help: str, choices: tuple | None = None) -> Any:
    """A dataclass field carrying its CLI help text and allowed values."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """How videos are encoded."""

    codec: str = option("libx264", "video encoder", VIDEO_CODECS)
    crf: int = option(18, "quality, 0 (lossless) to 51; 18 looks lossless, 23 is x264's default")
    preset: str = option("medium", "encoder speed / size trade-off", PRESETS)

    def __post_init__(self) -> None:
        check_choices(self)
        if not 0 <= self.crf <= 51:
            raise OptionError(f"--crf {self.crf} is outside 0..51", fix="use 18 (near lossless) to 28 (small files)")


def check_choices(options: object) -> None:
    for field in dataclasses.fields(options):
        choices = field.metadata.get("choices")
        value = getattr(options, field.name)
        if choices and value not in choices:
            raise OptionError(f"--{field.name.replace('_', '-')} {value!r} is not allowed",
                              fix=f"use one of {', '.join(map(str, choices))}")


def add_options(parser: argparse.ArgumentParser, schema: type) -> None:
    """Add one flag per field of `schema`; an unset flag is None so config files can fill it."""
    group = parser.add_argument_group(schema.__doc__.strip().rstrip(".").lower() if schema.__doc__ else None)
    for field in dataclasses.fields(schema):
        group.add_argument(f"--{field.name.replace('_', '-')}", dest=field.name, type=type(field.default),
                           default=None, choices=field.metadata.get("choices"),
                           help=f"{field.metadata.get('help', '')} (default: {field.default})")


def build(schema: type[T], flags: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> T:
    """Resolve an options object: defaults, then the config section, then flags that were given."""
    names = {f.name for f in dataclasses.fields(schema)}
    unknown = set(config or {}) - names
    if unknown:
        raise OptionError(f"unknown option(s) in config: {', '.join(sorted(unknown))}",
                          fix=f"allowed here: {', '.join(sorted(names))}")
    values = dict(config or {})
    values.update({k: v for k, v in (flags or {}).items() if k in names and v is not None})
    try:
        return schema(**values)
    except TypeError as exc:
        raise OptionError(str(exc)) from exc


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file: one table per command (`[swap]`, `[train]`, ...)."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise OptionError("config file not found", path=path, fix="check the --config path") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OptionError(f"not valid TOML ({exc})", path=path, fix="fix the syntax at the place named") from exc


def to_dict(options: object) -> dict[str, Any]:
    """Options as plain JSON-ready values, for run records and checkpoints."""
    def plain(value: Any) -> Any:
        return str(value) if isinstance(value, (Path, Fraction)) else value
    return {k: plain(v) for k, v in dataclasses.asdict(options).items()}
