"""`facewright bench occlusion`: does a swap keep what is in front of the face, and still swap the rest?

A fixed, seeded protocol that needs no hand labelling. In a temporary workspace: the sample pair's
consents and facesets, a pair model each way (demo preset, fixed seed) and a mask model per person. Then:

- synthetic: known occluders (hand cut-outs from the WolfgangLanger clip, a bar, a cup, hair strands) are
  pasted with exact alphas over the man's face in single_face.mp4, moving across it, and the clip is swapped
  with and without them. "occluder kept": the share of occluder pixels over the face that the swap left
  unchanged (no channel moved more than CHANGED levels: the watermark moves about 3). "face swapped": the
  share of the visible face (the 68-point hull less the occluder) that the swap changes, as a ratio of the
  share the same swap changes there with no occluder pasted;
- hands: WolfgangLanger_Pexels.mp4's own hands (frames HAND_FRAMES), with the hand model's regions on the
  input as the reference: the share of hand pixels over the face (the 68-point hull) kept, and the share
  of the visible face changed, as a ratio of the share changed in the clip's frames without a hand.

Each is run with today's former default (`--mask intersect --hands off`), intersect with hands kept, and
`--mask occlusion`; the time per frame the hand model and the mask model add is read off the swaps. Clips
are encoded losslessly (crf 0) throughout, so the encoder does not count as a change. One row is appended
to <workspace>/bench/occlusion.jsonl.
"""
from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from facewright import __version__, api
from facewright.bench import SAMPLE_A, SAMPLE_B
from facewright.bench.quality import append_row, describe_device
from facewright.config import MarkOptions, SwapOptions, VideoOptions, build
from facewright.demo import demo_consent
from facewright.faces.hands import CUTOUT_WIDTH, HandTracker, hand_mask
from facewright.faces.landmarks import Landmarker
from facewright.faces.mask import erode, hull_mask
from facewright.media.image import Frame
from facewright.media.video import VideoFrame, read_video
from facewright.media.writer import VideoWriter
from facewright.progress import ProgressFactory, no_progress
from facewright.swap.pipeline import SwapResult
from facewright.swap.run import swap as run_swap
from facewright.train.occluders import OccluderBank, cutout, make_occluder, paste
from facewright.workspace import Workspace, resolve_root

SEED = 0
PAYLOAD = 0x6F63636C75646531  # "occlude1": a fixed watermark id, so a rerun gives the same pixels
CHANGED = 8  # levels: a pixel changed when one of its channels moved more than this
LOSSLESS = VideoOptions(crf=0, preset="veryfast")
HAND_FRAMES = (40, 250)  # WolfgangLanger frames swapped for the hands figures: hands in ~58-229, none around
SYNTHETIC_KINDS = ("hand", "bar", "cup", "strands")
SEGMENT = 14  # frames one synthetic occluder stays, moving across the face
LEAD = 4  # frames at each end of the synthetic clip with no occluder
HAND_BANK_FRAMES = range(60, 230, 12)  # WolfgangLanger frames whose hands are cut out for pasting
VISIBLE_MARGIN = 3  # pixels around an occluder not counted as visible face (the mask's soft edge lies there)
NAMES = ("occlusion-a", "occlusion-b")
# (label, mask mode, hands): today's former default first.
MODES = (("intersect, no hands", "intersect", "off"), ("intersect + hands", "intersect", "on"),
         ("occlusion", "occlusion", "on"))


@dataclass(frozen=True)
class Figures:
    occluder_kept: float | None
    face_swapped: float | None
    hands_ms: float  # per frame, added by the hand model
    mask_model_ms: float  # per frame, added by the mask model
    frames: int  # frames with an occluder (synthetic) or a hand (hands) over the face


@dataclass(frozen=True)
class OcclusionRow:
    when: str
    version: str
    device: str
    pair_steps: int
    mask_steps: int
    mask_iou: dict[str, float | None]  # held-out figures of each mask model
    synthetic: dict[str, Figures]
    hands: dict[str, Figures]
    seed: int = SEED
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"occlusion bench on {self.device}: pair models {self.pair_steps} steps, mask models "
               f"{self.mask_steps} steps (held-out IoU "
               + ", ".join(f"{k} {_fmt(v, 3)}" for k, v in self.mask_iou.items()) + ")"]
        for title, table in (("synthetic occluders on single_face.mp4", self.synthetic),
                             (f"real hands on {SAMPLE_A} frames {HAND_FRAMES[0]}-{HAND_FRAMES[1]}", self.hands)):
            frames = next(iter(table.values())).frames if table else 0
            out.append(f"{title} ({frames} frames with it over the face):")
            for mode, f in table.items():
                out.append(f"  {mode:<20} occluder kept {_pct(f.occluder_kept)}  face swapped {_fmt(f.face_swapped, 3)}"
                           f"  | hands {f.hands_ms:.1f} ms/frame, mask model {f.mask_model_ms:.1f} ms/frame")
        return out + [f"note: {n}" for n in self.notes]


