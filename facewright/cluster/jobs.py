"""The jobs file of `facewright batch`: many shots, each a `facewright swap`, read and checked as a whole.

    workspace = "ws"              # optional: else --workspace, $FACEWRIGHT_WORKSPACE or ./facewright-workspace
    [defaults]                    # every shot's options, unless the shot sets its own
    model = "demo"
    crf = 20
    [[shot]]
    name = "sh010"                # optional: the input's file name without its extension; unique in the file
    input = "plates/sh010.mp4"    # a video, an image or a folder of images
    output = "out/sh010.mp4"      # optional: swap's own default, <workspace>/outputs/STEM-swapped.EXT
    detail = 0.5                  # this shot's own value of an option

Options are `model` and the fields of SwapOptions, MarkOptions and VideoOptions (`facewright swap`'s flags with
`_` for `-`: detail, mask, label_position, crf, workers, ...). Relative paths (workspace, input, output, and the
reference and patch options) are relative to the jobs file's folder, so the file travels with its plates.

Everything is checked here, before any shot runs: an unknown key (with the nearest known one), a shot without
an input or a model, a value of the wrong type or out of range, two shots of one name, two shots writing one
output (or one patch folder), an output that is a shot's input. Each refusal is an OptionError naming the file,
the shot and the fix. Planning is pure: the file's table in, a BatchPlan out; nothing is read but the file.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facewright.config import KIND_WORDS, MarkOptions, SwapOptions, VideoOptions, build_all, runners, to_dict
from facewright.errors import InputNotFoundError, OptionError

SCHEMAS = (SwapOptions, MarkOptions, VideoOptions)
DEFAULTS = {f.name: f.default for schema in SCHEMAS for f in dataclasses.fields(schema)}
SHOT_KEYS = ("name", "input", "output")  # a shot's own: never shared through [defaults]
TOP_KEYS = ("workspace", "defaults", "shot")
# option values that are paths, relative to the jobs file like the inputs
PATH_OPTIONS = ("reference", "patch", "render_only")
# how a shot is run, not what it makes (device, workers): changing it does not redo a shot
NOT_IN_HASH = frozenset().union(*(runners(schema) for schema in SCHEMAS))
KINDS = {**KIND_WORDS, str: "text in quotes"}  # a TOML value's type in words


@dataclass(frozen=True)
class Shot:
    """One `facewright swap` of the batch: api.swap(input, output, model=model, **options)."""

    name: str
    input: Path  # absolute
    output: Path | None  # absolute; None: swap's default output path
    model: str
    options: Mapping[str, Any]  # the options [defaults] or the shot set, typed and checked
    options_hash: str  # sha256 of what decides the output: input, output, model, every resolved option


@dataclass(frozen=True)
class BatchPlan:
    jobs: Path  # the jobs file, absolute
    workspace: Path | None  # None: api's default workspace resolution
    shots: tuple[Shot, ...]

    @property
    def state_path(self) -> Path:
        """JOBS.state.json beside JOBS.toml: which shots are done, for the next run to skip."""
        return self.jobs.with_suffix(".state.json")


def load_jobs(path: str | Path, *, workspace: str | Path | None = None) -> BatchPlan:
    """Read and check a jobs file (see the module's docstring). `workspace` (the --workspace flag) wins over
    the file's."""
    path = Path(os.path.abspath(path))
    if not path.is_file():
        raise InputNotFoundError("no such jobs file", path=path, fix="check the path and its spelling")
    try:
        table = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OptionError(f"not valid TOML ({exc})", path=path, fix="fix the syntax at the place named") from exc
    return plan_jobs(table, path, workspace=workspace)


def plan_jobs(table: Mapping[str, Any], jobs: Path, *, workspace: str | Path | None = None) -> BatchPlan:
    """The checked plan of a jobs file's `table`; `jobs` (absolute) names it in errors and anchors its paths."""
    _known(table, TOP_KEYS, jobs, "the top of the file",
           f"known there: {', '.join(TOP_KEYS)}; options go under [defaults] or a [[shot]]")
    defaults = table.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise OptionError("defaults must be a table", path=jobs, fix="write it as [defaults] with key = value lines")
    for key in SHOT_KEYS:
        if key in defaults:
            raise OptionError(f"[defaults] sets {key!r}, which is each shot's own", path=jobs,
                              fix=f"move {key} = ... into the [[shot]] tables")
    _text(defaults, "model", jobs, "[defaults]")
    _options({k: v for k, v in defaults.items() if k != "model"}, jobs, "[defaults]")  # named as [defaults]'s
    raw_shots = table.get("shot")
    if not isinstance(raw_shots, list) or not raw_shots or not all(isinstance(s, Mapping) for s in raw_shots):
        raise OptionError("no shots: the file has no [[shot]] tables", path=jobs,
                          fix='add one per shot: [[shot]] with input = "PATH" (and name, output, options)')
    shots = tuple(_shot(i, raw, defaults, jobs) for i, raw in enumerate(raw_shots, 1))
    _refuse_clashes(shots, jobs)
    place = _text(table, "workspace", jobs, "the top of the file")
    if workspace is not None:  # the flag, relative to where the command runs
        return BatchPlan(jobs, Path(os.path.abspath(Path(workspace).expanduser())), shots)
    return BatchPlan(jobs, _path(jobs, place) if place else None, shots)


def _shot(number: int, raw: Mapping[str, Any], defaults: Mapping[str, Any], jobs: Path) -> Shot:
    where = f"shot {number}" + (f" ({raw['name']})" if isinstance(raw.get("name"), str) else "")
    if "input" not in raw:
        raise OptionError(f"{where} has no input", path=jobs,
                          fix='add input = "PATH" (a video, an image or a folder of images) to it')
    input = _path(jobs, _text(raw, "input", jobs, where))
    output = _text(raw, "output", jobs, where)
    name = _text(raw, "name", jobs, where) or input.stem
    values = {**defaults, **{k: v for k, v in raw.items() if k not in SHOT_KEYS}}
    model = _text(values, "model", jobs, where)
    if not model:
        raise OptionError(f"{where} has no model", path=jobs,
                          fix='set model = "NAME" in [defaults] (for every shot) or in the shot')
    options = _options({k: v for k, v in values.items() if k != "model"}, jobs, where)
    output_path = _path(jobs, output) if output else None
    return Shot(name, input, output_path, model, options, _hash(input, output_path, model, options))


def _options(values: Mapping[str, Any], jobs: Path, where: str) -> dict[str, Any]:
    """`values` as swap options: known names, the types of their defaults, values the schemas accept."""
    _known(values, [*DEFAULTS, "model"], jobs, where, "a shot takes name, input, output, model and the options "
           "of facewright swap (see facewright swap --help; - becomes _)")
    typed = {key: _typed(key, value, jobs, where) for key, value in values.items()}
    typed.update({k: str(_path(jobs, v)) for k, v in typed.items() if k in PATH_OPTIONS and v})
    try:
        build_all(SCHEMAS, flags=typed)
    except OptionError as exc:
        raise OptionError(f"{where}: {exc.message}", path=jobs, fix=exc.fix) from exc
    return typed


def _typed(key: str, value: Any, jobs: Path, where: str) -> Any:
    """`value` if it has the type of `key`'s default (a whole number where a number is wanted is one)."""
    kind = type(DEFAULTS[key])
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):  # True is an int to Python
        return value
    raise OptionError(f"{where}: {key} = {value!r} is not {KINDS[kind]}", path=jobs,
                      fix=f"e.g. {key} = {json.dumps(DEFAULTS[key])} (the default)")


