"""Option schemas: frozen dataclasses that feed the CLI flags, TOML config files and the API alike.

A flag's name is its field's name (`--crf` sets `crf`), so `facewright swap --crf 20` and
`facewright.swap(..., crf=20)` mean the same. Precedence: defaults < config file section < explicit flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import numbers
import operator
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from facewright.errors import OptionError

T = TypeVar("T")
KIND_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}  # a value's type in words
SEED_MAX = 2**32 - 1  # numpy refuses negative seeds; the trainer scales one by ~10^12, within torch's 64 bits

VIDEO_CODECS = ("libx264", "libx265")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def option(default: Any, help: str, choices: tuple | None = None, *, runner: bool = False,
           at_least: float | None = None, above: float | None = None, at_most: float | None = None,
           below: float | None = None) -> Any:
    """A dataclass field carrying its CLI help text and allowed values. `runner`: the option says how the work is
    run (where, on how many processes), not what it makes: `made_by` leaves it out. `at_least`, `above`,
    `at_most`, `below`: the bounds of a number (`check_fields` also refuses NaN and infinity)."""
    bounds = {word: limit for word, limit in (("at least", at_least), ("above", above), ("at most", at_most),
                                              ("below", below)) if limit is not None}
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "runner": runner,
                                                        "bounds": bounds})


@dataclasses.dataclass(frozen=True)
class VideoOptions:
    """How videos are encoded."""

    codec: str = option("libx264", "video encoder", VIDEO_CODECS)
    crf: int = option(18, "quality, 0 (lossless) to 51; 18 looks lossless, 23 is x264's default", at_least=0,
                      at_most=51)
    preset: str = option("medium", "encoder speed / size trade-off", PRESETS)

    def __post_init__(self) -> None:
        check_fields(self)


LABEL_PRESETS = ("ai-generated", "manipulated", "none")
LABEL_POSITIONS = ("bottom-left", "bottom-right", "top-left", "top-right")


@dataclasses.dataclass(frozen=True)
class MarkOptions:
    """How outputs are marked (the watermark and C2PA signature are always applied)."""

    label: str = option("ai-generated", "visible label: 'ai-generated', 'manipulated' (California AB 730's "
                        "wording) or 'none' (must be chosen explicitly; recorded in the C2PA manifest)",
                        LABEL_PRESETS)
    label_position: str = option("bottom-left", "corner of the visible label", LABEL_POSITIONS)
    name_in_manifest: bool = option(False, "write the output's file name and the model's name into the C2PA "
                                    "manifest (default: a generic title and the model's sha256, no names; the "
                                    "choice is recorded in the manifest)")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """How a pair model is trained."""

    model: str = option("liae-ud", "architecture (facewright models list)")
    resolution: int = option(128, "face size in pixels the model learns, 64-512, a multiple of 16")
    batch: int = option(8, "faces of each person per step (split over GPUs under torchrun)", at_least=1)
    steps: int = option(0, "stop after this many steps in all (0: no step limit)", at_least=0)
    minutes: float = option(0.0, "stop after this many minutes of this run (0: no time limit; Ctrl-C also stops)",
                            at_least=0)
    lr: float = option(2e-4, "peak learning rate of AdamW", above=0, at_most=1)
    warmup: int = option(200, "steps of linear learning-rate warm-up", at_least=0)
    schedule: str = option("constant", "learning rate after warm-up: constant, or cosine down to a tenth at the end "
                           "of --steps or --minutes (a run with neither stays constant)", ("constant", "cosine"))
    clip_grad: float = option(1.0, "gradient norm clipping (0: off)", at_least=0)
    ema: float = option(0.999, "decay of the generator weights' moving average, used for previews and swaps",
                        at_least=0, below=1)
    ae_dims: int = option(0, "bottleneck width (0: the model's default)", at_least=0)
    e_dims: int = option(0, "encoder width (0: the model's default)", at_least=0)
    d_dims: int = option(0, "decoder width (0: the model's default)", at_least=0)
    d_mask_dims: int = option(0, "mask decoder width (0: the model's default)", at_least=0)
    gan_power: float = option(0.0, "weight of the adversarial loss (0: off; ~0.1 sharpens a trained model)",
                              at_least=0)
    gan_start: int = option(0, "step from which the adversarial loss is on", at_least=0)
    gan_kind: str = option("hinge", "adversarial loss", ("hinge", "lsgan"))
    priority: float = option(3.0, "extra weight of eyes and mouth in the reconstruction loss (0: off)", at_least=0)
    # the warp moves points by up to this share of the crop's side: past half of it the face is torn apart
    warp: float = option(0.05, "random warp strength (0: off)", at_least=0, at_most=0.5)
    rotate: float = option(10.0, "random rotation, degrees", at_least=0, at_most=180)
    flip: bool = option(False, "random horizontal flips (faces are not symmetric: off by default)")
    color_transfer: bool = option(False, "move A's colors toward B's statistics while training")
    pose_match: float = option(0.0, "share of A's faces drawn by how close their head pose (yaw, pitch) is to B's "
                               "faces, the poses a swap renders A in (0: every face of A alike; the demo preset: 0.6)",
                               at_least=0, at_most=1)
    seed: int = option(0, "random seed of sampling, augmentation and initial weights", at_least=0, at_most=SEED_MAX)
    save_every: int = option(500, "steps between checkpoints (one is also written on stop and Ctrl-C)", at_least=1)
    keep: int = option(3, "checkpoints kept", at_least=1)
    preview_every: int = option(250, "steps between preview PNGs (0: off)", at_least=0)
    timelapse: bool = option(False, "keep every preview (previews/step_N.png), not only the latest")
    log_every: int = option(10, "steps between metric lines in metrics.jsonl", at_least=1)
    device: str = option("auto", "cpu, cuda, cuda:N or auto")
    compile: bool = option(False, "torch.compile the training step (CUDA; slow to start, faster after)")

    def __post_init__(self) -> None:
        check_fields(self)

    def model_options(self) -> dict[str, int]:
        """The width options that were set, for create_model."""
        names = ("ae_dims", "e_dims", "d_dims", "d_mask_dims")
        return {name: getattr(self, name) for name in names if getattr(self, name) > 0}


COLOR_MODES = ("rct", "lct", "mkl", "idt", "sot", "hist", "none")  # swap.color registers them; a test checks
MASK_MODES = ("intersect", "predicted", "hull", "union", "occlusion")
BLEND_MODES = ("alpha", "poisson")


@dataclasses.dataclass(frozen=True)
class MaskTrainOptions:
    """How an occlusion mask model is trained (facewright mask train)."""

    model: str = option("xseg", "architecture: xseg, or xseg-tiny for smoke runs")
    resolution: int = option(128, "crop size in pixels the mask model sees, 64-512, a multiple of 16")
    batch: int = option(16, "crops per step", at_least=1)
    steps: int = option(600, "stop after this many steps in all (0: no step limit)", at_least=0)
    minutes: float = option(0.0, "stop after this many minutes of this run (0: no time limit; Ctrl-C also stops)",
                            at_least=0)
    lr: float = option(2e-3, "learning rate of AdamW (decays to a tenth over the last fifth of --steps)", above=0,
                       at_most=1)
    clean: float = option(0.15, "share of training crops shown with no occluder pasted", at_least=0, at_most=1)
    seed: int = option(0, "random seed of sampling, occluders and initial weights", at_least=0, at_most=SEED_MAX)
    save_every: int = option(200, "steps between checkpoints (one is also written on stop and Ctrl-C)", at_least=1)
    keep: int = option(2, "checkpoints kept", at_least=1)
    preview_every: int = option(100, "steps between preview PNGs and held-out IoU figures (0: at the end only)",
                                at_least=0)
    device: str = option("auto", "cpu, cuda, cuda:N or auto")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclasses.dataclass(frozen=True)
class SwapOptions:
    """How faces are swapped and post-processed."""

    target: str = option("", "identity whose faces are replaced (default: the model's person B); needs a "
                         "target-role consent whose photo matches them")
    all_faces: bool = option(False, "swap every tracked face, not only the target's (each must still match "
                             "the target's consent photo)")
    reference: str = option("", "swap the faces that match the one face in this photo instead")
    threshold: float = option(0.6, "identity distance within which a face is the target (dlib L2)", above=0)
    force: bool = option(False, "use a model trained on another person B than --target (recorded in the manifest)")
    color: str = option("rct", "color transfer of the new face toward the old one", COLOR_MODES)
    color_stats: str = option("track", "fit the color transfer once per face track (steady) or per frame",
                              ("track", "frame"))
    mask: str = option("auto", "blend mask: model prediction, landmark hull, both (intersect) or either; occlusion: "
                       "hull minus what a mask model calls not face (auto: occlusion when the target's faceset has a "
                       "mask model, else intersect)", ("auto", *MASK_MODES))
    mask_model: str = option("", "mask model for --mask occlusion (default: the one named after the target's "
                             "faceset, as facewright mask train names it)")
    hands: str = option("auto", "keep hands in front of the face (auto: when the hand model is fetched)",
                        ("auto", "on", "off"))
    mouth: str = option("swap", "keep: the target's own mouth interior (teeth, tongue) stays", ("swap", "keep"))
    erode: float = option(0.02, "mask erosion as a fraction of the face size (negative: dilate)", above=-0.5,
                          below=0.5)
    blur: float = option(0.06, "mask feathering as a fraction of the face size", at_least=0, below=0.5)
    blend: str = option("alpha", "alpha (feathered) or poisson (seamless clone)", BLEND_MODES)
    detail: float = option(1.0, "share of the original face's fine detail (skin texture, grain) carried onto the "
                           "new face, less of it in the eyes, brows and lips (0: off, 1: all of it)", at_least=0,
                           at_most=1)
    detail_features: float = option(0.4, "share of --detail carried in the eyes, brows and lips, where the faces' "
                                    "outlines differ (0: none, 1: as on the skin)", at_least=0, at_most=1)
    detail_scale: float = option(0.01, "finest scale the new face keeps as its own, a fraction of the face size "
                                 "(--detail carries over what is finer)", above=0, at_most=0.1)
    restore: float = option(1.0, "raise the new face's own contrast just coarser than --detail-scale toward the "
                            "original face's (a soft model's faint eyelids and lips; at most 3x; 0: off, 1: fully)",
                            at_least=0, at_most=1)
    motion: float = option(0.75, "share of the original face's fast changes in the eyes and lips (blinks, the "
                           "lips in speech) carried onto the new face in a video (0: off, 1: all of it)", at_least=0,
                           at_most=1)
    sharpen: float = option(0.0, "unsharp-mask amount on the new face (0: off; 0.3-0.8 is typical)", at_least=0)
    face_scale: float = option(1.0, "scale of the new face about its centre (0.5-1.5; 0.9-1.1 is typical)",
                               at_least=0.5, at_most=1.5)
    smooth: float = option(1.0, "landmark smoothing cutoff in Hz (One Euro; lower = steadier; 0: off)", at_least=0)
    smooth_beta: float = option(2.0, "how fast smoothing lets go on fast motion (One Euro beta, per face size)",
                                at_least=0)
    # the cut score is half the mean L1 distance of normalized color histograms: 0 (same colors) to 1
    cut_threshold: float = option(0.35, "frame difference that counts as a scene cut (no smoothing across it)",
                                  at_least=0, at_most=1)
    max_faces: int = option(4, "faces looked for per frame", at_least=1)
    batch: int = option(8, "faces per model call", at_least=1)
    preview: int = option(0, "also write a PNG strip of N frames, input | output (0: off)", at_least=0)
    patch: str = option("", "video input: also write each track's aligned swapped faces, masks and matrices "
                        "into this folder, for compositing")
    render_only: str = option("", "video input: render the chosen faces into this folder and stop, no output "
                              "video; `facewright composite INPUT --patch DIR` makes it (resumable)")
    device: str = option("auto", "cpu, cuda, cuda:N or auto", runner=True)
    workers: int = option(0, "processes a long video is split over, in chunks at keyframes (0: $FACEWRIGHT_WORKERS, "
                          "else one per core; 1: this process only)", runner=True, at_least=0)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.all_faces and self.reference:
            raise OptionError("--all-faces and --reference both choose the faces", fix="give one of them")


@dataclasses.dataclass(frozen=True)
class ScoreOptions:
    """How a swap is scored."""

    samples: int = option(240, "frames whose identity is measured, spread over the clip (~0.2 s each on a CPU)",
                          at_least=1)
    worst: int = option(8, "worst frames listed and shown in the contact sheet", at_least=0)

    def __post_init__(self) -> None:
        check_fields(self)


FACE_TYPES = ("face", "whole_face", "head")  # the crops of faces.align; tests check the two agree
IMAGE_FORMATS = ("png", "jpg")


@dataclasses.dataclass(frozen=True)
class ExtractOptions:
    """How faces are extracted into a faceset."""

    every: int = option(1, "use every Nth frame of a video", at_least=1)
    fps: float = option(0.0, "sample at most this many frames per second of video (0: no limit)", at_least=0)
    detector: str = option("blazeface-full", "face detector for photos (videos use the landmarker's tracker)",
                           ("blazeface", "blazeface-full", "dlib-hog"))
    max_faces: int = option(4, "most faces looked at per frame", at_least=1)
    face_type: str = option("whole_face", "crop coverage: face, whole_face (with forehead) or head", FACE_TYPES)
    size: int = option(256, "aligned crop size in pixels (64-1024)", at_least=64, at_most=1024)
    image_format: str = option("png", "format of the aligned crops", IMAGE_FORMATS)
    jpeg_quality: int = option(95, "JPEG quality when --image-format jpg", at_least=1, at_most=100)
    min_face: float = option(48.0, "smallest face kept: face width in source pixels", at_least=0)
    min_sharpness: float = option(12.0, "blur limit: variance of the Laplacian on the 256 px gray crop", at_least=0)
    max_yaw: float = option(75.0, "profile limit in degrees (|yaw| above it is rejected)", at_least=0, at_most=90)
    max_pitch: float = option(60.0, "up/down limit in degrees", at_least=0, at_most=90)
    dedupe: int = option(3, "near-duplicate limit: max differing bits of the 64-bit crop hash (0: keep all)",
                         at_least=0, at_most=64)
    reference: str = option("", "photo of the person to keep; without it the largest identity cluster is kept")
    threshold: float = option(0.6, "identity distance under which two faces are the same person (dlib scale)",
                              above=0)
    for_swap: bool = option(False, "also store per-frame geometry of every track, for a later swap of this video")
    workers: int = option(0, "processes a video is split over, in chunks at keyframes (0: $FACEWRIGHT_WORKERS, else "
                          "one per core; 1: this process only)", runner=True, at_least=0)
    mask_model: str = option("", "store masks that leave out what this mask model says covers the face (facewright "
                             "mask train): a pair model trained on them learns occluders")

    def __post_init__(self) -> None:
        check_fields(self)


_WITHIN = {"at least": operator.ge, "above": operator.gt, "at most": operator.le, "below": operator.lt}


def check_fields(options: object) -> None:
    """OptionError naming the first field of `options` whose value its `option()` does not allow: not one of its
    choices, not a number (a whole one where the default is), outside its bounds, or NaN or infinite."""
    for field in dataclasses.fields(options):
        value, flag = getattr(options, field.name), f"--{field.name.replace('_', '-')}"
        choices = field.metadata.get("choices")
        if choices and value not in choices:
            raise OptionError(f"{flag} {value!r} is not allowed", fix=f"use one of {', '.join(map(str, choices))}")
        if isinstance(field.default, bool) or not isinstance(field.default, (int, float)):
            continue
        whole, bounds = isinstance(field.default, int), field.metadata.get("bounds", {})
        use = f"use {_allowed(whole, bounds)} (default: {field.default})"
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if whole else numbers.Real):
            raise OptionError(f"{flag} {value!r} is not {KIND_WORDS[int if whole else float]}", fix=use)
        finite = isinstance(value, numbers.Integral) or math.isfinite(value)
        if not finite or not all(_WITHIN[word](value, limit) for word, limit in bounds.items()):
            raise OptionError(f"{flag} {value} is outside {_interval(bounds)}", fix=use)


def _allowed(whole: bool, bounds: Mapping[str, float]) -> str:
    """`bounds` in words: "a whole number from 0 to 51", "a finite number, above 0"."""
    if set(bounds) == {"at least", "at most"}:
        return f"{KIND_WORDS[int if whole else float]} from {bounds['at least']} to {bounds['at most']}"
    kind = KIND_WORDS[int] if whole else "a number" if len(bounds) == 2 else "a finite number"
    limits = " and ".join(f"{word} {limit}" for word, limit in bounds.items())
    return f"{kind}, {limits}" if limits else kind


def _interval(bounds: Mapping[str, float]) -> str:
    """`bounds` as an interval: "0..51" (both ends allowed), "[0, 1)", "(0, inf)"."""
    if set(bounds) == {"at least", "at most"}:
        return f"{bounds['at least']}..{bounds['at most']}"
    low, high = bounds.get("at least", bounds.get("above", "-inf")), bounds.get("at most", bounds.get("below", "inf"))
    return f"{'[' if 'at least' in bounds else '('}{low}, {high}{']' if 'at most' in bounds else ')'}"


def add_options(parser: argparse.ArgumentParser, schema: type) -> None:
    """Add one flag per field of `schema`; an unset flag is None so config files can fill it."""
    group = parser.add_argument_group(schema.__doc__.strip().rstrip(".").lower() if schema.__doc__ else None)
    for field in dataclasses.fields(schema):
        flag, text = f"--{field.name.replace('_', '-')}", field.metadata.get("help", "")
        if isinstance(field.default, bool):
            group.add_argument(flag, dest=field.name, action="store_true", default=None, help=text)
            continue
        group.add_argument(flag, dest=field.name, type=type(field.default), default=None,
                           choices=field.metadata.get("choices"), help=f"{text} (default: {field.default})")


@dataclasses.dataclass(frozen=True)
class OptionField:
    """One option as a form shows it: the name (a flag's and an API keyword's), its default, its type's name
    (bool, int, float, str), its help text and its allowed values."""

    name: str
    default: Any
    kind: str
    help: str
    choices: tuple | None
    group: str


def describe_options(schemas: Sequence[type]) -> list[OptionField]:
    """Every field of `schemas`, in order, for a form built from the same schema as the CLI's flags."""
    return [OptionField(f.name, f.default, type(f.default).__name__, f.metadata.get("help", ""),
                        f.metadata.get("choices"), (schema.__doc__ or schema.__name__).strip().rstrip("."))
            for schema in schemas for f in dataclasses.fields(schema)]