def bench_occlusion(*, steps: int | None = None, mask_steps: int | None = None, device: str = "auto",
                    results: str | Path | None = None, workspace: str | Path | None = None,
                    progress: ProgressFactory = no_progress, frames: int | None = None,
                    train_options: dict | None = None, mask_options: dict | None = None) -> OcclusionRow:
    """The protocol above. `steps`, `mask_steps`: training budgets (default: the demo preset's, the mask
    trainer's). `frames`: use only this many frames of each clip (tests); `train_options`, `mask_options`:
    options over the trainers' (tests shrink the models with them)."""
    results = Path(results) if results else resolve_root(workspace) / "bench" / "occlusion.jsonl"
    video_a, video_b = api.asset(SAMPLE_A), api.asset(SAMPLE_B)
    with tempfile.TemporaryDirectory(prefix="facewright-bench-occlusion-") as tmp_name:
        tmp = Path(tmp_name)
        root = tmp / "ws"
        for video, name in zip((video_a, video_b), NAMES, strict=True):
            demo_consent(root, video, name)
            api.extract([video], name, workspace=root, dedupe=0, progress=progress)
        pair = {"preview_every": 0, "seed": SEED, "device": device, **(train_options or {}),
                **({"steps": steps} if steps else {})}
        trained = [api.train(src, dst, name=f"{src}-to-{dst}", preset="demo", workspace=root, progress=progress,
                             **pair) for src, dst in (NAMES, NAMES[::-1])]
        masking = {"preview_every": 0, "seed": SEED, "device": device, **(mask_options or {}),
                   **({"steps": mask_steps} if mask_steps else {})}
        masks = {name: api.train_mask(name, workspace=root, progress=progress, **masking) for name in NAMES}
        synthetic = _synthetic(root, tmp, video_a, video_b, device, frames, progress)
        hands = _hands(root, tmp, video_a, device, frames, progress)
    row = OcclusionRow(datetime.now(UTC).isoformat(timespec="seconds"), __version__, describe_device(device),
                       trained[0].step, next(iter(masks.values())).steps,
                       {name: m.iou for name, m in masks.items()}, synthetic, hands)
    append_row(results, row)
    return row


# --- synthetic occluders -------------------------------------------------------------------------------------


def _synthetic(root: Path, tmp: Path, video_a: Path, video_b: Path, device: str, frames: int | None,
               progress: ProgressFactory) -> dict[str, Figures]:
    faces = _faces(video_b, frames)
    plan = OccluderPlan(_hand_bank(video_a), {i: np.concatenate([p.min(axis=0), p.max(axis=0)])
                                              for i, p in faces.items()})
    clean = _clip(video_b, tmp / "clean.mp4", 0, frames)
    occluded = _clip(video_b, tmp / "occluded.mp4", 0, frames, plan.paste)
    model = f"{NAMES[0]}-to-{NAMES[1]}"
    table = {}
    for label, mode, hands in MODES:
        before = _swap(root, clean, tmp / f"clean-{mode}-{hands}.mp4", model, mode, hands, device, progress)
        after = _swap(root, occluded, tmp / f"occluded-{mode}-{hands}.mp4", model, mode, hands, device, progress)
        kept, swapped = _compare_synthetic(clean, before.output, occluded, after.output, plan.alphas, faces)
        table[label] = Figures(kept, swapped, *_added_ms(after), len(plan.alphas))
    return table


