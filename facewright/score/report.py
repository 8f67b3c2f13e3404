"""A score's summary, its worst frames, and the files a user reads: JSON, plots over time, a contact sheet."""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facewright.faces.sface import SAME_PERSON
from facewright.files import atomic_path
from facewright.media.image import Frame
from facewright.media.sheet import contact_sheet
from facewright.score import metrics
from facewright.score.scorer import FrameScore

# The measures worst frames are picked by: (field, higher is better, caption format).
WORST_BY = (("sface_to_source", True, "like A {:.2f} (SFace)"), ("expression", True, "expression r {:.2f}"),
            ("pose_error", False, "pose off {:.1f} deg"), ("seam", False, "seam dE {:+.1f}"))
# The plots over time: (panel title, [(line label, FrameScore field)]).
PANELS = (
    ("identity (SFace cosine similarity; dashed: one person from here)", [("to A", "sface_to_source"),
                                                                          ("to the original face", "sface_to_target")]),
    ("identity by dlib (L2 distance; dashed: one person below)", [("to A", "dlib_to_source"),
                                                                  ("to the original face", "dlib_to_target")]),
    ("expression (blendshape r) / sharpness (output over input)", [("expression r", "expression"),
                                                                    ("sharpness", "sharpness")]),
    ("pose error (degrees)", [("yaw/pitch/roll L2", "pose_error")]),
    ("frame-to-frame change in the face (levels)", [("output", "output_change"), ("input", "input_change")]),
    ("seam delta E over the input's / background change (levels)", [("seam", "seam"), ("background", "background")]),
    ("share of the hand pixels in front of the face repainted", [("hands repainted", "hands_repainted")]),
)
SHEET_FACE = 160  # pixels per face in the contact sheet (input | output side by side)


@dataclass(frozen=True)
class WorstFrame:
    frame: int
    time: float
    metric: str
    value: float
    box: tuple[float, float, float, float]

    def caption(self) -> str:
        text = next(fmt for name, _, fmt in WORST_BY if name == self.metric).format(self.value)
        return f"#{self.frame} {self.time:.2f}s {text}"


@dataclass
class ScoreReport:
    output: Path
    target: Path
    source: str
    frames: list[FrameScore]
    summary: dict
    worst: list[WorstFrame]
    label_seen: bool
    files: dict[str, str] = field(default_factory=dict)  # kind -> path of what was written
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"output": str(self.output), "target": str(self.target), "source": self.source,
                "summary": self.summary, "label_seen": self.label_seen,
                "worst": [vars(w) for w in self.worst], "files": self.files, "notes": self.notes,
                "frames": [f.to_dict() for f in self.frames]}

    def headline(self) -> list[str]:
        """The summary in a few lines of plain words, for the terminal."""
        s = self.summary
        ident, dlib, expr, pose = s["identity"], s["identity_dlib"], s["expression"], s["pose"]
        lines = [f"frames: {s['coverage']['frames']}, face in {s['coverage']['with_face']}, swapped in "
                 f"{s['coverage']['swapped']}, face found in output in {s['coverage']['found_in_output']}"]
        if ident["frames"]:
            lines.append(f"identity by SFace ({ident['frames']} frames): recognized as A and not as the original in "
                         f"{_pct(ident['recognized_as_source'])}, closer to A in {_pct(ident['closer_to_source'])}; "
                         f"similarity to A {_num(ident['similarity_to_source']['mean'])} (worst "
                         f"{_num(ident['similarity_to_source']['worst'])}), to the original "
                         f"{_num(ident['similarity_to_target']['mean'])} (one person from {ident['threshold']})")
            lines.append(f"identity by dlib (it chose the faces): as A in {_pct(dlib['recognized_as_source'])}, closer "
                         f"to A in {_pct(dlib['closer_to_source'])}; distance to A {_num(dlib['to_source']['mean'])}, "
                         f"to the original {_num(dlib['to_target']['mean'])} (one person below {dlib['threshold']})")
        lines.append(f"expression: r {_num(expr['correlation']['mean'])} (5th pct {_num(expr['correlation']['p5'])}); "
                     f"mouth open agrees {_pct(expr['mouth_agreement'])}, eyes closed {_pct(expr['eyes_agreement'])}")
        offset = pose.get("offset")
        steady = ("; mean offset yaw {:+.1f}, pitch {:+.1f}, roll {:+.1f} deg".format(*offset)) if offset else ""
        lines.append(f"pose error: {_num(pose['error']['mean'], 1)} deg (95th pct {_num(pose['error']['p95'], 1)})"
                     f"{steady}")
        lines.append(f"flicker ratio: {_num(s['stability']['flicker_ratio'])} (1.00 = as steady as the input); "
                     f"sharpness {_num(s['sharpness']['ratio']['mean'])} of the input's")
        lines.append(f"seam: delta E {_num(s['seams']['delta_e']['mean'], 1, signed=True)} over the input's own; "
                     f"background change {_num(s['background']['change']['mean'], 1)} levels, "
                     f"{_pct(s['background']['changed_share'], 2)} of its pixels beyond {metrics.CHANGED_LEVEL}")
        hands = s["hands"]
        lines.append(f"hands repainted {_pct(hands['repainted'])} of their pixels in front of the face (beyond "
                     f"{hands['level']} levels; {hands['frames']} frames with hands)" if hands["frames"]
                     else "hands: none in front of the face")
        return lines