def _text(table: Mapping[str, Any], key: str, jobs: Path, where: str) -> str | None:
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise OptionError(f"{where}: {key} = {value!r} is not a path or name in quotes", path=jobs,
                          fix=f'e.g. {key} = "sh010"' if key == "name" else f'write it as {key} = "..."')
    return value


def _known(keys: Iterable[str], known: Iterable[str], jobs: Path, where: str, elsewhere: str) -> None:
    """OptionError naming the first key of `keys` not in `known`, and the nearest known one."""
    known = sorted(known)
    for key in sorted(set(keys) - set(known)):
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        raise OptionError(f"{where}: unknown key {key!r}", path=jobs,
                          fix=f"did you mean {near[0]!r}?" if near else elsewhere)


def _path(jobs: Path, text: str | Path) -> Path:
    """`text` as an absolute path; a relative one is relative to the jobs file's folder."""
    return Path(os.path.normpath(jobs.parent / Path(text).expanduser()))


def _hash(input: Path, output: Path | None, model: str, options: Mapping[str, Any]) -> str:
    resolved = {k: v for part in build_all(SCHEMAS, flags=options) for k, v in to_dict(part).items()}
    what = {"input": str(input), "output": str(output), "model": model,
            **{k: v for k, v in resolved.items() if k not in NOT_IN_HASH}}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def _refuse_clashes(shots: tuple[Shot, ...], jobs: Path) -> None:
    """Two shots of one name, writing one output or patch folder, or a shot writing over another's input."""
    inputs = {shot.input: shot.name for shot in shots}
    seen: dict[tuple[str, object], str] = {}
    for shot in shots:
        # swap's default output is named after the input's stem: two defaults of one stem would collide
        claims = [("name", shot.name), ("output", shot.output or ("default output of", shot.input.stem))]
        for option in ("patch", "render_only"):
            if shot.options.get(option):
                claims.append(("patch folder", shot.options[option]))
        for kind, value in claims:
            if (kind, value) in seen:
                raise OptionError(f"shots {seen[kind, value]!r} and {shot.name!r} have the same {kind} "
                                  f"({_shown(value)})", path=jobs, fix=_CLASH_FIX[kind])
            seen[kind, value] = shot.name
        if shot.output in inputs:
            raise OptionError(f"shot {shot.name!r} writes its output over the input of shot "
                              f"{inputs[shot.output]!r} ({shot.output}); inputs are never overwritten",
                              path=jobs, fix="choose another output path")


def _shown(value: object) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


_CLASH_FIX = {
    "name": 'give each shot its own name = "..." (the default is the input\'s file name without extension)',
    "output": 'give each shot its own output = "PATH"',
    "patch folder": 'give each shot its own patch = "FOLDER"',
}


def format_plan(plan: BatchPlan, done: Collection[str] = ()) -> str:
    """The resolved plan as text (`--dry-run`): each shot's input, output, model and options; `done`: the
    shots a run would skip."""
    lines = [f"jobs {plan.jobs}: {len(plan.shots)} shot(s); workspace: {plan.workspace or '(the default)'}; "
             f"state: {plan.state_path}"]
    for shot in plan.shots:
        output = shot.output or "(swap's default: <workspace>/outputs/" + f"{shot.input.stem}-swapped.EXT)"
        options = ", ".join(f"{k}={v!r}" for k, v in sorted(shot.options.items())) or "(the defaults)"
        lines += [f"{shot.name}{'  [done before: would be skipped]' if shot.name in done else ''}",
                  f"  input:   {shot.input}", f"  output:  {output}", f"  model:   {shot.model}",
                  f"  options: {options}"]
    return "\n".join(lines)
