"""`facewright bench watermark`: does the invisible mark survive what sharing does to a file?

Protocol (fixed, so runs compare): the astronaut photo, and 3 s of the WolfgangLanger clip encoded at our
output quality (H.264 crf 18), are marked with a random 64-bit payload and then attacked: JPEG quality 50,
resize to 50% and back, center crop keeping 80% of each side, H.264 crf 28 re-encode, brightness +20%.
For each, the payload bit accuracy against the truth. False positives: detection on 200 unmarked pictures
(sample photos and frames). Visual cost: PSNR. Speed: embed and per-frame detection time at 640x360.
"""
from __future__ import annotations

import io
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice, takewhile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from facewright import api
from facewright.bench import SAMPLE_A
from facewright.config import VideoOptions
from facewright.media.image import Frame, read_image
from facewright.media.video import read_video
from facewright.media.writer import VideoWriter
from facewright.progress import ProgressFactory, no_progress
from facewright.provenance import watermark as wm

Attack = Callable[[list[Frame]], list[Frame]]
CLIP_SECONDS = 3.0
FALSE_POSITIVE_SAMPLES = 200


def jpeg(frame: Frame, quality: int = 50) -> Frame:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def resize_and_back(frame: Frame, factor: float = 0.5) -> Frame:
    height, width = frame.shape[:2]
    small = cv2.resize(frame, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def center_crop(frame: Frame, keep: float = 0.8) -> Frame:
    height, width = frame.shape[:2]
    crop_h, crop_w = round(height * keep), round(width * keep)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return np.ascontiguousarray(frame[top:top + crop_h, left:left + crop_w])


def brighten(frame: Frame, gain: float = 1.2) -> Frame:
    return np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)


def h264(frames: list[Frame], crf: int = 28, fps: float = 30.0) -> list[Frame]:
    """Encode with libx264 at `crf` (medium preset) and decode back."""
    with tempfile.TemporaryDirectory(prefix="facewright-wm-") as tmp:
        path = Path(tmp) / "clip.mp4"
        height, width = frames[0].shape[:2]
        with VideoWriter(path, width=width, height=height, fps=fps, options=VideoOptions(crf=crf)) as writer:
            for frame in frames:
                writer.write(frame)
        return [f.image[:height, :width] for f in read_video(path)]


def per_frame(attack: Callable[[Frame], Frame]) -> Attack:
    return lambda frames: [attack(frame) for frame in frames]


ATTACKS: dict[str, Attack] = {
    "none": lambda frames: frames,
    "jpeg q50": per_frame(jpeg),
    "resize 50% and back": per_frame(resize_and_back),
    "center crop 80%": per_frame(center_crop),
    "h264 crf 28": h264,
    "brightness +20%": per_frame(brighten),
}


@dataclass(frozen=True)
class AttackResult:
    medium: str
    attack: str
    bit_accuracy: float  # decoded payload bits equal to the truth, of 64
    found: bool  # CRC matched and p below the threshold
    p_value: float


@dataclass(frozen=True)
class WatermarkBench:
    attacks: list[AttackResult]
    psnr: dict[str, float]  # medium -> dB (the clip's figure is on the frames before encoding)
    false_positives: int
    false_positive_samples: int
    lowest_unmarked_p: float  # the closest an unmarked picture came to the threshold
    embed_ms: float  # per 640x360 frame
    detect_ms: float  # per 640x360 frame folded (a clip decodes once at the end: decode_ms)
    decode_ms: float

    def rows(self) -> list[str]:
        lines = [f"{'medium':<12} {'attack':<22} {'bit acc':>8} {'found':>6} {'p-value':>9}"]
        for r in self.attacks:
            lines.append(f"{r.medium:<12} {r.attack:<22} {r.bit_accuracy:8.3f} {'yes' if r.found else 'NO':>6} "
                         f"{r.p_value:9.1e}")
        psnr = ", ".join(f"{medium} {db:.1f} dB" for medium, db in self.psnr.items())
        lines += [f"PSNR: {psnr}",
                  f"false positives: {self.false_positives} of {self.false_positive_samples} unmarked pictures "
                  f"(smallest p-value among them {self.lowest_unmarked_p:.1e}; threshold {wm.P_THRESHOLD:.0e})",
                  f"speed at 640x360: embed {self.embed_ms:.1f} ms + detect {self.detect_ms:.1f} ms per frame "
                  f"(+ {self.decode_ms:.1f} ms once per picture or clip to decode)"]
        return lines