def build_report(output: Path, target: Path, source: str, frames: list[FrameScore], label_seen: bool,
                 worst: int = 8) -> ScoreReport:
    return ScoreReport(output, target, source, frames, summarize_frames(frames), worst_frames(frames, worst),
                       label_seen)


def summarize_frames(frames: Sequence[FrameScore]) -> dict:
    """Every measure over the clip: mean, 5th/95th percentile and worst, shares for the yes/no ones.

    Identity counts every sampled frame with a face (an unswapped frame fails it, as it should); how well the
    swap kept expression, pose, seams, detail and the hands in front of the face is measured where it swapped
    (every face frame if none): a frame the swap left alone has not kept its hands by merit.
    """
    with_face = [f for f in frames if f.face]
    swapped = [f for f in with_face if f.swapped] or with_face
    sampled = [f for f in with_face if f.sface_to_source is not None]
    pairs = [(f.output_change, f.input_change) for f in frames if f.output_change is not None]
    return {
        "coverage": {"frames": len(frames), "with_face": len(with_face), "swapped": sum(f.swapped for f in frames),
                     "found_in_output": sum(f.found_in_output for f in frames)},
        "identity": _identity_summary(sampled),
        "identity_dlib": _dlib_summary([f for f in with_face if f.dlib_to_source is not None]),
        "expression": {"correlation": metrics.summarize([f.expression for f in swapped], higher_is_better=True),
                       "mouth_agreement": _share(f.mouth_agrees for f in swapped),
                       "eyes_agreement": _share(f.eyes_agree for f in swapped)},
        "pose": {"error": metrics.summarize([f.pose_error for f in swapped], higher_is_better=False),
                 "yaw_pitch_roll": _mean_vector(f.yaw_pitch_roll_error for f in swapped),
                 "offset": _mean_vector(f.yaw_pitch_roll_offset for f in swapped)},
        "stability": {"flicker_ratio": metrics.flicker_ratio(*zip(*pairs, strict=True)) if pairs else None,
                      "frame_pairs": len(pairs)},
        "seams": {"delta_e": metrics.summarize([f.seam for f in swapped], higher_is_better=False)},
        "sharpness": {"ratio": metrics.summarize([f.sharpness for f in swapped], higher_is_better=True)},
        "background": {"change": metrics.summarize([f.background for f in frames], higher_is_better=False),
                       "changed_share": _mean(f.background_changed for f in frames)},
        "hands": _hands_summary(swapped),
    }


def _identity_summary(sampled: Sequence[FrameScore]) -> dict:
    """SFace's figures: cosine similarities (higher = more alike), one person from `threshold`."""
    return {"judge": "sface", "frames": len(sampled), "threshold": SAME_PERSON,
            "similarity_to_source": metrics.summarize([f.sface_to_source for f in sampled], higher_is_better=True),
            "similarity_to_target": metrics.summarize([f.sface_to_target for f in sampled], higher_is_better=False),
            "recognized_as_source": _share(f.as_source for f in sampled),
            "closer_to_source": _share(f.closer_to_source for f in sampled)}


def _dlib_summary(sampled: Sequence[FrameScore]) -> dict:
    """dlib's figures (the recognizer that chose the faces): L2 distances, one person below `threshold`."""
    return {"frames": len(sampled), "threshold": metrics.THRESHOLD,
            "to_source": metrics.summarize([f.dlib_to_source for f in sampled], higher_is_better=False),
            "to_target": metrics.summarize([f.dlib_to_target for f in sampled], higher_is_better=True),
            "recognized_as_source": _share(f.dlib_as_source for f in sampled),
            "closer_to_source": _share(f.dlib_closer_to_source for f in sampled)}


def _hands_summary(frames: Sequence[FrameScore]) -> dict:
    """The share of every hand pixel in front of the face, pooled over `frames`, that the output repainted."""
    seen = [f for f in frames if f.hand_pixels]
    pixels = sum(f.hand_pixels for f in seen)
    repainted = sum(f.hands_repainted * f.hand_pixels for f in seen)
    return {"repainted": repainted / pixels if pixels else None, "frames": len(seen), "pixels": pixels,
            "level": metrics.REPAINTED_LEVEL}