def build(schema: type[T], flags: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None) -> T:
    """Resolve an options object: defaults, then `config` (a config file's section, a preset), then the
    `flags` that were given (None: not given). A key the schema does not know is an OptionError."""
    [options] = build_all((schema,), flags, config)
    return options


def build_all(schemas: Sequence[type], flags: Mapping[str, Any] | None = None,
              config: Mapping[str, Any] | None = None) -> tuple:
    """`build` for several schemas that share one set of keys (swap takes SwapOptions, MarkOptions and
    VideoOptions fields together): each key must belong to one of them."""
    names = [{f.name for f in dataclasses.fields(schema)} for schema in schemas]
    check_known(set(config or {}) | set(flags or {}), set().union(*names))
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    built = []
    for schema, known in zip(schemas, names, strict=True):
        values = {k: v for k, v in {**(config or {}), **given}.items() if k in known}
        try:
            built.append(schema(**values))
        except TypeError as exc:
            raise OptionError(str(exc)) from exc
    return tuple(built)


def check_known(keys: Iterable[str], known: Iterable[str]) -> None:
    """OptionError naming the first unknown key (as its flag) and the nearest known one."""
    known = sorted(known)
    for key in sorted(set(keys) - set(known)):
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean --{near[0].replace('_', '-')}?" if near else f"known here: {', '.join(known)}"
        raise OptionError(f"unknown option {key!r} (--{key.replace('_', '-')})", fix=hint)


