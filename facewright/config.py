"""Option schemas: frozen dataclasses that feed the CLI flags, TOML config files and the API alike.

A flag's name is its field's name (`--crf` sets `crf`), so `facewright swap --crf 20` and
`facewright.swap(..., crf=20)` mean the same. Precedence: defaults < config file section < explicit flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

from facewright.errors import OptionError

T = TypeVar("T")

VIDEO_CODECS = ("libx264", "libx265")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def option(default: Any, help: str, choices: tuple | None = None, *, runner: bool = False) -> Any:
    """A dataclass field carrying its CLI help text and allowed values. `runner`: the option says how the work is
    run (where, on how many processes), not what it makes: `made_by` leaves it out."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "runner": runner})


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
        check_choices(self)


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """How a pair model is trained."""

    model: str = option("liae-ud", "architecture (facewright models list)")
    resolution: int = option(128, "face size in pixels the model learns, 64-512, a multiple of 16")
    batch: int = option(8, "faces of each person per step (split over GPUs under torchrun)")
    steps: int = option(0, "stop after this many steps in all (0: no step limit)")
    minutes: float = option(0.0, "stop after this many minutes of this run (0: no time limit; Ctrl-C also stops)")
    lr: float = option(2e-4, "peak learning rate of AdamW")
    warmup: int = option(200, "steps of linear learning-rate warm-up")
    schedule: str = option("constant", "learning rate after warm-up: constant, or cosine down to a tenth at the end "
                           "of --steps or --minutes (a run with neither stays constant)", ("constant", "cosine"))
    clip_grad: float = option(1.0, "gradient norm clipping (0: off)")
    ema: float = option(0.999, "decay of the generator weights' moving average, used for previews and swaps")
    ae_dims: int = option(0, "bottleneck width (0: the model's default)")
    e_dims: int = option(0, "encoder width (0: the model's default)")
    d_dims: int = option(0, "decoder width (0: the model's default)")
    d_mask_dims: int = option(0, "mask decoder width (0: the model's default)")
    gan_power: float = option(0.0, "weight of the adversarial loss (0: off; ~0.1 sharpens a trained model)")
    gan_start: int = option(0, "step from which the adversarial loss is on")
    gan_kind: str = option("hinge", "adversarial loss", ("hinge", "lsgan"))
    priority: float = option(3.0, "extra weight of eyes and mouth in the reconstruction loss (0: off)")
    warp: float = option(0.05, "random warp strength (0: off)")
    rotate: float = option(10.0, "random rotation, degrees")
    flip: bool = option(False, "random horizontal flips (faces are not symmetric: off by default)")
    color_transfer: bool = option(False, "move A's colors toward B's statistics while training")
    pose_match: float = option(0.0, "share of A's faces drawn by how close their head pose (yaw, pitch) is to B's "
                               "faces, the poses a swap renders A in (0: every face of A alike; the demo preset: 0.6)")
    seed: int = option(0, "random seed of sampling, augmentation and initial weights")
    save_every: int = option(500, "steps between checkpoints (one is also written on stop and Ctrl-C)")
    keep: int = option(3, "checkpoints kept")
    preview_every: int = option(250, "steps between preview PNGs (0: off)")
    timelapse: bool = option(False, "keep every preview (previews/step_N.png), not only the latest")
    log_every: int = option(10, "steps between metric lines in metrics.jsonl")
    device: str = option("auto", "cpu, cuda, cuda:N or auto")
    compile: bool = option(False, "torch.compile the training step (CUDA; slow to start, faster after)")

    def __post_init__(self) -> None:
        check_choices(self)
        check_counts(self, ("batch", "save_every", "keep", "log_every"),
                     ("steps", "minutes", "warmup", "gan_power", "gan_start", "priority", "warp", "preview_every"))
        if not 0.0 <= self.ema < 1.0:
            raise OptionError(f"--ema must be in [0, 1), got {self.ema}", fix="0.999 is a good default")
        if not 0.0 <= self.pose_match <= 1.0:
            raise OptionError(f"--pose-match must be in [0, 1], got {self.pose_match}",
                              fix="0.6 suits a short run, 0 a long one")
        if self.lr <= 0:
            raise OptionError(f"--lr must be positive, got {self.lr}")

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
    batch: int = option(16, "crops per step")
    steps: int = option(600, "stop after this many steps in all (0: no step limit)")
    minutes: float = option(0.0, "stop after this many minutes of this run (0: no time limit; Ctrl-C also stops)")
    lr: float = option(2e-3, "learning rate of AdamW (decays to a tenth over the last fifth of --steps)")
    clean: float = option(0.15, "share of training crops shown with no occluder pasted")
    seed: int = option(0, "random seed of sampling, occluders and initial weights")
    save_every: int = option(200, "steps between checkpoints (one is also written on stop and Ctrl-C)")
    keep: int = option(2, "checkpoints kept")
    preview_every: int = option(100, "steps between preview PNGs and held-out IoU figures (0: at the end only)")
    device: str = option("auto", "cpu, cuda, cuda:N or auto")

    def __post_init__(self) -> None:
        check_counts(self, ("batch", "save_every", "keep"), ("steps", "minutes", "preview_every"))
        if self.lr <= 0 or not 0.0 <= self.clean <= 1.0:
            raise OptionError(f"--lr must be positive and --clean within 0-1, got {self.lr} and {self.clean}")