class OccluderPlan:
    """Which occluder is pasted where in each frame: one kind per SEGMENT frames, moving across the face.
    `paste` (a frame callback) records each frame's exact alpha in `alphas` (frame index -> H x W)."""

    def __init__(self, bank: OccluderBank, boxes: dict[int, np.ndarray]):
        self.bank, self.boxes = bank, boxes
        self.alphas: dict[int, np.ndarray] = {}
        self._segments: dict[int, tuple] = {}

    def paste(self, frame: VideoFrame) -> Frame:
        index, box = frame.index, self.boxes.get(frame.index)
        last = max(self.boxes) if self.boxes else -1
        if box is None or index < LEAD or index > last - LEAD:
            return frame.image
        segment = (index - LEAD) // SEGMENT
        occluder, start, end, scale, angle = self._segment(segment, box)
        t = ((index - LEAD) % SEGMENT) / max(1, SEGMENT - 1)
        size = float(max(box[2] - box[0], box[3] - box[1]))
        centre = (box[:2] + box[2:]) / 2 + size * (start + (end - start) * t)
        image, alpha = paste(frame.image, occluder, (float(centre[0]), float(centre[1])), scale, angle)
        self.alphas[index] = alpha
        return image

    def _segment(self, segment: int, box: np.ndarray) -> tuple:
        if segment not in self._segments:
            rng = np.random.default_rng([SEED, segment])
            kind = SYNTHETIC_KINDS[segment % len(SYNTHETIC_KINDS)]
            size = int(max(box[2] - box[0], box[3] - box[1]) * 1.4)
            occluder = make_occluder(kind, size, rng, self.bank)
            start = rng.uniform(-0.3, 0.3, 2)
            end = rng.uniform(-0.3, 0.3, 2)
            self._segments[segment] = (occluder, start, end, float(rng.uniform(0.8, 1.1)),
                                       float(rng.uniform(-25, 25)))
        return self._segments[segment]


def _hand_bank(video: Path) -> OccluderBank:
    """Real hands cut out of the WolfgangLanger clip, where the hand model finds them."""
    bank = OccluderBank()
    wanted = set(HAND_BANK_FRAMES)
    with HandTracker(video=False) as tracker:
        for frame in read_video(video):
            if frame.index in wanted and (found := tracker.detect(frame.image)):
                piece = cutout(frame.image, hand_mask(frame.image.shape, found, finger=CUTOUT_WIDTH), "hand")
                if piece is not None:
                    bank.hands.append(piece)
            if frame.index > max(wanted):
                break
    return bank


def _faces(video: Path, frames: int | None) -> dict[int, np.ndarray]:
    """frame -> the one face's 68 points (the clean clip's: where the face is, before any occluder)."""
    found = {}
    with Landmarker(video=True, max_faces=1) as landmarker:
        for frame in _frames(video, 0, frames):
            faces = landmarker.detect(frame.image, frame.time * 1000)
            if faces:
                found[frame.index] = faces[0].points68()
    return found


def _compare_synthetic(clean: Path, clean_out: Path, occluded: Path, occluded_out: Path, alphas: dict[int, np.ndarray],
                       faces: dict[int, np.ndarray]) -> tuple[float | None, float | None]:
    """(occluder kept, face swapped). The occluder pixels counted are those the clean swap changes (where
    the new face would go); the visible face is the 68-point hull less the occluder and VISIBLE_MARGIN
    pixels around it, and "face swapped" is the share of it the occluded swap changes over the share the
    clean swap changes there."""
    kept = over = changed_clean = changed_occluded = 0
    for a, b, c, d in zip(read_video(clean), read_video(clean_out), read_video(occluded), read_video(occluded_out),
                          strict=True):
        alpha = alphas.get(a.index)
        if alpha is None or a.index not in faces:
            continue
        swapped, swapped_occluded = _changed(a.image, b.image), _changed(c.image, d.image)
        occluder = (alpha > 0.5) & swapped
        kept += int((occluder & ~swapped_occluded).sum())
        over += int(occluder.sum())
        seen = (hull_mask(a.image.shape, faces[a.index], "face") > 0.5) & (erode(alpha, -VISIBLE_MARGIN) < 0.5)
        changed_clean += int((seen & swapped).sum())
        changed_occluded += int((seen & swapped_occluded).sum())
    return (kept / over if over else None), (changed_occluded / changed_clean if changed_clean else None)


# --- real hands ----------------------------------------------------------------------------------------------