# Unmarked pictures for the false-positive count: photos with and without faces, then frames of the clips.
UNMARKED = ("coffee.png", "chelsea.png", "rocket.jpg", "single_face.jpg", "multi_face.jpg", "single_face.mp4",
            "no_face.mp4", "face_noface.mov", "noface_face.mov", "WolfgangLanger_Pexels.mp4")


def bench_watermark(*, progress: ProgressFactory = no_progress) -> WatermarkBench:
    """Watermark robustness (bit accuracy after JPEG, resize, crop, H.264, brightness), false positives, speed,
    on the astronaut photo and the sample clip of person A."""
    return measure(api.asset("astronaut.png"), api.asset(SAMPLE_A), [api.asset(name) for name in UNMARKED],
                   progress)


def measure(photo: Path, video: Path, unmarked: list[Path], progress: ProgressFactory) -> WatermarkBench:
    """Run the protocol; `unmarked`: photos and videos whose pictures feed the false-positive count."""
    payload = secrets.randbits(wm.PAYLOAD_BITS)
    photo_frames = [read_image(photo)]
    clip = _clip(video, CLIP_SECONDS)
    results, psnr = [], {}
    with progress(total=2 * len(ATTACKS) + 1, desc="bench watermark", unit="test") as bar:
        for medium, frames, encode in (("photo", photo_frames, False), ("3 s clip", clip, True)):
            marked = [wm.embed(frame, payload) for frame in frames]
            psnr[medium] = float(np.mean([wm.psnr(a, b) for a, b in zip(frames, marked, strict=True)]))
            if encode:  # what `mark` delivers: our own H.264 output at crf 18
                marked = h264(marked, crf=VideoOptions().crf)
            for name, attack in ATTACKS.items():
                found = wm.detect_frames(attack(marked))
                results.append(AttackResult(medium, name, found.accuracy_against(payload), found.found, found.p_value))
                bar.update(1)
        false_positives, samples, lowest_p = _false_positives(unmarked)
        bar.update(1)
    embed_ms, detect_ms, decode_ms = _speed(clip, payload)
    return WatermarkBench(results, psnr, false_positives, samples, lowest_p, embed_ms, detect_ms, decode_ms)


def _clip(video: Path, seconds: float) -> list[Frame]:
    return [f.image for f in takewhile(lambda f: f.time < seconds, read_video(video))]


def unmarked_pictures(sources: list[Path], limit: int = FALSE_POSITIVE_SAMPLES) -> Iterator[Frame]:
    """Photos as they are, and frames of videos spread over each video, up to `limit` pictures in all."""
    photos = [p for p in sources if p.suffix.lower() in {".png", ".jpg", ".jpeg"}]
    videos = [p for p in sources if p not in photos]
    yield from (read_image(p) for p in photos)
    per_video = -(-(limit - len(photos)) // max(1, len(videos)))
    for video in videos:
        frames = list(read_video(video))
        step = max(1, len(frames) // per_video)
        yield from (f.image for f in frames[::step][:per_video])


def _false_positives(sources: list[Path]) -> tuple[int, int, float]:
    """(marks found, pictures tried, the smallest p-value seen) on unmarked pictures."""
    found = samples = 0
    lowest = 1.0
    for picture in islice(unmarked_pictures(sources), FALSE_POSITIVE_SAMPLES):
        result = wm.detect(picture)
        found += result.found
        lowest = min(lowest, result.p_value)
        samples += 1
    return found, samples, lowest


def _speed(clip: list[Frame], payload: int) -> tuple[float, float, float]:
    frames = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in clip[:60]]
    wm.embed(frames[0], payload)  # the tile pattern is computed once per payload: not per-frame cost
    start = time.perf_counter()
    marked = [wm.embed(f, payload) for f in frames]
    embed = time.perf_counter() - start
    acc = wm.Accumulator(scales=(1.0,))
    start = time.perf_counter()
    for frame in marked:
        acc.add(frame)
    fold = time.perf_counter() - start
    start = time.perf_counter()
    acc.result()
    decode = time.perf_counter() - start
    return 1000 * embed / len(frames), 1000 * fold / len(frames), 1000 * decode