def parse_assignments(text: str, schema: type, flag: str) -> dict[str, Any]:
    """`"key=value,key=value"` as `schema` fields with their defaults' types (`--train lr=1e-3,ema=0`).
    The values are checked by building `schema` from them; an unknown key or a bad value is an OptionError."""
    defaults = {f.name: f.default for f in dataclasses.fields(schema)}
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise OptionError(f"{flag} {item!r} is not KEY=VALUE", fix=f"e.g. {flag} {next(iter(defaults))}=...")
        check_known([key], defaults)
        values[key] = _typed(value.strip(), defaults[key], f"{flag} {key}")
    build(schema, config=values)
    return values


def _typed(value: str, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if value.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise OptionError(f"{name}={value!r} is not {KIND_WORDS[bool]}")
        return value.lower() in ("true", "1", "yes", "on")
    try:
        return type(default)(value)
    except ValueError as exc:
        raise OptionError(f"{name}={value!r} is not {KIND_WORDS[type(default)]}") from exc


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file: one table per command (`[swap]`, `[train]`, ...)."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise OptionError("config file not found", path=path, fix="check the --config path") from exc
    except IsADirectoryError as exc:
        raise OptionError("is a folder, not a config file", path=path, fix="give the path of a .toml file") from exc
    except OSError as exc:  # no read permission, an I/O error
        raise OptionError(f"config file cannot be read ({exc.strerror})", path=path,
                          fix="check the file's permissions, or give another --config path") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise OptionError(f"not valid TOML ({exc})", path=path, fix="fix the syntax at the place named") from exc


def runners(schema: type) -> frozenset[str]:
    """The options of `schema` that say how the work is run, not what it makes (`option(runner=True)`)."""
    return frozenset(f.name for f in dataclasses.fields(schema) if f.metadata.get("runner"))


def made_by(options: object) -> dict[str, Any]:
    """`to_dict(options)` without the runner options: what decides an output (a resume key, a render's identity)."""
    skip = runners(type(options))
    return {k: v for k, v in to_dict(options).items() if k not in skip}


def to_dict(options: object) -> dict[str, Any]:
    """Options as plain JSON-ready values, for run records and checkpoints."""
    def plain(value: Any) -> Any:
        return str(value) if isinstance(value, (Path, Fraction)) else value
    return {k: plain(v) for k, v in dataclasses.asdict(options).items()}