def worst_frames(frames: Sequence[FrameScore], count: int) -> list[WorstFrame]:
    """Up to `count` frames, each the worst or near-worst of one measure, taking the measures in turn."""
    ranked = []
    for name, higher_is_better, _ in WORST_BY:
        scored = [f for f in frames if getattr(f, name) is not None and f.box is not None]
        ranked.append(sorted(scored, key=lambda f, n=name: getattr(f, n), reverse=not higher_is_better))
    chosen: dict[int, WorstFrame] = {}
    for depth in range(max((len(r) for r in ranked), default=0)):
        for (name, _, _), frames_by_badness in zip(WORST_BY, ranked, strict=True):
            if len(chosen) >= count:
                return sorted(chosen.values(), key=lambda w: w.frame)
            if depth < len(frames_by_badness) and frames_by_badness[depth].frame not in chosen:
                f = frames_by_badness[depth]
                chosen[f.frame] = WorstFrame(f.frame, f.time, name, float(getattr(f, name)), f.box)
    return sorted(chosen.values(), key=lambda w: w.frame)


def write_json(report: ScoreReport, path: Path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=1, allow_nan=False))
    return path


def write_plots(report: ScoreReport, path: Path) -> Path:
    """One PNG of PANELS over time: identity (SFace, dlib), expression + sharpness, pose, frame-to-frame
    change, seam + background, hands repainted."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    frames = report.frames
    time = np.asarray([f.time for f in frames])

    def series(name: str) -> np.ndarray:
        return np.asarray([np.nan if getattr(f, name) is None else float(getattr(f, name)) for f in frames])

    figure, axes = plt.subplots(len(PANELS), 1, figsize=(10, 2.2 * len(PANELS)), sharex=True, layout="constrained")
    for ax, (title, lines) in zip(axes, PANELS, strict=True):
        for label, name in lines:
            values = series(name)
            ax.plot(time, values, marker="." if np.isnan(values).any() else None, linewidth=1, label=label)
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        if len(lines) > 1:
            ax.legend(fontsize=8, loc="upper right")
    axes[0].axhline(SAME_PERSON, color="grey", linestyle="--", linewidth=0.8)
    axes[1].axhline(metrics.THRESHOLD, color="grey", linestyle="--", linewidth=0.8)
    axes[-1].set_ylim(-0.05, 1.05)  # a share: 0 and 1 read as such, not as a flat line's autoscale
    axes[-1].set_xlabel("time (s)")
    figure.suptitle(f"{report.output.name} scored against {report.target.name}; A = {report.source}", fontsize=10)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=90, format="png")
    plt.close(figure)
    return path


def worst_sheet(worst: Sequence[WorstFrame], pictures: Iterable[tuple[int, Frame, Frame]]) -> Frame:
    """Input | output face crops of the worst frames, captioned. `pictures`: (frame, output, input) in order."""
    wanted = {w.frame: w for w in worst}
    cells, captions = [], []
    for index, output, reference in pictures:
        if index in wanted:
            box = wanted[index].box
            cells.append(np.concatenate([_face_crop(reference, box), _face_crop(output, box)], axis=1))
            captions.append(wanted[index].caption())
    sheet = contact_sheet(cells, captions, columns=4, cell_width=2 * SHEET_FACE)
    # a dark band below the cells, so the visible label that marking draws in a corner covers no caption
    band = np.full((max(40, sheet.shape[0] // 8), sheet.shape[1], 3), 24, np.uint8)
    return np.concatenate([sheet, band], axis=0)


def _face_crop(image: Frame, box: tuple[float, float, float, float]) -> Frame:
    """A square SHEET_FACE crop around `box` with some context (edges padded)."""
    x0, y0, x1, y1 = box
    side = 1.4 * max(x1 - x0, y1 - y0)
    scale = SHEET_FACE / max(side, 1.0)
    matrix = np.array([[scale, 0, SHEET_FACE / 2 - scale * (x0 + x1) / 2],
                       [0, scale, SHEET_FACE / 2 - scale * (y0 + y1) / 2]])
    return cv2.warpAffine(image, matrix, (SHEET_FACE, SHEET_FACE), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_CONSTANT)


def _share(values: Iterable[bool | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _mean_vector(vectors: Iterable[tuple[float, ...] | None]) -> list[float] | None:
    known = [v for v in vectors if v is not None]
    return np.asarray(known).mean(axis=0).round(3).tolist() if known else None


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _pct(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"