@dataclasses.dataclass(frozen=True)
class SwapOptions:
    """How faces are swapped and post-processed."""

    target: str = option("", "identity whose faces are replaced (default: the model's person B); needs a "
                         "target-role consent whose photo matches them")
    all_faces: bool = option(False, "swap every tracked face, not only the target's (each must still match "
                             "the target's consent photo)")
    reference: str = option("", "swap the faces that match the one face in this photo instead")
    threshold: float = option(0.6, "identity distance within which a face is the target (dlib L2)")
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
    erode: float = option(0.02, "mask erosion as a fraction of the face size (negative: dilate)")
    blur: float = option(0.06, "mask feathering as a fraction of the face size")
    blend: str = option("alpha", "alpha (feathered) or poisson (seamless clone)", BLEND_MODES)
    detail: float = option(1.0, "share of the original face's fine detail (skin texture, grain) carried onto the "
                           "new face, less of it in the eyes, brows and lips (0: off, 1: all of it)")
    detail_features: float = option(0.4, "share of --detail carried in the eyes, brows and lips, where the faces' "
                                    "outlines differ (0: none, 1: as on the skin)")
    detail_scale: float = option(0.01, "finest scale the new face keeps as its own, a fraction of the face size "
                                 "(--detail carries over what is finer)")
    restore: float = option(1.0, "raise the new face's own contrast just coarser than --detail-scale toward the "
                            "original face's (a soft model's faint eyelids and lips; at most 3x; 0: off, 1: fully)")
    motion: float = option(0.75, "share of the original face's fast changes in the eyes and lips (blinks, the "
                           "lips in speech) carried onto the new face in a video (0: off, 1: all of it)")
    sharpen: float = option(0.0, "unsharp-mask amount on the new face (0: off; 0.3-0.8 is typical)")
    face_scale: float = option(1.0, "scale of the new face about its centre (0.5-1.5; 0.9-1.1 is typical)")
    smooth: float = option(1.0, "landmark smoothing cutoff in Hz (One Euro; lower = steadier; 0: off)")
    smooth_beta: float = option(2.0, "how fast smoothing lets go on fast motion (One Euro beta, per face size)")
    cut_threshold: float = option(0.35, "frame difference that counts as a scene cut (no smoothing across it)")
    max_faces: int = option(4, "faces looked for per frame")
    batch: int = option(8, "faces per model call")
    preview: int = option(0, "also write a PNG strip of N frames, input | output (0: off)")
    patch: str = option("", "video input: also write each track's aligned swapped faces, masks and matrices "
                        "into this folder, for compositing")
    render_only: str = option("", "video input: render the chosen faces into this folder and stop, no output "
                              "video; `facewright composite INPUT --patch DIR` makes it (resumable)")
    device: str = option("auto", "cpu, cuda, cuda:N or auto", runner=True)
    workers: int = option(0, "processes a long video is split over, in chunks at keyframes (0: $FACEWRIGHT_WORKERS, "
                          "else one per core; 1: this process only)", runner=True)

    def __post_init__(self) -> None:
        check_choices(self)
        if not 0.5 <= self.face_scale <= 1.5:
            raise OptionError(f"--face-scale must be 0.5-1.5, got {self.face_scale}", fix="1.0 keeps the size")
        if not -0.5 < self.erode < 0.5 or not 0 <= self.blur < 0.5:
            raise OptionError("--erode must be in (-0.5, 0.5) and --blur in [0, 0.5) (fractions of the face size)",
                              fix="the defaults are --erode 0.02 --blur 0.06")
        check_counts(self, (), ("sharpen", "smooth", "smooth_beta", "cut_threshold", "preview", "workers"))
        if not (0 <= self.detail <= 1 and 0 <= self.detail_features <= 1 and 0 <= self.restore <= 1
                and 0 <= self.motion <= 1 and 0 < self.detail_scale <= 0.1):
            raise OptionError("--detail, --detail-features, --restore and --motion must be within 0-1 and "
                              "--detail-scale within (0, 0.1] (of the face size)",
                              fix="e.g. --detail 0.5 --detail-scale 0.01")
        if self.max_faces < 1 or self.batch < 1 or self.threshold <= 0:
            raise OptionError("--max-faces and --batch must be at least 1 and --threshold positive",
                              fix="the defaults are 4, 8 and 0.6")
        if self.all_faces and self.reference:
            raise OptionError("--all-faces and --reference both choose the faces", fix="give one of them")