def _hands(root: Path, tmp: Path, video_a: Path, device: str, frames: int | None,
           progress: ProgressFactory) -> dict[str, Figures]:
    first, last = HAND_FRAMES
    clip = _clip(video_a, tmp / "hands.mp4", first, min(last, first + frames) if frames else last)
    reference = _hand_reference(clip)
    model = f"{NAMES[1]}-to-{NAMES[0]}"
    table = {}
    for label, mode, hands in MODES:
        out = _swap(root, clip, tmp / f"hands-{mode}-{hands}.mp4", model, mode, hands, device, progress)
        table[label] = Figures(*_compare_hands(clip, out.output, reference), *_added_ms(out),
                               sum(1 for _, h in reference.values() if h.any()))
    return table


def _hand_reference(clip: Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """frame -> (the face's 68-point hull, the hand model's hand region over it) on the input."""
    reference = {}
    with Landmarker(video=True, max_faces=1) as landmarker, HandTracker(video=True) as tracker:
        for frame in read_video(clip):
            faces = landmarker.detect(frame.image, frame.time * 1000)
            found = tracker.detect(frame.image, frame.time * 1000)
            if faces:
                face = hull_mask(frame.image.shape, faces[0].points68(), "face") > 0.5
                hands = hand_mask(frame.image.shape, found) > 0.5 if found else np.zeros_like(face)
                reference[frame.index] = (face, hands & face)
    return reference


def _compare_hands(clip: Path, output: Path, reference: dict) -> tuple[float | None, float | None]:
    kept = over = 0
    visible = [0, 0]  # frames with hands: (visible face pixels, of them changed)
    clear = [0, 0]  # frames without: (face pixels, changed)
    for a, b in zip(read_video(clip), read_video(output), strict=True):
        if a.index not in reference:
            continue
        face, hands = reference[a.index]
        changed = _changed(a.image, b.image)
        if hands.any():
            kept += int((hands & ~changed).sum())
            over += int(hands.sum())
            seen = face & (erode(hands.astype(np.float32), -VISIBLE_MARGIN) < 0.5)
            visible[0] += int(seen.sum())
            visible[1] += int((seen & changed).sum())
        else:
            clear[0] += int(face.sum())
            clear[1] += int((face & changed).sum())
    if not over or not visible[0] or not clear[1]:
        return (kept / over if over else None), None
    return kept / over, (visible[1] / visible[0]) / (clear[1] / clear[0])


# --- shared --------------------------------------------------------------------------------------------------


def _swap(root: Path, input: Path, output: Path, model: str, mode: str, hands: str, device: str,
          progress: ProgressFactory) -> SwapResult:
    """A swap with a fixed watermark id and lossless encoding, called below the API for both (see
    bench.quality._fixed_swap): the bench's own throw-away workspace."""
    options = build(SwapOptions, flags={"mask": mode, "hands": hands, "device": device})
    with Workspace.open(root) as ws:
        # one id per output (the catalog wants them unique), the same sequence in every run
        first = PAYLOAD + ws.conn.execute("SELECT COUNT(*) FROM marks").fetchone()[0]
        [result] = run_swap(ws, input, output, model, options, MarkOptions(), LOSSLESS, signer=api.keys_show(),
                            trust=api.consent_trust(), progress=progress, payloads=itertools.count(first))
    return result


def _clip(source: Path, output: Path, first: int, last: int | None,
          fn: Callable[[VideoFrame], Frame] | None = None) -> Path:
    """Frames `first` to `last` (exclusive; None: to the end) of `source`, through `fn`, losslessly encoded
    at 30 fps (the frames matter here, not their times)."""
    with contextlib.ExitStack() as stack:
        writer = None
        for frame in _frames(source, first, last):
            if writer is None:
                height, width = frame.image.shape[:2]
                writer = stack.enter_context(VideoWriter(output, width=width, height=height, fps=30,
                                                         options=LOSSLESS, inputs=[source]))
            writer.write(fn(frame) if fn else frame.image)
    return output


def _frames(video: Path, first: int, last: int | None) -> Iterator[VideoFrame]:
    for frame in read_video(video):
        if last is not None and frame.index >= last:
            break
        if frame.index >= first:
            yield frame


def _changed(before: Frame, after: Frame) -> np.ndarray:
    return np.abs(before.astype(np.int16) - after.astype(np.int16)).max(axis=2) > CHANGED


def _added_ms(result: SwapResult) -> tuple[float, float]:
    frames = max(1, result.frames)
    return (1000 * result.stages.get("hands", 0.0) / frames, 1000 * result.stages.get("mask model", 0.0) / frames)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