@dataclasses.dataclass(frozen=True)
class ScoreOptions:
    """How a swap is scored."""

    samples: int = option(240, "frames whose identity is measured, spread over the clip (~0.2 s each on a CPU)")
    worst: int = option(8, "worst frames listed and shown in the contact sheet")

    def __post_init__(self) -> None:
        if self.samples < 1 or self.worst < 0:
            raise OptionError("--samples must be at least 1 and --worst at least 0", fix="the defaults are 240 and 8")


FACE_TYPES = ("face", "whole_face", "head")  # the crops of faces.align; tests check the two agree
IMAGE_FORMATS = ("png", "jpg")


@dataclasses.dataclass(frozen=True)
class ExtractOptions:
    """How faces are extracted into a faceset."""

    every: int = option(1, "use every Nth frame of a video")
    fps: float = option(0.0, "sample at most this many frames per second of video (0: no limit)")
    detector: str = option("blazeface-full", "face detector for photos (videos use the landmarker's tracker)",
                           ("blazeface", "blazeface-full", "dlib-hog"))
    max_faces: int = option(4, "most faces looked at per frame")
    face_type: str = option("whole_face", "crop coverage: face, whole_face (with forehead) or head", FACE_TYPES)
    size: int = option(256, "aligned crop size in pixels (64-1024)")
    image_format: str = option("png", "format of the aligned crops", IMAGE_FORMATS)
    jpeg_quality: int = option(95, "JPEG quality when --image-format jpg")
    min_face: float = option(48.0, "smallest face kept: face width in source pixels")
    min_sharpness: float = option(12.0, "blur limit: variance of the Laplacian on the 256 px gray crop")
    max_yaw: float = option(75.0, "profile limit in degrees (|yaw| above it is rejected)")
    max_pitch: float = option(60.0, "up/down limit in degrees")
    dedupe: int = option(3, "near-duplicate limit: max differing bits of the 64-bit crop hash (0: keep all)")
    reference: str = option("", "photo of the person to keep; without it the largest identity cluster is kept")
    threshold: float = option(0.6, "identity distance under which two faces are the same person (dlib scale)")
    for_swap: bool = option(False, "also store per-frame geometry of every track, for a later swap of this video")
    workers: int = option(0, "processes a video is split over, in chunks at keyframes (0: $FACEWRIGHT_WORKERS, else "
                          "one per core; 1: this process only)", runner=True)
    mask_model: str = option("", "store masks that leave out what this mask model says covers the face (facewright "
                             "mask train): a pair model trained on them learns occluders")

    def __post_init__(self) -> None:
        check_choices(self)
        if not 64 <= self.size <= 1024:
            raise OptionError(f"--size {self.size} is outside 64..1024", fix="use 256 (default) or 512")
        if self.every < 1 or self.fps < 0 or self.max_faces < 1:
            raise OptionError("--every and --max-faces must be >= 1, --fps >= 0", fix="e.g. --every 2 or --fps 5")
        if not 0 <= self.dedupe <= 64:
            raise OptionError(f"--dedupe {self.dedupe} is outside 0..64", fix="use 0 (off) to ~10")
        check_counts(self, (), ("workers",))


def check_counts(options: object, at_least_one: Iterable[str], non_negative: Iterable[str]) -> None:
    """OptionError naming the first field of `at_least_one` under 1 or of `non_negative` under 0."""
    for names, floor, rule in ((at_least_one, 1, "must be at least 1"), (non_negative, 0, "cannot be negative")):
        for name in names:
            if getattr(options, name) < floor:
                raise OptionError(f"--{name.replace('_', '-')} {rule}, got {getattr(options, name)}")


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
            raise OptionError(f"{name}={value!r} is not true or false")
        return value.lower() in ("true", "1", "yes", "on")
    try:
        return type(default)(value)
    except ValueError as exc:
        kind = "a whole number" if isinstance(default, int) else "a number"
        raise OptionError(f"{name}={value!r} is not {kind}") from exc


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file: one table per command (`[swap]`, `[train]`, ...)."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise OptionError("config file not found", path=path, fix="check the --config path") from exc
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
